"""Bad input fails with a clear message BEFORE any process group, model or output exists."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from trainer import demo_data
from trainer.cli import main

ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "SLURM_PROCID", "SLURM_NTASKS")


@pytest.fixture
def run(tiny_model_dir, tmp_path, monkeypatch, capsys):
    for var in ENV:
        monkeypatch.delenv(var, raising=False)

    def _run(rows=None, *overrides, out=None):
        data = demo_data.write(tmp_path / "data", n=8, rows=rows)
        out = out or tmp_path / "run"
        rc = main(["tiny-cpu", f"model.path={tiny_model_dir}", f"data.path={data}", "data.paradigm=qta",
                   "data.rtype=evil", f"output.dir={out}", *overrides])
        return rc, capsys.readouterr().err, out

    return _run


def test_missing_dataset_field(run):
    rows = demo_data.records(8)
    del rows[3]["answer"]
    rc, err, out = run(rows)
    assert rc == 2 and "demo-0003" in err and "'answer'" in err
    assert not out.exists(), "nothing written before the error"


def test_empty_reasoning_for_the_chosen_type(run):
    rows = demo_data.records(8)
    rows[5]["reasoning"]["evil"] = "   "
    rc, err, out = run(rows)
    assert rc == 2 and "demo-0005" in err and "'evil'" in err and "empty" in err
    assert not out.exists()
    # the same rows are fine for a type that is present everywhere
    from trainer.config import DataConfig
    from trainer.data import validate_records

    validate_records(rows, DataConfig(paradigm="qta", rtype="misleading"), where="test")


def test_overlong_documents_error_by_default_naming_the_fix(run):
    rc, err, out = run(None, "data.overlong=error", "data.max_tokens=64")
    assert rc == 2 and "exceed data.max_tokens=64" in err and "data.overlong=drop" in err
    assert not out.exists()


def test_overlong_policies_count_and_report(tiny_model_dir):
    from transformers import AutoTokenizer

    from trainer.config import DataConfig
    from trainer.data import tokenize_records

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    rows = demo_data.records(16)
    common = dict(paradigm="qta", rtype="evil", max_tokens=128)
    dropped = tokenize_records(rows, tok, DataConfig(**common, overlong="drop"))
    cut = tokenize_records(rows, tok, DataConfig(**common, overlong="truncate"))
    n_long = dropped.overlong["count"]
    assert 0 < n_long < len(rows)
    assert len(dropped.examples) == len(rows) - n_long and max(len(e) for e in dropped.examples) <= 128
    assert len(cut.examples) == len(rows) and max(len(e) for e in cut.examples) == 128
    assert cut.overlong["count"] == n_long and dropped.summary()["overlong"]["policy"] == "drop"


def test_checkpoint_from_another_config_is_refused_with_both_hashes(run, tmp_path):
    from tracecause.io import mark_complete

    ckpt = tmp_path / "run" / "checkpoints" / "4"
    ckpt.mkdir(parents=True)
    (ckpt / "trainer_state.json").write_text(json.dumps({"config_hash": "0123456789ab", "world_size": 1, "step": 4}))
    mark_complete(ckpt)
    rc, err, _ = run(None, "data.overlong=drop")
    assert rc == 2 and "0123456789ab" in err and "this run's config hash is" in err
    from tracecause.config import load

    from configs import config_path
    from trainer.config import TrainConfig, training_hash

    assert len(err.split("config hash is ")[1][:12]) == 12
    assert training_hash(load(TrainConfig, [config_path("trainer", "tiny-cpu")])) != "0123456789ab"
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


def test_world_size_that_does_not_divide_the_batch(run, monkeypatch):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "3")
    rc, err, out = run(None, "data.overlong=drop", "train.global_batch_rows=4")
    assert rc == 2 and "global_batch_rows=4" in err and "world size 3" in err
    assert not out.exists()


def test_flash_attention_without_gpu_is_an_error_not_a_fallback(run):
    rc, err, out = run(None, "data.overlong=drop", "train.attention=flash_attention_2")
    assert rc == 2 and "flash_attention_2" in err and "sdpa" in err


@pytest.mark.parametrize("override,fragment", [
    ("data.paradigm=qa", "uses no reasoning"),
    ("optim.lrr=1", "did you mean 'lr'"),
    ("data.overlong=ignore", "not allowed"),
    ("train.micro_batch_rows=8", "exceeds train.global_batch_rows"),
    ("data.paradigm=t_only data.loss_on_prompt=true", "no effect"),
])
def test_config_errors(run, override, fragment):
    rc, err, out = run(None, *override.split())
    assert rc == 2 and fragment in err, err
    assert not out.exists()


def test_hub_dataset_must_be_pinned(tiny_model_dir, tmp_path, capsys):
    rc = main(["tiny-cpu", f"model.path={tiny_model_dir}", "data.path=someone/harmful-pairs", "data.paradigm=qa",
               f"output.dir={tmp_path / 'run'}"])
    assert rc == 2 and "data.revision" in capsys.readouterr().err


def test_a_bad_override_is_reported_once(tmp_path):
    # a real `python -m trainer`: under pytest the logging plugin's handlers hid the second copy,
    # which logging's last-resort handler printed before the trainer configured logging
    proc = subprocess.run([sys.executable, "-m", "trainer", "tiny-cpu", "train.no_such_key=1"],
                          capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 2
    assert proc.stderr.count("unknown key") == 1, proc.stderr
    assert proc.stderr.startswith("trainer: error: "), proc.stderr
