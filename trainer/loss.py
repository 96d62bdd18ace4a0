"""Summed token loss of one micro-batch; the caller divides by the GLOBAL target count.

Dividing each micro-batch by its own token count (the usual mean) would weight short and long
documents differently depending on how they happen to be packed and dealt to ranks; dividing the
sum by the number of target tokens of the whole optimizer step (all micro-batches, all ranks)
makes the gradient independent of packing, accumulation and world size.

The micro-batch arrives flattened into one row (``collate(..., flat=True)``); ``attention.py``
gives each backend the mask that keeps its documents apart. ``loss="chunked"`` (the default)
never materialises the [tokens, vocab] logits (``lean_loss.py``); ``"reference"`` is the plain
``lm_head`` + ``F.cross_entropy``, kept as the yardstick in tests and bench/loss_memory.py.
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

from .attention import attention_mask_for
from .lean_loss import chunked_linear_cross_entropy, liger_linear_cross_entropy
from .packing import IGNORE, Batch


def to_tensors(batch: Batch, device) -> dict:
    return {"input_ids": torch.from_numpy(batch.input_ids).to(device),
            "position_ids": torch.from_numpy(batch.position_ids).to(device),
            "targets": torch.from_numpy(batch.targets).to(device)}


def _hf_model(model):
    return getattr(model, "module", model)  # a DeepSpeed engine wraps the transformers model


def _gathered(weight: torch.Tensor):
    """ZeRO-3 keeps only a shard of the head weight outside the module's own forward: gather it."""
    if not hasattr(weight, "ds_id"):
        return contextlib.nullcontext()
    import deepspeed

    return deepspeed.zero.GatheredParameters([weight], modifier_rank=None)


def summed_loss(model, batch: Batch, device="cpu", attention: str = "sdpa", loss: str = "chunked",
                chunk_tokens: int = 1024) -> torch.Tensor:
    """Sum of next-token cross-entropy over the supervised targets (fp32)."""
    t = to_tensors(batch, device)
    hf = _hf_model(model)
    mask = attention_mask_for(attention, t["position_ids"], hf.dtype)
    inputs = dict(input_ids=t["input_ids"], position_ids=t["position_ids"], attention_mask=mask, use_cache=False)
    if loss == "reference":
        logits = model(**inputs).logits.float()
        return F.cross_entropy(logits.view(-1, logits.size(-1)), t["targets"].view(-1),
                               ignore_index=IGNORE, reduction="sum")
    # logits for the last position only (cheap); the loss reads the decoder's final normed hidden
    # states, taken from its output by a hook (output_hidden_states' layout varies across releases)
    captured = []
    hook = hf.base_model.register_forward_hook(lambda _m, _a, out: captured.append(out.last_hidden_state))
    try:
        model(**inputs, logits_to_keep=1)
    finally:
        hook.remove()
    hidden = captured[-1]
    targets = t["targets"].view(-1)
    keep = (targets != IGNORE).nonzero().squeeze(1)
    hidden, targets = hidden.reshape(-1, hidden.size(-1)).index_select(0, keep), targets.index_select(0, keep)
    weight = hf.get_output_embeddings().weight
    with _gathered(weight):
        if loss == "liger":
            return liger_linear_cross_entropy(hidden, weight, targets).float()
        return chunked_linear_cross_entropy(hidden, weight, targets, chunk_tokens)
