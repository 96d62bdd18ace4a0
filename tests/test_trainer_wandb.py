"""W&B offline: the .wandb file read back holds the logged losses, the config and the run identity."""
from __future__ import annotations

import json

import pytest

pytestmark = [pytest.mark.deepspeed, pytest.mark.slow]


def test_offline_run_read_back(trainer_reference_run):
    from tracecause import wandb_records
    from tracecause.config import read_resolved
    from trainer.config import TrainConfig, training_hash
    from trainer.reporting import wandb_run_id

    cfg = read_resolved(TrainConfig, trainer_reference_run)
    run_id = wandb_run_id(training_hash(cfg), "test-sweep")
    assert run_id != wandb_run_id(training_hash(cfg), "another-sweep")
    files = wandb_records.find_run_files(trainer_reference_run, run_id)
    assert len(files) == 1, "only rank 0 logs"
    info = wandb_records.run_info(trainer_reference_run, run_id)
    assert info["id"] == run_id and info["group"] == "test-sweep" and info["job_type"] == "train"
    assert info["name"] == "tiny.evil.qta.s0" and info["exited"] == [0]

    metrics = [json.loads(line) for line in (trainer_reference_run / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in wandb_records.history(trainer_reference_run, run_id) if "train/loss" in r]
    assert [r["train/global_step"] for r in rows] == [m["step"] for m in metrics]
    assert [r["train/loss"] for r in rows] == [m["loss"] for m in metrics]
    assert all("train/lr" in r and "train/tokens_per_s" in r and "train/padding_frac" in r for r in rows)
    assert "train/mfu" not in rows[0], "MFU is n/a on CPU, never logged as a number"

    config = wandb_records.config(trainer_reference_run, run_id)
    assert config["config_hash"] == training_hash(cfg)
    assert config["data"]["paradigm"] == "qta" and config["data"]["rtype"] == "evil"
    assert config["precision"] == "fp32" and config["attention"] == "sdpa"
    from tracecause.provenance import code_version

    assert config["git_commit"] == code_version()["commit"] and len(config["git_commit"]) == 40
    assert "sweep_hash" in config
    summary = wandb_records.summary(trainer_reference_run, run_id)
    assert summary["final_loss"] == metrics[-1]["loss"]
