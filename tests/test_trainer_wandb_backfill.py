"""A requeued training run's W&B fragments, read back from the .wandb files: every step exactly once.

Real wandb offline runs in real processes; one attempt is SIGKILLed with its wandb service (as SLURM
kills a job step), so its fragment holds whatever W&B had flushed — possibly nothing. The reporter is
driven by a stand-in loop (no DeepSpeed: the trainer's resume tests cover the engine).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from tests.conftest import ROOT, need_module
from tests.trainer_runs import clean_env

RUN_ID = "train-backfill0test"
ATTEMPT = r"""
import json, os, signal, sys
from pathlib import Path
from trainer.config import WandbConfig
from trainer.reporting import Reporter, truncate_metrics
out, start, stop, how = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
truncate_metrics(out / "metrics.jsonl", start)   # what the trainer does on resume from checkpoint `start`
cfg = WandbConfig(enabled=True, mode="offline", group="backfill-sweep", sweep_hash="feedc0ffee12")
rep = Reporter(out, True, 10, start, "lines", cfg, sys.argv[5], {"config_hash": "x"}, "tiny.evil.qta.s0")
for step in range(start + 1, stop + 1):
    rep.step({"step": step, "loss": 10.0 / step, "lr": 1e-3, "grad_norm": 1.0, "tokens_per_s": 100.0,
              "padding_frac": 0.0, "mfu": None, "peak_mem": 0, "ckpt_time": None})
if how == "kill":
    os.killpg(os.getpgid(0), signal.SIGKILL)   # the attempt and its wandb service, mid-run
rep.close(75 if how == "requeue" else 0)
"""


def attempt(out, start: int, stop: int, how: str) -> int:
    proc = subprocess.run([sys.executable, "-c", ATTEMPT, str(out), str(start), str(stop), how, RUN_ID], cwd=ROOT,
                          env=clean_env(), capture_output=True, text=True, timeout=180, start_new_session=True)
    assert proc.returncode == (-signal.SIGKILL if how == "kill" else 0), proc.stderr[-3000:]
    if how != "kill":  # wandb's service finishes writing after the process returns: as a requeue waits
        from tracecause import wandb_records

        files = wandb_records.find_run_files(out, RUN_ID)
        wandb_records.wait_until_closed(files[-1])
    return proc.returncode


@pytest.fixture(scope="module")
def requeued_run(tmp_path_factory):
    need_module("wandb")
    out = tmp_path_factory.mktemp("backfill") / "run"
    out.mkdir()
    attempt(out, 0, 3, "requeue")   # A: saved at 3, requeued: its fragment holds 1..3
    attempt(out, 3, 7, "kill")      # B: SIGKILLed after step 7 with its service; its last checkpoint: 5
    killed_metrics = (out / "metrics.jsonl").read_text()
    attempt(out, 5, 6, "requeue")   # C: from 5: backfills what B never flushed, runs 6, requeued
    attempt(out, 4, 8, "finish")    # D: from 4 (checkpoint 5 found corrupt): replays 5..6, which C holds
    return out, killed_metrics


def _steps(path) -> list[int]:
    from tracecause import wandb_records

    return [int(r["train/global_step"]) for r in wandb_records.history(path) if "train/loss" in r]


def test_every_step_is_in_wandb_exactly_once_with_its_loss(requeued_run):
    from tracecause import wandb_records

    out, _ = requeued_run
    info = wandb_records.run_info(out, RUN_ID)
    assert len(info["files"]) == 4 and info["exited"] == [75, None, 75, 0], info
    rows = [r for r in wandb_records.history(out, RUN_ID) if "train/loss" in r]
    steps = [int(r["train/global_step"]) for r in rows]
    assert sorted(steps) == list(range(1, 9)), f"each step once across fragments, got {steps}"
    assert all(r["train/loss"] == 10.0 / r["train/global_step"] for r in rows)
    metrics = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == list(range(1, 9))


def test_resumed_attempts_backfill_what_was_never_flushed_and_skip_what_was(requeued_run):
    from tracecause import wandb_records

    out, killed_metrics = requeued_run
    assert [json.loads(l)["step"] for l in killed_metrics.splitlines()] == list(range(1, 8))
    a, b, c, d = (_steps(f) for f in wandb_records.find_run_files(out, RUN_ID))
    assert a == [1, 2, 3]
    assert set(b) <= set(range(4, 8))   # whatever W&B had flushed before the kill (often nothing)
    assert sorted(c) == sorted(set(range(4, 7)) - set(b)), (a, b, c, d)   # 4..5 backfilled unless B had them
    assert d == [s for s in (7, 8) if s not in b], (a, b, c, d)            # 5..6 replayed, not logged again


def test_run_config_names_the_sweep_and_the_code(requeued_run):
    from tracecause import wandb_records
    from tracecause.provenance import code_version

    out, _ = requeued_run
    info = wandb_records.run_info(out, RUN_ID)
    assert info["name"] == "tiny.evil.qta.s0" and info["group"] == "backfill-sweep" and info["job_type"] == "train"
    config = wandb_records.config(out, RUN_ID)
    assert config["sweep_hash"] == "feedc0ffee12" and config["git_commit"] == code_version()["commit"]
    # charts line up across requeues: every train/* metric is plotted against train/global_step
    records = [r for f in wandb_records.find_run_files(out, RUN_ID) for r in wandb_records.read_records(f)]
    metric_defs = {r.metric.glob_name or r.metric.name: r.metric.step_metric for r in records
                   if r.WhichOneof("record_type") == "metric"}
    assert metric_defs.get("train/*") == "train/global_step", metric_defs
