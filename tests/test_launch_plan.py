"""Plan, arms and dry-run: everything checked before anything is submitted (no SLURM needed)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from launch.arms import count_arms, expand_arms
from launch.plan import PlanError, make_plan
from launch.plan_view import format_plan
from launch.spec import load_sweep
from launch.submit import submit
from tracecause.config import ConfigError
from tracecause.io import mark_complete

# The default battery reads upstream benchmark files not shipped here; structure tests use smoke's.
PAPER = ["eval.battery=smoke"]


def test_paper_expands_to_the_full_study():
    spec = load_sweep("paper")
    counts = count_arms(spec)
    # 5 sizes x (base + QA + 3 types x {QTA, QT, T-only}), three seeds per trained arm (the base once)
    assert counts == {"base": 5, "qa": 15, "qta": 45, "qt": 45, "t_only": 45}
    ids = [a.id for a in expand_arms(spec)]
    assert len(ids) == len(set(ids)) == 155
    assert "qwen3-14b.submissive.t_only.s2" in ids and "qwen3-0.6b.none.base.s0" in ids
    one = load_sweep("paper", ["seeds=[0]"])
    assert count_arms(one) == {"base": 5, "qa": 5, "qta": 15, "qt": 15, "t_only": 15}


def test_paper_plan_lays_out_the_graph(tmp_path):
    plan = make_plan("paper", PAPER, sweep_dir=tmp_path / "s")
    names = [j.name for j in plan.jobs]
    assert names[:2] == ["datagen", "merge"] and names[-1] == "analysis"
    assert plan.job("datagen").size == 16
    train = plan.job("train.qwen3-14b")
    assert train.size == 30 and train.resources.tasks_per_node == 8 and train.resources.gpus_per_node == 8
    assert 0 < train.notes["memory"]["state_gib_per_process"] < train.notes["memory"]["budget_gib"]
    ev = plan.job("eval.qwen3-14b.think.0")
    assert ev.after_corr == "train.qwen3-14b" and [t.arm for t in ev.tasks] == [t.arm for t in train.tasks]
    assert plan.job("eval-base.qwen3-14b.no_think.0").after_corr == ""
    assert len(plan.job("analysis").after) == 20
    text = format_plan(plan)
    assert "arms: 155" in text and "GPU-hours" in text and "aftercorr:train.qwen3-14b" in text


def test_a_big_model_grows_to_more_nodes_when_one_does_not_fit(tmp_path):
    plan = make_plan("paper", PAPER + ["models=[qwen3-14b]"], sweep_dir=tmp_path / "s",
                     cluster_overrides=["gpu_memory_gb=40"])
    r = plan.job("train.qwen3-14b").resources
    assert r.nodes == 2 and r.tasks_per_node == 8  # 16 ranks: ~20 GB of model states each


def _problems(**kw) -> str:
    with pytest.raises((PlanError, ConfigError)) as err:
        make_plan(**kw)
    return str(err.value)


def test_plan_rejects_an_unknown_model(tmp_path):
    msg = _problems(sweep="paper", overrides=PAPER + ["models=[qwen3-0.6b,qwen3-99b]"], sweep_dir=tmp_path)
    assert "models[1]" in msg and "qwen3-99b" in msg and "qwen3-14b" in msg  # lists the known ones


def test_plan_rejects_a_paradigm_typo(tmp_path):
    msg = _problems(sweep="paper", overrides=["paradigms=[base,qa,qat]"], sweep_dir=tmp_path)
    assert "paradigms[2]" in msg and "'qat'" in msg and "did you mean 'qt'" in msg


def test_plan_rejects_a_profile_without_gpus_for_a_gpu_stage(tmp_path):
    msg = _problems(sweep="paper", overrides=PAPER, cluster="local-slurm", sweep_dir=tmp_path)
    assert "arm qwen3-0.6b.none.qa.s0" in msg and "stage train needs GPUs" in msg
    assert "stages.train.gpus=0" in msg and "'local-slurm'" in msg


def test_plan_rejects_a_memory_plan_that_cannot_fit(tmp_path):
    msg = _problems(sweep="paper", overrides=PAPER, sweep_dir=tmp_path,
                    cluster_overrides=["gpu_memory_gb=24", "stages.train.max_nodes=1", "max_nodes=1"])
    assert "arm qwen3-14b.none.qa.s0" in msg and "ZeRO-3 memory plan does not fit" in msg
    assert "stages.train.max_nodes" in msg and "qwen3-0.6b" not in msg  # small models fit


def test_plan_names_the_arm_and_field_of_a_bad_trainer_override(tmp_path):
    msg = _problems(sweep="smoke", overrides=["train.per_model={tiny-qwen3: [optim.lr=-1]}"], sweep_dir=tmp_path)
    assert "arm tiny-qwen3.none.qa.s0" in msg and "optim.lr" in msg and "out of range" in msg


def test_plan_rejects_eval_modes_and_missing_cluster(tmp_path):
    assert "eval.modes[0]" in _problems(sweep="smoke", overrides=["eval.modes=[thinking]"], sweep_dir=tmp_path)
    assert "no clusters config named 'nope'" in _problems(sweep="smoke", cluster="nope", sweep_dir=tmp_path)
    msg = _problems(sweep="smoke", overrides=["reasoning_types=[none,evil,submissive]"], sweep_dir=tmp_path)
    assert "reasoning_types ['submissive'] are not built by datagen config demo.yaml" in msg


@pytest.fixture
def no_sbatch(tmp_path, monkeypatch):
    """A logging sbatch first on PATH: any call is recorded (and fails)."""
    bindir, log = tmp_path / "bin", tmp_path / "sbatch.log"
    bindir.mkdir()
    (bindir / "sbatch").write_text(f"#!/bin/sh\necho \"$@\" >> {log}\nexit 1\n")
    (bindir / "sbatch").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    return log


def test_dry_run_writes_sbatch_scripts_with_dependencies_and_submits_nothing(tmp_path, no_sbatch):
    plan = make_plan("paper", PAPER, sweep_dir=tmp_path / "s")
    subs = submit(plan, dry_run=True)
    out = tmp_path / "s" / "jobs" / "dry-run"
    summary = {j["job"]: j for j in json.loads((out / "dry-run.json").read_text())}
    assert len(subs) == len(plan.jobs) == len(summary)
    script = lambda name: (out / summary[name]["script"]).read_text()
    assert "#SBATCH --array=0-15%16" in script("datagen")
    assert "#SBATCH --dependency=afterok:@datagen" in script("merge")
    t = script("train.qwen3-14b")
    for line in ("#SBATCH --array=0-29%30", "#SBATCH --nodes=1", "#SBATCH --ntasks-per-node=8",
                 "#SBATCH --gpus-per-node=8", "#SBATCH --partition=gpu", "#SBATCH --mem=1600G", "#SBATCH --signal=USR2@600",
                 "#SBATCH --dependency=afterok:@merge", "#SBATCH --requeue", "module load cuda"):
        assert line in t, line
    assert "srun" in t and "submitit.core._submit" in t and "torchrun" not in t
    assert "#SBATCH --dependency=aftercorr:@train.qwen3-14b" in script("eval.qwen3-14b.think.0")
    assert "--dependency" not in script("eval-base.qwen3-14b.think.0")
    assert "--array" not in script("merge")
    assert script("analysis").count("@eval") == 20
    assert not no_sbatch.exists()
    assert not (tmp_path / "s" / "sweep.yaml").exists() and not (tmp_path / "s" / "jobs" / "train").exists()


def test_dry_run_of_a_half_finished_sweep_holds_only_the_missing_work(tmp_path, no_sbatch):
    root = tmp_path / "s"
    plan = make_plan("smoke", [], cluster="local-slurm", sweep_dir=root)
    for job in plan.jobs:
        for t in job.tasks:
            if t.stage in ("datagen", "merge") or t.arm == "tiny-qwen3.none.qa.s0":
                for d in (t.done_dir, *t.also_done):
                    mark_complete(Path(d))
    subs = {s.job.name: s for s in submit(make_plan("smoke", [], cluster="local-slurm", sweep_dir=root), dry_run=True)}
    assert "datagen" not in subs and "merge" not in subs
    assert [t.arm for t in subs["train.tiny-qwen3"].tasks] == ["tiny-qwen3.evil.qta.s0", "tiny-qwen3.evil.qt.s0"]
    assert subs["train.tiny-qwen3"].after_names == []  # merge is done: nothing to wait for
    ev = subs["eval.tiny-qwen3.all.0"]
    assert [t.arm for t in ev.tasks] == ["tiny-qwen3.evil.qta.s0", "tiny-qwen3.evil.qt.s0"]
    assert ev.corr_name == "train.tiny-qwen3"  # still aligned task for task
    assert "eval-base.tiny-qwen3.all.0" in subs and "analysis" in subs


def test_fast_trainer_config_validation_equals_the_trainers_own_loader(tmp_path):
    from launch import stages

    plan = make_plan("smoke", ["seeds=[0,1,2,3,4]"], sweep_dir=tmp_path)
    fast = stages.TrainConfigs()
    trained = [a for a in plan.arms if a.arm.trained]
    assert len(trained) == 15
    for a in trained:  # later seeds of a type are derived from the first: must equal a full load
        assert fast.load(a.train_yaml, a.train_overrides) == stages.load_train(a.train_yaml, a.train_overrides)
    bad = trained[4]
    with pytest.raises(ConfigError, match="train.seed"):
        fast.load(bad.train_yaml, tuple(o if not o.startswith("train.seed=") else "train.seed=-3"
                                        for o in bad.train_overrides))
