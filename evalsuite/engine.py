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
from tracecause.seal import SealError, weights_digest

from evalsuite.config import EngineConfig


def weights_hash(model: str, revision: str = "", memo_dir: Path | None = None) -> str:
    """Identity of the weights, verified: an export's tracecause.json weights_hash, re-computed from
    its safetensors files first (SealError naming the folder and both hashes when they differ: the
    weights changed after the export sealed them); else sha256 over the safetensors files.

    Hashing a 14B model's files takes a minute, so a result is memoised in ``memo_dir`` under the
    files' (name, size, mtime, ctime, inode): a file rewritten in place, even with its mtime put back,
    gets a new ctime and is hashed again. A hub id without a local folder is identified by id@revision.
    """
    folder = Path(model)
    meta = folder / EXPORT_META
    recorded = str(json.loads(meta.read_text()).get("weights_hash") or "") if meta.is_file() else ""
    if not folder.is_dir():
        if not revision:
            raise ValueError(f"model {model!r} is not a local folder: pin a hub revision (revision=<commit sha>)")
        return hashlib.sha256(f"hub:{model}@{revision}".encode()).hexdigest()
    files = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin"))
    if not files:
        raise ValueError(f"model folder {folder} holds no *.safetensors (or *.bin) weights")
    if recorded:
        found = _memoised(memo_dir, "export", folder, files, lambda: weights_digest(folder))
        if found != recorded:
            raise SealError(f"{folder}: the weights no longer match the hash their export recorded in {meta}: "
                            f"weights_hash expected {recorded}, found {found} (re-hashed from "
                            f"{', '.join(f.name for f in files)}); export the arm again (retrain or restore it)")
        return recorded
    return _memoised(memo_dir, "folder", folder, files, lambda: _folder_hash(files))


def _folder_hash(files: list[Path]) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode() + b"\0" + sha256_file(f).encode())
    return h.hexdigest()


def _memoised(memo_dir: Path | None, kind: str, folder: Path, files: list[Path], compute) -> str:
    stats = [(f.name, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino) for f in files for st in [f.stat()]]
    stamp = hashlib.sha256(json.dumps([kind, stats]).encode()).hexdigest()
    memo = (memo_dir / "weights" / f"{stamp}.json") if memo_dir else None
    if memo and memo.is_file():
        return json.loads(memo.read_text())["weights_hash"]
    value = compute()
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
