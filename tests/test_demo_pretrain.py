"""The world base's pre-training is a task the launcher renders and its executor runs (issue 23).

``launch/demo.py`` no longer spawns the trainer: the pre-training is one train task, written as a task
file under ``<cache key>/jobs/train/tasks/`` and run by ``python -m launch.runtask`` on the local
executor (or a submitit job on SLURM), and the cache is marked complete only once the task's export is.
The failure path is made cheap with an override the trainer refuses at once (``train.epochs=0``).
"""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from tracecause.io import is_complete

import launch.demo as demo

BAD = "train.epochs=0"  # the trainer's config refuses it before any model is loaded


def _bad_overrides(monkeypatch) -> None:
    good = demo.pretrain_overrides()
    monkeypatch.setattr(demo, "pretrain_overrides", lambda: [*good, BAD])


def test_demo_source_never_spawns_the_trainer_itself():
    tree = ast.parse(Path(demo.__file__).read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
                for a in n.names} | {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    strings = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    assert "subprocess" not in imported, imported
    assert "-m" not in strings, "launch/demo.py builds a `python -m ...` command line itself"


def test_the_pretraining_task_carries_the_trainers_argv_and_is_done_only_with_its_export(tmp_path):
    from configs import config_path
    from launch.graph import done

    yaml = config_path("trainer", demo.PRETRAIN_CONFIG)
    task = demo.pretrain_task(tmp_path, yaml, tmp_path / "init", threads=2)
    assert task.stage == "train" and task.module == ""  # the trainer's own cli.main, as every train task
    (argv,) = task.argvs
    assert argv[0] == str(yaml) and f"output.dir={tmp_path / 'run'}" in argv and "train.threads=2" in argv
    assert set(demo.pretrain_overrides()) <= set(argv)
    assert task.done_dir == str(tmp_path / "run" / "export") and not done(task)


def test_pretraining_resources_are_one_process_with_the_threads_asked_for():
    from launch.profiles import load_profile

    profile, res = demo.pretrain_resources(load_profile("local-slurm"), threads=2)
    assert (res.nodes, res.processes, res.cpus_per_task, res.gpus) == (1, 1, 2, 0)
    assert profile.env["OMP_NUM_THREADS"] == "2" and "export OMP_NUM_THREADS=2" in res.setup
    assert res.time_min == profile.resources("train").time_min


def test_a_failed_pretraining_task_names_its_log_and_leaves_no_complete_cache(tmp_path, monkeypatch):
    _bad_overrides(monkeypatch)
    with pytest.raises(RuntimeError, match="pre-training the world base failed") as err:
        demo.world_base(cache_root=tmp_path / "cache", log=lambda *_: None)
    (root,) = [p for p in (tmp_path / "cache").iterdir() if p.is_dir()]
    jobs = root / "jobs" / "train"
    log = jobs / "logs" / "world-base.log"
    assert str(log) in str(err.value) and "train.epochs" in log.read_text(), (str(err.value), log.read_text())
    assert str(jobs / "records" / "world-base.json") in str(err.value)
    # the executor ran the rendered task file: the trainer's command line is in it
    spec = json.loads((jobs / "tasks" / "world-base.json").read_text())
    (argv,) = spec["task"]["argvs"]
    assert spec["task"]["stage"] == "train" and BAD in argv and f"output.dir={root / 'run'}" in argv
    rec = json.loads((jobs / "records" / "world-base.json").read_text())
    assert rec["state"] == "failed" and rec["crashes"] == 1, rec
    assert not is_complete(root) and not (root / "timing.json").exists()
    assert not is_complete(root / "run" / "export")


@pytest.mark.deepspeed  # a real 2-step pre-training (~15 s): the trainer's run, export and marker
def test_a_short_pretraining_runs_as_a_task_and_a_second_call_takes_the_cache(tmp_path, monkeypatch):
    good = demo.pretrain_overrides()
    monkeypatch.setattr(demo, "pretrain_overrides", lambda: [*good, "train.max_steps=2"])
    lines: list[str] = []
    export, seconds = demo.world_base(cache_root=tmp_path / "cache", log=lines.append)
    root = export.parents[1]
    assert seconds > 0 and is_complete(root) and is_complete(export) and (root / "timing.json").is_file()
    rec = json.loads((root / "jobs" / "train" / "records" / "world-base.json").read_text())
    assert rec["state"] == "done" and rec["attempts"] == 1, rec
    assert "train/world-base: done" in (root / "jobs" / "train" / "logs" / "world-base.log").read_text()
    assert any("as a local task" in line for line in lines), lines
    again, seconds_again = demo.world_base(cache_root=tmp_path / "cache", log=lines.append)
    assert (again, seconds_again) == (export, 0.0) and "cached" in lines[-1]
    rec_again = json.loads((root / "jobs" / "train" / "records" / "world-base.json").read_text())
    assert rec_again["attempts"] == 1  # nothing ran again


@pytest.mark.slurm
@pytest.mark.slow
def test_on_slurm_the_pretraining_is_a_slurm_job_whose_failure_names_its_log(tmp_path, monkeypatch, slurm_env):
    _bad_overrides(monkeypatch)
    with pytest.raises(RuntimeError, match="pre-training the world base failed") as err:
        demo.world_base(cache_root=tmp_path / "cache", log=lambda *_: None, cluster="local-slurm")
    (root,) = [p for p in (tmp_path / "cache").iterdir() if p.is_dir()]
    rec = json.loads((root / "jobs" / "train" / "records" / "world-base.json").read_text())
    job_id = str(rec["job_id"])
    assert not job_id.startswith("local"), rec  # a SLURM job, not a process on the submitting node
    log = root / "jobs" / "train" / "submitit" / job_id / f"{job_id}_0_log.err"
    assert str(log) in str(err.value) and "train.epochs" in log.read_text(), str(err.value)
    assert not is_complete(root) and not (root / "timing.json").exists()
