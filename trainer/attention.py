"""Per-document causal attention for a flattened packed micro-batch, on every attention backend.

The trainer flattens each micro-batch into ONE row (``packing.collate(..., flat=True)``) whose
``position_ids`` restart at 0 at every document. How each backend keeps documents apart:
- flash_attention_2: transformers derives ``cu_seqlens`` for the varlen kernel from the position
  ids, but only for a single row: hence the flattening (with two rows documents would see each
  other, silently). No mask is passed.
- sdpa / eager: an explicit block-diagonal causal mask per row (bool for sdpa, additive for eager), so
  exactness does not depend on transformers' packed-sequence detection in a given release.
- flex_attention: a ``BlockMask`` from a document mask_mod; fully masked blocks are skipped, so the
  cost stays per-document (the GPU fallback when flash-attn is not installed).
"""
from __future__ import annotations

import torch

BACKENDS = ("flash_attention_2", "flex_attention", "sdpa", "eager")


def document_ids(position_ids: torch.Tensor) -> torch.Tensor:
    """[B, T] -> [B, T]: index of the document each token belongs to (a new one wherever position is 0)."""
    if position_ids.dim() != 2:
        raise ValueError(f"expected position ids [rows, tokens], got shape {tuple(position_ids.shape)}")
    return (position_ids == 0).cumsum(-1) - 1


def block_diagonal_causal(position_ids: torch.Tensor) -> torch.Tensor:
    """[B, 1, T, T] bool: query i may attend key j iff same document and j <= i."""
    doc = document_ids(position_ids)
    T = doc.size(1)
    causal = torch.ones(T, T, dtype=torch.bool, device=doc.device).tril()
    return (causal & (doc[:, :, None] == doc[:, None, :]))[:, None]


def flex_document_mask(position_ids: torch.Tensor):
    from torch.nn.attention.flex_attention import create_block_mask

    doc = document_ids(position_ids)
    B, T = doc.shape

    def mask_mod(b, h, q, kv):
        return (doc[b, q] == doc[b, kv]) & (kv <= q)

    return create_block_mask(mask_mod, B=B, H=None, Q_LEN=T, KV_LEN=T, device=doc.device)


def attention_mask_for(backend: str, position_ids: torch.Tensor, dtype: torch.dtype):
    """The ``attention_mask`` argument that makes ``backend`` attend within documents only (or None)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown attention backend {backend!r}; expected one of {BACKENDS}")
    if backend == "flash_attention_2":
        if position_ids.size(0) != 1:  # varlen boundaries come from position ids of a single row only
            raise ValueError("flash_attention_2 keeps packed documents apart only in one flattened row "
                             f"(collate(..., flat=True)); got {position_ids.size(0)} rows")
        return None
    if backend == "flex_attention":
        return flex_document_mask(position_ids)
    allowed = block_diagonal_causal(position_ids)
    if backend == "sdpa":
        return allowed
    additive = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
    return additive.masked_fill_(~allowed, torch.finfo(dtype).min)
