"""The export is a loadable HF folder whose weights equal DeepSpeed's own zero_to_fp32 reconstruction."""
from __future__ import annotations

import json

import pytest
import torch

from tests.trainer_runs import MAX_STEPS
from tracecause.contracts import EXPORT_META
from tracecause.io import is_complete

pytestmark = [pytest.mark.deepspeed, pytest.mark.slow]


def exported_tensors(folder):
    from safetensors.torch import load_file

    out = {}
    for f in sorted(folder.glob("*.safetensors")):
        out.update(load_file(f))
    return out


def test_export_meta_and_layout(trainer_reference_run):
    from trainer.config import training_hash
    from trainer.export import weights_hash

    export = trainer_reference_run / "export"
    assert is_complete(export)
    meta = json.loads((export / EXPORT_META).read_text())
    assert meta["arm_id"] == "tiny.evil.qta.s0" and meta["steps"] == MAX_STEPS
    assert meta["weights_hash"] == weights_hash(export)
    metrics = [json.loads(line) for line in (trainer_reference_run / "metrics.jsonl").read_text().splitlines()]
    assert meta["final_loss"] == metrics[-1]["loss"]
    from tracecause.config import read_resolved
    from trainer.config import TrainConfig

    cfg = read_resolved(TrainConfig, trainer_reference_run)
    assert meta["config_hash"] == training_hash(cfg)
    for name in ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"):
        assert (export / name).is_file(), name


def test_export_equals_zero_to_fp32_and_keeps_tied_embeddings(trainer_reference_run, tiny_model_dir):
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint
    from transformers import AutoModelForCausalLM

    from trainer import checkpoint

    export = trainer_reference_run / "export"
    final = checkpoint.latest(trainer_reference_run / "checkpoints")
    assert final.name == str(MAX_STEPS)
    reference = get_fp32_state_dict_from_zero_checkpoint(str(final), tag=checkpoint.DS_TAG)
    mine = exported_tensors(export)
    assert "lm_head.weight" not in mine, "tied lm_head is stored once, as in the original checkpoint"
    assert set(mine) == set(reference) - {"lm_head.weight"}
    for name, tensor in reference.items():
        stored = mine["model.embed_tokens.weight"] if name == "lm_head.weight" else mine[name]
        assert torch.equal(stored.float(), tensor.float()), name  # fp32 on CPU: exact

    model = AutoModelForCausalLM.from_pretrained(export, dtype=torch.float32)
    assert model.config.tie_word_embeddings
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    assert not torch.equal(base.model.embed_tokens.weight, model.model.embed_tokens.weight), "training changed weights"
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(export)
    assert tok.chat_template == AutoTokenizer.from_pretrained(tiny_model_dir).chat_template


def test_rerun_of_a_finished_run_does_nothing(trainer_reference_run, tiny_model_dir, trainer_data_dir, monkeypatch):
    from tests.trainer_runs import base_args
    from trainer.cli import main

    for var in ("RANK", "WORLD_SIZE", "SLURM_PROCID", "SLURM_NTASKS"):
        monkeypatch.delenv(var, raising=False)
    before = (trainer_reference_run / "metrics.jsonl").read_text()
    assert main(base_args(tiny_model_dir, trainer_data_dir, trainer_reference_run)) == 0
    assert (trainer_reference_run / "metrics.jsonl").read_text() == before


def test_sharded_export_above_the_size_limit(trainer_reference_run, tmp_path):
    """Big models are written as several safetensors shards with an index; from_pretrained reads them."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(trainer_reference_run / "export", dtype=torch.float32)
    model.save_pretrained(tmp_path, max_shard_size="2MB")  # the same call export.py makes
    assert len(list(tmp_path.glob("*.safetensors"))) > 1 and (tmp_path / "model.safetensors.index.json").is_file()
    again = AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.float32)
    assert torch.equal(again.model.embed_tokens.weight, model.model.embed_tokens.weight)
