"""The fault-injection suite (``bash dev.sh faults``), run whole, as CI runs it.

Each fault is injected into real jobs of the local SLURM cluster (faults/). The scoreboard
is read back from the suite's own JSON and checked row by row against its printed table: every
fault listed here must have been injected, survived (or refused with a clear error), and lost
no completed work.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from faults.scoreboard import Scoreboard
from tests.conftest import ROOT, need, need_module

pytestmark = [pytest.mark.slurm, pytest.mark.deepspeed, pytest.mark.slow]

EXPECTED = {
    ("SIGKILL of rank 1 mid-step", "train"),
    ("newest checkpoint corrupted", "train"),
    ("SIGKILL of rank 1 mid-checkpoint-write", "train"),
    ("SIGUSR2 preemption (data.jsonl regenerated in place)", "train"),
    ("SIGTERM preemption", "train"),
    ("node lost mid-job (slurmd killed, job requeued)", "train"),
    ("disk full while writing a checkpoint", "train"),
    ("two attempts of one training task at once (second started mid-run)", "train"),
    ("two attempts of one training task at once (second started after a checkpoint)", "train"),
    ("stale lease left by a killed attempt", "train"),
    ("SIGUSR2 preemption", "datagen"),
    ("SIGTERM preemption", "datagen"),
    ("generator endpoint: 500 replies", "datagen"),
    ("generator endpoint: timeouts", "datagen"),
    ("generator endpoint: malformed replies", "datagen"),
    ("malformed line in a dataset shard", "merge"),
    ("finished shard truncated", "merge"),
    ("finished shard bit-flipped", "merge"),
    ("finished eval output truncated", "eval"),
    ("SIGUSR2 preemption", "merge"),
    ("SIGTERM preemption", "merge"),
    ("SIGUSR2 preemption", "eval"),
    ("SIGTERM preemption", "eval"),
    ("disk full while writing an eval shard", "eval"),
    ("judge endpoint: 500 replies", "eval"),
    ("judge endpoint: timeouts", "eval"),
    ("judge endpoint: malformed replies", "eval"),
    ("judge reply content wrong-typed (then endpoint healthy)", "eval"),
    ("judge outage put garbage/error text in the cache", "eval"),
    ("SIGUSR2 preemption", "analysis"),
    ("SIGTERM preemption", "analysis"),
}
LAST_LINE = re.compile(r"^faults survived: (\d+) of (\d+); completed work lost: (\d+)$")


def test_every_fault_is_survived_and_nothing_completed_is_lost(slurm_env, tmp_path):
    need_module("deepspeed")
    need(os.geteuid() == 0, "root (the suite mounts a small tmpfs and restarts a slurmd)")
    env = {**os.environ, **slurm_env, "PYTHONUNBUFFERED": "1"}
    env = {k: v for k, v in env.items() if not k.startswith(("WANDB_SERVICE", "RANK", "LOCAL_RANK", "WORLD_SIZE"))}
    proc = subprocess.run([sys.executable, "-m", "faults", "--work", str(tmp_path / "faults")], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=1500)
    scoreboard = tmp_path / "faults" / "scoreboard.json"
    assert scoreboard.is_file(), f"the suite wrote no scoreboard (status {proc.returncode}):\n{proc.stderr[-4000:]}"
    board = Scoreboard.read(scoreboard)
    rows = board["rows"]
    failed = [f"{r['stage']}: {r['fault']}: {r['detail']}" for r in rows if not r["survived"] or r["lost"]]
    assert not failed, "\n".join(failed) + "\n" + proc.stdout[-3000:] + proc.stderr[-3000:]
    assert {(r["fault"], r["stage"]) for r in rows} == EXPECTED

    last = proc.stdout.strip().splitlines()[-1]
    match = LAST_LINE.match(last)
    assert match, last
    survived, total, lost = map(int, match.groups())
    assert (survived, total, lost) == (sum(r["survived"] for r in rows), len(rows), sum(r["lost"] for r in rows))
    assert (survived, total, lost) == (len(EXPECTED), len(EXPECTED), 0)
    for r in rows:  # the printed table carries every row
        assert re.search(rf"^{re.escape(r['fault'])}\s+{r['stage']}\s+yes\s+0 ", proc.stdout, re.M), r
    assert proc.returncode == 0, proc.stderr[-3000:]
