"""launch/warm.py: a task forked from a warm interpreter behaves as a fresh ``python -m launch.runtask``.

The tasks are the fake stage of tests/test_launch_fake_stage.py (a non-training stage, so each of its
steps is forked again from the task's process) and, marked deepspeed, a real 2-step training whose
weights must come out byte for byte those of the same task started cold.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from tracecause.config import ConfigError

from launch import records
from launch.executors import Submission, run_local
from launch.graph import Job, Resources, Task
from launch.profiles import load_profile

FAKE = "tests.test_launch_fake_stage"


def _fake(sweep: Path, key: str, **args) -> Task:
    argv = tuple([f"out={sweep / key}", *(f"{k}={v}" for k, v in args.items())])
    return Task("datagen", key, (argv,), str(sweep / key), module=FAKE)


def _run(sweep: Path, tasks: list[Task], warm: bool = True, parallel: int = 1) -> bool:
    job = Job("fake", "datagen", tasks, Resources(mem_gb=1, time_min=5))
    profile = replace(load_profile("local"), warm_start=warm, array_parallelism=parallel, max_crash_retries=0)
    return run_local([Submission(job, tasks)], sweep, profile)


def _start(sweep: Path, key: str) -> list[str]:
    """The fake stage's start line: time, job, node, pid, parent pid, a random draw."""
    return (sweep / key / "starts.log").read_text().splitlines()[0].split()


def test_warm_tasks_finish_as_cold_ones_each_step_in_its_own_process(tmp_path, capfd):
    assert _run(tmp_path / "warm", [_fake(tmp_path / "warm", f"t{i}", steps=2, sleep=0) for i in range(2)],
                parallel=2)
    assert "(warm)" in capfd.readouterr().out
    assert _run(tmp_path / "cold", [_fake(tmp_path / "cold", "t0", steps=2, sleep=0)], warm=False)
    for sweep, key in ((tmp_path / "warm", "t0"), (tmp_path / "warm", "t1"), (tmp_path / "cold", "t0")):
        rec = records.read_record(records.record_path(sweep, "datagen", key))
        assert rec["state"] == "done" and rec["attempts"] == 1, rec
        assert [json.loads(l)["step"] for l in (sweep / key / "metrics.jsonl").read_text().splitlines()] == [1, 2]
    first, second = _start(tmp_path / "warm", "t0"), _start(tmp_path / "warm", "t1")
    assert int(first[3]) != os.getpid() and int(first[4]) != os.getpid()  # step, forked from the task
    assert first[4] != second[4]  # two tasks, two processes
    # each child reseeds what a fresh interpreter seeds from the OS: siblings do not share a stream
    assert first[5] != second[5]


def test_a_crash_in_a_forked_step_reaches_the_tasks_record_with_its_traceback(tmp_path):
    assert not _run(tmp_path, [_fake(tmp_path, "bad", crash="true")])
    rec = records.read_record(records.record_path(tmp_path, "datagen", "bad"))
    assert rec["state"] == "failed" and rec["crashes"] == 1, rec
    assert "fake stage: boom (crash on purpose)" in rec["error"] and "Traceback" in rec["error"], rec["error"]


def test_a_preemption_signal_to_a_warm_task_stops_its_step_and_the_task_runs_again(tmp_path):
    """The signal the task's process receives is forwarded to its forked step, which saves and exits
    for a requeue; the local executor then runs the task again and it resumes where it stopped."""
    task = _fake(tmp_path, "run", steps=40, sleep=0.1)
    result: list[bool] = []
    runner = threading.Thread(target=lambda: result.append(_run(tmp_path, [task])))
    runner.start()
    progress = tmp_path / "run" / "progress.json"
    deadline = time.time() + 120
    while not (progress.is_file() and json.loads(progress.read_text())["step"] >= 3):
        assert time.time() < deadline and runner.is_alive(), "the warm task never made 3 steps"
        time.sleep(0.05)
    os.kill(int(_start(tmp_path, "run")[4]), signal.SIGUSR2)  # the task's process, as SLURM would signal it
    runner.join(timeout=120)
    assert result == [True]
    rec = records.read_record(records.record_path(tmp_path, "datagen", "run"))
    assert rec["state"] == "done" and rec["preemptions"] == 1 and not rec.get("crashes"), rec
    steps = [json.loads(l)["step"] for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 41))  # resumed, not restarted
    assert len((tmp_path / "run" / "starts.log").read_text().splitlines()) == 2


def test_a_warm_start_process_that_dies_fails_the_task_it_was_running(tmp_path):
    from launch.executors import _task_env
    from launch.warm import WarmStarter

    from launch.task import StageTask
    from tracecause.io import atomic_write_json

    task = _fake(tmp_path, "long", steps=400, sleep=0.05)
    spec = tmp_path / "task.json"
    atomic_write_json(spec, StageTask(task, str(tmp_path), "local").to_json())
    env = _task_env(load_profile("local").env)
    out: list[int] = []
    with WarmStarter(env) as starter:
        runner = threading.Thread(target=lambda: out.append(starter.run(spec, env)))
        runner.start()
        deadline = time.time() + 120
        while not (tmp_path / "long" / "starts.log").is_file():
            assert time.time() < deadline, "the warm task never started"
            time.sleep(0.05)
        starter.proc.kill()
        runner.join(timeout=30)
        assert out == [1]
    task_pid = int(_start(tmp_path, "long")[4])
    os.kill(task_pid, signal.SIGKILL)  # its orphaned task: nothing else would stop it
    os.kill(int(_start(tmp_path, "long")[3]), signal.SIGKILL)


def test_preload_names_what_it_could_not_import(monkeypatch):
    import launch.warm as warm

    monkeypatch.setattr(warm, "PRELOAD", ("json", "no_such_module_for_tracecause_tests"))
    assert warm.preload() == ["no_such_module_for_tracecause_tests"]


def test_warm_start_on_a_slurm_profile_is_refused_naming_the_field():
    with pytest.raises(ConfigError, match="warm_start.*scheduler: local only"):
        load_profile("local-slurm", ["warm_start=true"])


def _weights(export: Path) -> str:
    return hashlib.sha256((export / "model.safetensors").read_bytes()).hexdigest()


@pytest.mark.deepspeed  # two real 2-step trainings of the world base (~20 s each)
def test_a_warm_training_task_writes_the_same_weights_as_a_cold_one(tmp_path, capfd):
    import launch.demo as demo
    from configs import config_path
    from launch.single_task import run_single

    from tracecause.world import base

    yaml = config_path("trainer", demo.PRETRAIN_CONFIG)
    exports = []
    for warm in (True, False):
        root = tmp_path / ("warm" if warm else "cold")
        init = base.build_init(root / "init")
        base.write_corpus(root / "corpus")
        task = demo.pretrain_task(root, yaml, init, threads=2)
        task = replace(task, argvs=(tuple([*task.argvs[0], "train.max_steps=2"]),))
        profile, res = demo.pretrain_resources(replace(load_profile("local"), warm_start=warm), threads=2)
        outcome = run_single(task, res, root, profile, "world-base")
        assert outcome.ok, outcome
        assert ("(warm)" in capfd.readouterr().out) == warm  # the executor's line for the task
        exports.append(Path(task.done_dir))
    assert _weights(exports[0]) == _weights(exports[1])
