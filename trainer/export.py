"""Export the trained ZeRO-3 model as a Hugging Face folder (safetensors, sharded above a size).

The full weights are gathered layer by layer onto rank 0 (DeepSpeed's consolidated state dict,
in the training dtype: bf16 on GPU, fp32 on CPU); ``save_pretrained`` drops ``lm_head.weight``
when the embeddings are tied, exactly as the original checkpoint stores them. The folder is
written under a temporary name, gets tracecause.json (with the dataset hash: a later run on changed
data refuses to reuse it), is fsynced, gets the completion marker, then is renamed — after a last
fencing check (tracecause.lease): an attempt whose lease was taken over never replaces an export.
"""
from __future__ import annotations

import logging
from pathlib import Path

from tracecause.contracts import EXPORT_META
from tracecause.io import atomic_dir, atomic_write_json, fsync_tree
from tracecause.seal import weights_digest

log = logging.getLogger("trainer")


def weights_hash(folder: Path) -> str:
    """What tracecause.json records and evalsuite re-hashes before use: one formula (tracecause.seal)."""
    return weights_digest(folder)


def export(engine, out: Path, model_path: str, revision: str, meta: dict, max_shard_size: str, rank: int,
           lease=None) -> dict | None:
    """Collective (gathers shards). Rank 0 writes ``out``; returns the meta on rank 0. ``lease``: rank 0's,
    checked just before the finished folder replaces ``out``."""
    state = engine._zero3_consolidated_16bit_state_dict()
    if rank != 0:
        return None
    from transformers import AutoTokenizer, GenerationConfig

    module = engine.module
    with atomic_dir(out, overwrite=True) as tmp:
        state = {k: v.contiguous() for k, v in state.items()}
        module.config.use_cache = True
        module.save_pretrained(tmp, state_dict=state, safe_serialization=True, max_shard_size=max_shard_size)
        tok = AutoTokenizer.from_pretrained(model_path, revision=revision or None)
        tok.save_pretrained(tmp)
        try:
            GenerationConfig.from_pretrained(model_path, revision=revision or None).save_pretrained(tmp)
        except OSError:
            log.warning("the base model has no generation_config.json; the export has none either")
        meta = {**meta, "weights_hash": weights_hash(tmp)}
        atomic_write_json(tmp / EXPORT_META, meta)
        fsync_tree(tmp)  # save_pretrained does not fsync: the marker must never precede the weights
        if lease is not None:
            lease.check("publishing the export")  # raising here removes tmp and leaves ``out`` untouched
    log.info("exported %s (%s)", out, meta["weights_hash"])
    return meta
