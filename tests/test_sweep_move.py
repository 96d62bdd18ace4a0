"""A sweep folder moved or copied elsewhere keeps its W&B group, its training hashes and so its W&B ids."""
from __future__ import annotations

import shutil

from launch import stages
from launch.plan import make_plan
from launch.submit import record_sweep
from trainer.config import training_hash
from trainer.reporting import wandb_run_id


def _identity(plan) -> dict:
    out = {}
    for arm in plan.arms:
        if arm.arm.trained:
            cfg = stages.load_train(arm.train_yaml, arm.train_overrides)
            out[arm.id] = (training_hash(cfg), wandb_run_id(training_hash(cfg), cfg.wandb.group), cfg.wandb.sweep_hash)
    for job in plan.jobs:
        if job.stage == "eval":
            for task in job.tasks:
                out[task.uid] = sorted(a for a in task.argvs[0] if a.startswith("wandb."))
    return out


def test_a_moved_sweep_keeps_group_hashes_and_wandb_ids(tmp_path):
    first = tmp_path / "a" / "sweep"
    plan = make_plan("smoke", [], cluster="local", sweep_dir=first)
    record_sweep(plan)
    moved = tmp_path / "other-fs" / "sweep-copy"
    shutil.copytree(first, moved)
    again = make_plan(moved / "sweep.yaml", [], cluster="local", sweep_dir=moved)  # what `resume` plans
    assert again.wandb_group == plan.wandb_group and (moved / "wandb_group.txt").is_file()
    assert _identity(again) == _identity(plan)
    some_train = next(a for a in again.arms if a.arm.trained)
    assert any(str(moved) in o for o in some_train.train_overrides)  # the paths did move
    sweep_hash = next(v for v in _identity(plan).values() if isinstance(v, tuple))[2]
    assert len(sweep_hash) == 12 and (first / "sweep.sha256").read_text().startswith(sweep_hash)


def test_two_sweeps_of_one_spec_in_two_folders_stay_apart_in_wandb(tmp_path):
    a = make_plan("smoke", [], cluster="local", sweep_dir=tmp_path / "a")
    b = make_plan("smoke", [], cluster="local", sweep_dir=tmp_path / "b")
    assert a.wandb_group != b.wandb_group
    ids_a, ids_b = _identity(a), _identity(b)
    train = [k for k, v in ids_a.items() if isinstance(v, tuple)]
    assert train and all(ids_a[k][0] == ids_b[k][0] and ids_a[k][1] != ids_b[k][1] for k in train)
