"""The GPU-path switches, exercised for real on CPU: ZeRO-3 (2 processes) with activation
checkpointing, micro_batch_rows=2 flattened into one row and the reference loss reproduces the
shared reference run (checkpointing off, one row per micro-batch, chunked loss) step for step;
multi-node SLURM steps die together; NCCL settings use the current names."""
from __future__ import annotations

import json

import pytest

from tests.trainer_runs import MAX_STEPS, base_args, torchrun


def _losses(run) -> dict[int, float]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return {r["step"]: r["loss"] for r in rows}


@pytest.mark.deepspeed
@pytest.mark.slow
def test_zero3_checkpointing_and_two_row_micro_batches_match_the_reference(
        trainer_reference_run, tiny_model_dir, trainer_data_dir, tmp_path):
    out = tmp_path / "run"
    args = [a for a in base_args(tiny_model_dir, trainer_data_dir, out) if not a.startswith("wandb.")]
    args += ["wandb.enabled=false", "train.grad_checkpointing=true", "train.micro_batch_rows=2", "train.loss=reference",
             "output.export=false"]
    log = tmp_path / "torchrun.log"
    rc = torchrun(args, log)
    text = log.read_text()
    assert rc == 0, text[-5000:]
    assert "gradient checkpointing: on" in text
    run = json.loads((out / "run.json").read_text())
    assert run["grad_checkpointing"] is True and run["loss"] == "reference" and run["accumulation_steps"] == 1
    ref, got = _losses(trainer_reference_run), _losses(out)
    assert sorted(got) == sorted(ref) == list(range(1, MAX_STEPS + 1))
    for step in ref:  # fp32; only summation order differs (one 2-row micro-step vs two 1-row ones)
        assert got[step] == pytest.approx(ref[step], rel=2e-5), step
