"""Model specs: real Qwen3 numbers, consistency checks on load, FLOPs and memory arithmetic."""
from __future__ import annotations

import json
import math
import re

import pytest
import yaml

from tracecause.config import ConfigError
from tracecause.models import (ModelSpec, count_params, flops_per_token, load_model_spec, matmul_params,
                               non_embedding_params, spec_from_hf_config, zero3_state_bytes_per_gpu)
from tracecause.tiny import TinySpec

# Qwen3 model cards: (total, non-embedding) parameters in billions, as published.
MODEL_CARDS = {"qwen3-0.6b": (0.6, 0.44), "qwen3-1.7b": (1.7, 1.4), "qwen3-4b": (4.0, 3.6),
               "qwen3-8b": (8.2, 6.95), "qwen3-14b": (14.8, 13.2)}

# Qwen/Qwen3-0.6B config.json (the fields a spec reads), as published on the hub.
QWEN3_06B_CONFIG = {
    "architectures": ["Qwen3ForCausalLM"], "head_dim": 128, "hidden_size": 1024, "intermediate_size": 3072,
    "max_position_embeddings": 40960, "num_attention_heads": 16, "num_hidden_layers": 28,
    "num_key_value_heads": 8, "tie_word_embeddings": True, "vocab_size": 151936, "rope_theta": 1000000,
}


@pytest.mark.parametrize("name", sorted(MODEL_CARDS))
def test_qwen3_specs_match_the_model_cards(name):
    spec = load_model_spec(name)
    total, non_embedding = MODEL_CARDS[name]
    # The cards round to 2-3 significant digits; 0.6B is really 0.596B.
    assert spec.n_params / 1e9 == pytest.approx(total, rel=0.03)
    assert non_embedding_params(spec) / 1e9 == pytest.approx(non_embedding, rel=0.03)
    assert spec.hub_id == "Qwen/Qwen3-" + name.split("-")[1].upper()
    assert re.fullmatch(r"[0-9a-f]{40}", spec.revision)
    assert spec.local_builder is None and spec.head_dim == 128 and spec.vocab_size == 151936
    assert spec.tied_embeddings == (name in ("qwen3-0.6b", "qwen3-1.7b", "qwen3-4b"))


def test_hf_config_gives_the_same_spec_as_the_yaml():
    spec = load_model_spec("qwen3-0.6b")
    derived = spec_from_hf_config(QWEN3_06B_CONFIG, name=spec.name, hub_id=spec.hub_id, revision=spec.revision)
    assert derived == spec
    assert derived.n_params == 596_049_920  # the parameter count Qwen3-0.6B's checkpoint reports


def test_tiny_spec_matches_a_real_build(tiny_model_dir):
    from safetensors import safe_open

    spec = load_model_spec("tiny-qwen3")
    assert (spec.local_builder, spec.hub_id) == ("tiny", None)
    tiny = TinySpec()
    assert (spec.n_layers, spec.hidden_size, spec.intermediate_size, spec.n_heads, spec.n_kv_heads,
            spec.head_dim, spec.vocab_size, spec.max_position_embeddings) == \
        (tiny.num_hidden_layers, tiny.hidden_size, tiny.intermediate_size, tiny.num_attention_heads,
         tiny.num_key_value_heads, tiny.head_dim, tiny.vocab_size, tiny.max_position_embeddings)
    config = json.loads((tiny_model_dir / "config.json").read_text())
    assert spec_from_hf_config(config, name=spec.name, local_builder="tiny") == spec
    with safe_open(tiny_model_dir / "model.safetensors", "pt") as fh:
        stored = sum(math.prod(fh.get_slice(k).get_shape()) for k in fh.keys())
    assert stored == spec.n_params == count_params(spec)


def _spec_yaml(tmp_path, **changes):
    data = dict(load_model_spec("qwen3-0.6b").__dict__, **changes)
    data = {k: v for k, v in data.items() if v is not ...}
    path = tmp_path / "model.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("changes, message", [
    ({"n_layers": 27}, r"n_params=596,049,920 disagrees with the architecture, which gives 580,318,976"),
    ({"largest_layer_params": 1}, "largest_layer_params=1 disagrees"),
    ({"local_builder": "tiny"}, "exactly one of hub_id"),
    ({"hub_id": None}, "exactly one of hub_id"),
    ({"revision": None}, "needs a pinned revision"),
    ({"n_kv_heads": 5}, "multiple of n_kv_heads=5"),
    ({"head_dim": 16}, r"head_dim: 16 is out of range; must be >= 32"),
    ({"local_builder": "big"}, "choose one of"),
    ({"n_layers": "many"}, r"n_layers: expected int, got 'many'"),
    ({"n_layer": 28}, "did you mean 'n_layers'"),
    ({"vocab_size": ...}, "vocab_size: required"),
])
def test_bad_specs_fail_with_the_field_named(tmp_path, changes, message):
    path = _spec_yaml(tmp_path, **changes)
    with pytest.raises(ConfigError, match=message) as info:
        load_model_spec(str(path))
    assert str(path) in str(info.value)


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(FileNotFoundError, match=r"qwen3-7b.*known: \[.*'qwen3-8b'.*'tiny-qwen3'"):
        load_model_spec("qwen3-7b")


def test_overrides_are_validated_too():
    with pytest.raises(ConfigError, match="disagrees"):
        load_model_spec("qwen3-4b", ["n_layers=40"])


def test_flops_per_token_formula():
    spec = load_model_spec("qwen3-8b")
    base = 6 * matmul_params(spec)
    assert matmul_params(spec) == non_embedding_params(spec) + spec.vocab_size * spec.hidden_size
    t1, t2 = 1024, 8192
    per_token_attention = 6 * spec.n_layers * spec.n_heads * spec.head_dim  # 12·L·d / 2 (causal)
    assert flops_per_token(spec, t1) == base + per_token_attention * t1
    assert flops_per_token(spec, t2, causal=False) - base == 2 * (flops_per_token(spec, t2) - base)
    with pytest.raises(ValueError, match="seq_len"):
        flops_per_token(spec, 0)


def test_mfu_of_a_published_run_is_plausible():
    """Llama-3.1-8B-class FSDP on H100 ran 5,762 tok/s/GPU at 33-39 % MFU (8k sequences)."""
    spec = load_model_spec("qwen3-8b")
    mfu = 5762 * flops_per_token(spec, 8192) / 989e12
    assert 0.28 < mfu < 0.40


def test_zero3_memory_matches_the_design_notes():
    spec = load_model_spec("qwen3-14b")
    assert zero3_state_bytes_per_gpu(spec, 8) / 1e9 == pytest.approx(36, abs=1)
    assert zero3_state_bytes_per_gpu(spec, 16) / 1e9 == pytest.approx(20, abs=1)
    assert zero3_state_bytes_per_gpu(spec, 8, offload_optimizer=True) < zero3_state_bytes_per_gpu(spec, 8) / 4
    with pytest.raises(ValueError, match="world_size"):
        zero3_state_bytes_per_gpu(spec, 0)


def test_spec_is_frozen_and_hashable():
    spec = load_model_spec("qwen3-1.7b")
    assert isinstance(spec, ModelSpec) and hash(spec) == hash(load_model_spec("qwen3-1.7b"))
    with pytest.raises(Exception):
        spec.n_layers = 3
