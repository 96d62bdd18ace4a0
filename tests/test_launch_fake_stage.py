"""A stand-in stage for launch's SLURM machinery tests: resumable steps, USR2 -> save -> exit 75.

``main(["out=DIR", "steps=N", "sleep=S", "crash=false"])`` behaves like the trainer's contract:
progress is saved every step, a USR2/SIGTERM sets a flag and the next step boundary saves and
returns EXIT_REQUEUE; a re-run resumes from the saved step; completion writes the marker.
"""
from __future__ import annotations

import json
import os
import random
import signal
import time
from pathlib import Path

from tracecause.contracts import EXIT_REQUEUE
from tracecause.io import atomic_write_json, mark_complete


def _args(argv):
    out = {"steps": "5", "sleep": "0.2", "crash": "false"}
    out.update(a.split("=", 1) for a in argv if "=" in a)
    return out


def main(argv: list[str]) -> int:
    a = _args(argv)
    out = Path(a["out"])
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "starts.log", "a") as fh:  # then pid, parent pid and a draw of the OS-seeded random state
        fh.write(f"{time.time()} {os.environ.get('SLURM_JOB_ID', '-')} {os.environ.get('SLURMD_NODENAME', '-')} "
                 f"{os.getpid()} {os.getppid()} {random.random()!r}\n")
    if a["crash"] == "true":
        raise RuntimeError("fake stage: boom (crash on purpose)")
    if a.get("sigkill") == "true":  # dies as the kernel's OOM killer kills: no traceback, no record update
        import sys

        print("fake stage: allocating far too much memory (stand-in)", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    stop = {"flag": False}

    def handler(signum, frame):
        stop["flag"] = True

    signal.signal(signal.SIGUSR2, handler)
    signal.signal(signal.SIGTERM, handler)
    state = out / "progress.json"
    step = json.loads(state.read_text())["step"] if state.is_file() else 0
    if step == 0 and (out / "metrics.jsonl").exists():
        (out / "metrics.jsonl").unlink()
    while step < int(a["steps"]):
        time.sleep(float(a["sleep"]))
        step += 1
        with open(out / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps({"step": step, "loss": 1.0 / step}) + "\n")
        atomic_write_json(state, {"step": step})
        if stop["flag"]:
            return EXIT_REQUEUE
    mark_complete(out, {"steps": step})
    return 0


def test_fake_stage_resumes_where_it_stopped(tmp_path):
    out = tmp_path / "run"
    handler_before = signal.getsignal(signal.SIGUSR2)
    try:
        os.kill(os.getpid(), 0)
        atomic_write_json(out / "progress.json", {"step": 2})
        assert main([f"out={out}", "steps=4", "sleep=0"]) == 0
    finally:
        signal.signal(signal.SIGUSR2, handler_before)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    steps = [json.loads(l)["step"] for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [3, 4] and (out / "_COMPLETE").is_file()


def _local_spans(sweep, parallel: int) -> list[tuple[float, float]]:
    """Two fake-stage tasks of one job through the local executor: (start, end) of each, sorted."""
    from dataclasses import replace

    from launch.executors import Submission, run_local
    from launch.graph import Job, Resources, Task
    from launch.profiles import load_profile

    tasks = [Task("datagen", f"t{i}", ((f"out={sweep / f't{i}'}", "steps=3", "sleep=0.7"),), str(sweep / f"t{i}"),
                  module="tests.test_launch_fake_stage") for i in range(2)]
    job = Job("fake", "datagen", tasks, Resources(mem_gb=1, time_min=5))
    assert run_local([Submission(job, tasks)], sweep, replace(load_profile("local"), array_parallelism=parallel))
    return sorted((float((sweep / f"t{i}" / "starts.log").read_text().split()[0]),
                   (sweep / f"t{i}" / "_COMPLETE").stat().st_mtime) for i in range(2))


def test_local_executor_runs_array_parallelism_tasks_of_a_job_at_once(tmp_path):
    (_, first_end), (second_start, _) = _local_spans(tmp_path / "one", 1)
    assert second_start >= first_end  # local.yaml's 1: one after the other
    (_, first_end), (second_start, _) = _local_spans(tmp_path / "two", 2)
    assert second_start < first_end  # 2: the second began while the first still ran (each >= 2.1 s)
