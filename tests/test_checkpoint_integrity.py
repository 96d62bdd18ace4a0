"""Checkpoint markers list their files; resume skips a damaged newest checkpoint; changed data is refused.

Reads copies of the shared reference run (tests/trainer_runs.py): no extra DeepSpeed start.
The faults suite (tests/test_faults.py) does the same through real SLURM jobs.
"""
from __future__ import annotations

import json
import shutil

import pytest

from tests.trainer_runs import MAX_STEPS, base_args
from tracecause.contracts import EXPORT_META
from tracecause.io import completion_info

pytestmark = [pytest.mark.deepspeed, pytest.mark.slow]


def _flip_byte(path, offset: int = 100) -> None:
    data = bytearray(path.read_bytes())
    data[offset % len(data)] ^= 0xFF
    path.write_bytes(bytes(data))


def test_marker_lists_every_file_and_a_damaged_newest_checkpoint_falls_back(trainer_reference_run, tmp_path, caplog):
    from trainer import checkpoint

    copy = tmp_path / "ckpts"
    shutil.copytree(trainer_reference_run / "checkpoints", copy)
    newest, previous = copy / str(MAX_STEPS), copy / str(MAX_STEPS - 2)
    listed = completion_info(newest)["files"]
    on_disk = {str(p.relative_to(newest)) for p in newest.rglob("*") if p.is_file() and p.name != "_COMPLETE"}
    assert set(listed) == on_disk and "trainer_state.json" in listed and "rng_rank1.pt" in listed
    assert checkpoint.damage(newest) is None and checkpoint.resume_point(copy) == newest

    shard = max((newest / checkpoint.DS_TAG).iterdir(), key=lambda p: p.stat().st_size)
    _flip_byte(shard)  # same size, other bytes: only the sha256 can tell
    assert "sha256" in checkpoint.damage(newest)
    assert checkpoint.resume_point(copy) == previous
    assert f"checkpoint {MAX_STEPS} is damaged" in caplog.text

    with open(previous / "rng_rank0.pt", "r+b") as fh:  # a truncating copy
        fh.truncate(10)
    with pytest.raises(ValueError, match=r"every complete checkpoint .* is damaged.*rng_rank0.pt has 10 bytes"):
        checkpoint.resume_point(copy)


def test_changed_data_under_an_export_or_a_checkpoint_is_refused_with_both_hashes(trainer_reference_run,
                                                                                   tiny_model_dir, trainer_data_dir,
                                                                                   tmp_path, capsys):
    """The config (data.path included) is unchanged; only the recorded dataset hash differs, as
    after regenerating data.jsonl in place. Refused before any process group, nothing written."""
    from trainer import checkpoint
    from trainer.cli import main, parse
    from trainer.config import training_hash
    from trainer.data import dataset_digest
    from trainer.config import DataConfig

    real = dataset_digest(DataConfig(path=str(trainer_data_dir)))
    run = tmp_path / "run"
    shutil.copytree(trainer_reference_run, run, ignore=shutil.ignore_patterns("wandb"))
    meta_path = run / "export" / EXPORT_META
    meta = json.loads(meta_path.read_text())
    assert meta["dataset_hash"] == real
    args = base_args(tiny_model_dir, trainer_data_dir, run)
    # output.dir differs from the reference's: keep the config check out of the way of the data check
    meta_path.write_text(json.dumps({**meta, "dataset_hash": "0123456789abcdef",
                                     "config_hash": training_hash(parse(args))}))
    before = sorted(p.name for p in run.iterdir())
    rc = main(args)
    err = capsys.readouterr().err
    assert rc == 2 and "0123456789abcdef" in err and real in err and "Restore the original data" in err, err
    assert sorted(p.name for p in run.iterdir()) == before

    state = checkpoint.read_state(checkpoint.latest(run / "checkpoints"))
    assert state["dataset_hash"] == real
    with pytest.raises(ValueError, match=f"trained on dataset hash {real}.*now has dataset hash 0123456789abcdef"):
        checkpoint.check_compatible(checkpoint.latest(run / "checkpoints"), state["config_hash"], 2,
                                    "0123456789abcdef", str(trainer_data_dir))
