"""The vLLM offline engine (one per task) and the identity of the weights it serves."""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from tracecause.contracts import EXPORT_META
from tracecause.io import atomic_write_json, sha256_file

from evalsuite.config import EngineConfig


def weights_hash(model: str, revision: str = "", memo_dir: Path | None = None) -> str:
    """Identity of the weights: tracecause.json's weights_hash, else sha256 over the safetensors files.

    Hashing a 14B model's files takes a minute, so the result is memoised in ``memo_dir`` under
    the files' (name, size, mtime); a hub id without a local folder is identified by id@revision.
    """
    folder = Path(model)
    meta = folder / EXPORT_META
    if meta.is_file():
        value = json.loads(meta.read_text()).get("weights_hash")
        if value:
            return str(value)
    if not folder.is_dir():
        if not revision:
            raise ValueError(f"model {model!r} is not a local folder: pin a hub revision (revision=<commit sha>)")
        return hashlib.sha256(f"hub:{model}@{revision}".encode()).hexdigest()
    files = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin"))
    if not files:
        raise ValueError(f"model folder {folder} holds no *.safetensors (or *.bin) weights")
    stamp = hashlib.sha256(json.dumps([(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files]).encode()).hexdigest()
    memo = (memo_dir / "weights" / f"{stamp}.json") if memo_dir else None
    if memo and memo.is_file():
        return json.loads(memo.read_text())["weights_hash"]
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode() + b"\0" + sha256_file(f).encode())
    value = h.hexdigest()
    if memo:
        atomic_write_json(memo, {"weights_hash": value, "model": str(folder.resolve())})
    return value


@dataclass
class Generation:
    text: str
    finish_reason: str
    n_tokens: int


class Engine:
    """A thin wrapper over ``vllm.LLM`` that counts the requests it really runs (tests, stats)."""

    def __init__(self, model: str, cfg: EngineConfig, revision: str = "", llm: Any = None):
        if llm is None:
            os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
            from vllm import LLM

            llm = LLM(model=model, revision=revision or None, dtype=cfg.dtype, max_model_len=cfg.max_model_len,
                      gpu_memory_utilization=cfg.gpu_memory_utilization, enforce_eager=cfg.enforce_eager,
                      seed=cfg.seed, tensor_parallel_size=cfg.tensor_parallel_size, max_num_seqs=cfg.max_num_seqs,
                      quantization=cfg.quantization or None)
        self.cfg = cfg  # its numerics-changing settings are part of the generation cache key
        self.llm = llm
        self.tokenizer = llm.get_tokenizer()
        self.requests_run = 0
        self.max_model_len = cfg.max_model_len

    def generate(self, prompts: Sequence[str], params: Sequence[dict]) -> list[Generation]:
        """One request per (prompt, params); params are SamplingParams kwargs (with seed)."""
        from vllm import SamplingParams

        if not prompts:
            return []
        sps = [SamplingParams(**p) for p in params]
        outs = self.llm.generate(list(prompts), sps, use_tqdm=False)
        self.requests_run += len(prompts)
        return [Generation(o.outputs[0].text, str(o.outputs[0].finish_reason), len(o.outputs[0].token_ids)) for o in outs]

    def next_token_logprobs(self, prompts: Sequence[str], token_ids: Sequence[int]) -> list[dict[int, float]]:
        """Log-probabilities of ``token_ids`` as the next token after each prompt (full-vocab softmax)."""
        from vllm import SamplingParams

        if not prompts:
            return []
        sp = SamplingParams(max_tokens=1, temperature=0.0, logprob_token_ids=list(token_ids))
        outs = self.llm.generate(list(prompts), sp, use_tqdm=False)
        self.requests_run += len(prompts)
        result = []
        for o in outs:
            step = o.outputs[0].logprobs[0]
            result.append({t: float(step[t].logprob) for t in token_ids})
        return result
