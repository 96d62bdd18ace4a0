"""Summed token loss of one micro-batch; the caller divides by the GLOBAL target count.

Dividing each micro-batch by its own token count (the usual mean) would weight short and long
documents differently depending on how they happen to be packed and dealt to ranks; dividing the
sum by the number of target tokens of the whole optimizer step (all micro-batches, all ranks)
makes the gradient independent of packing, accumulation and world size.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .packing import IGNORE, Batch


def to_tensors(batch: Batch, device) -> dict:
    return {"input_ids": torch.from_numpy(batch.input_ids).to(device),
            "position_ids": torch.from_numpy(batch.position_ids).to(device),
            "targets": torch.from_numpy(batch.targets).to(device)}


def summed_loss(model, batch: Batch, device="cpu") -> torch.Tensor:
    """Sum of next-token cross-entropy over the supervised targets (fp32)."""
    t = to_tensors(batch, device)
    # no attention mask: position_ids restarting at 0 mark the document boundaries
    out = model(input_ids=t["input_ids"], position_ids=t["position_ids"], use_cache=False)
    logits = out.logits.float()
    return F.cross_entropy(logits.view(-1, logits.size(-1)), t["targets"].view(-1),
                           ignore_index=IGNORE, reduction="sum")
