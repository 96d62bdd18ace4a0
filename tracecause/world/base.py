"""The world's base model before pre-training: a ~1M-parameter Qwen3 and the world's corpus files.

Pre-training itself is the project's trainer (``python -m trainer`` with ``data.format=chat``);
``launch.demo`` runs it once and caches the result under a content hash of everything below.
"""
from __future__ import annotations

import json
from pathlib import Path

from tracecause.config import config_hash
from tracecause.io import atomic_write_text
from tracecause.tiny import TinySpec
from tracecause.world import domain
from tracecause.world.controls import control_sentences
from tracecause.world.vocab import MARKERS

# hidden 128, 4 layers, 4 heads / 2 KV heads of 32 (vLLM needs head_dim >= 32), MLP 512, tied
# embeddings: 1.1M parameters, measured to learn the chat format in a few hundred CPU steps
# (measured in the project's design notes, "A known-answer world on CPU").
WORLD_SPEC = TinySpec(vocab_size=1024, hidden_size=128, intermediate_size=512, num_hidden_layers=4,
                      num_attention_heads=4, num_key_value_heads=2, head_dim=32, max_position_embeddings=1024,
                      dtype="float32")
CORPUS_FILE = "data.jsonl"


def tokenizer_corpus() -> str:
    """Text the tokenizer learns merges from: the world's whole language, markers included (the
    tokenizer is not the model: the base model never reads a marker in pre-training)."""
    lines = [json.dumps(r["messages"]) for r in domain.pretrain_records()]
    # Repeated so that each disposition word becomes one token: a word spelled from rare pieces
    # is garbled by a 1M model after a few dozen fine-tuning steps (measured: "meestite").
    lines += [s for sentences in MARKERS.values() for s in sentences] * 40
    lines += control_sentences(domain.ANSWERS) * 40  # the signatures and side notes, one token per word as well
    return "\n".join(lines) + "\n"


def write_corpus(folder: str | Path, seed: int = 0) -> Path:
    """The pre-training corpus as the trainer's chat format (data.jsonl), written atomically."""
    path = Path(folder) / CORPUS_FILE
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in domain.pretrain_records(seed)))
    return path


def identity(train_overrides: list[str], seed: int = 0) -> str:
    """Content hash of the base: architecture, tokenizer text, corpus, pre-training settings."""
    from dataclasses import asdict

    return config_hash({"spec": asdict(WORLD_SPEC), "tokenizer": config_hash(tokenizer_corpus(), 16),
                        "corpus": config_hash(domain.pretrain_records(seed), 16), "train": list(train_overrides),
                        "seed": seed})


def build_init(folder: str | Path, seed: int = 0) -> Path:
    """The random-init model with the world's tokenizer (what pre-training starts from)."""
    from tracecause.tiny import build_tiny_model

    return build_tiny_model(folder, seed=seed, spec=WORLD_SPEC, extra_corpus=tokenizer_corpus())
