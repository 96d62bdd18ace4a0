"""Two attempts of one training task on one output folder, for real (2 ZeRO-3 ranks each, started
like submitit starts them). The first is frozen (SIGSTOP) after its checkpoint, as a node declared
dead whose processes live on: its heartbeat stops. The second refuses on every rank naming the first,
writing nothing; the first, woken, the first finishes with outputs equal to
the uninterrupted reference run (steps logged once, losses and weights hash identical), every
sealed checkpoint lists both ranks' files, and the lease is released at the end."""
from __future__ import annotations

import json
import os
import signal

import pytest

from tests.conftest import need_module
from tests.trainer_runs import SlurmStyleJob, base_args, wait_for_step
from tracecause import lease
from tracecause.io import completion_info

pytestmark = [pytest.mark.deepspeed, pytest.mark.slow]


def test_second_attempt_refuses_naming_the_first_which_finishes_as_if_alone(tiny_model_dir, trainer_data_dir,
                                                                             trainer_reference_run, tmp_path):
    need_module("deepspeed")
    out = tmp_path / "run"
    args = base_args(tiny_model_dir, trainer_data_dir, out)
    first = SlurmStyleJob(args, tmp_path, "first")
    try:
        wait_for_step(out / "metrics.jsonl", 3, first)  # checkpoint 2 is sealed by then
        for pid in first.pids:  # the tiny run would finish before a second attempt has imported torch
            os.kill(pid, signal.SIGSTOP)
        lines_before = (out / "metrics.jsonl").read_text()
        second = SlurmStyleJob(args, tmp_path, "second")
        rcs = second.wait(timeout=240)
        refusal = (tmp_path / "second.rank0.log").read_text()
        assert rcs == [lease.EXIT_LEASE_HELD] * 2, refusal[-3000:]
        assert f"pid {first.pids[0]}" in refusal and "refuses to write there" in refusal, refusal[-3000:]
        assert (out / "metrics.jsonl").read_text() == lines_before  # nothing cut back, nothing added
        for pid in first.pids:
            os.kill(pid, signal.SIGCONT)
        assert first.wait(timeout=300) == [0, 0]
    finally:
        first.kill()

    def rows(run):
        return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]

    ref, got = rows(trainer_reference_run), rows(out)
    assert [r["step"] for r in got] == [r["step"] for r in ref]
    assert [r["loss"] for r in got] == [r["loss"] for r in ref]
    meta = json.loads((out / "export" / "tracecause.json").read_text())
    assert meta["weights_hash"] == json.loads((trainer_reference_run / "export" / "tracecause.json").read_text())["weights_hash"]
    for ckpt in (p for p in (out / "checkpoints").iterdir() if p.name.isdigit()):
        expected = completion_info(ckpt)["expected"]
        assert {"rng_rank0.pt", "rng_rank1.pt"} <= set(expected)
        assert sum("zero_pp_rank_1_" in e for e in expected) == 2, expected  # rank 1's model and optimizer shards
    assert lease.current(out)["released"] and lease.current(out)["token"] == 1
