"""Linear + cross-entropy in chunks of tokens, never holding the full [tokens, vocab] logits.

At 8k tokens and Qwen3's 151,936-token vocabulary the reference loss (``lm_head`` then
``F.cross_entropy`` on fp32 logits) holds ~5 GB of logits per row and as much again for their
gradient. Here each chunk's logits live only inside ``forward``: the loss, the gradient of the
hidden states and the (fp32-accumulated) gradient of the head weight are computed chunk by chunk
there, and ``backward`` only scales them by the incoming gradient (the Liger-kernel approach, in
plain PyTorch). The caller selects the supervised positions first, so unsupervised prompt tokens
cost nothing.

The matmuls run in the weight's dtype (bf16 on GPU) and the softmax in fp32, as the reference
does, so loss and gradients agree with it within float tolerance (tests/test_trainer_lean_loss.py).
"""
from __future__ import annotations

import torch


class ChunkedLinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, chunk_tokens: int):
        n = hidden.size(0)
        grad_hidden = torch.empty_like(hidden)
        grad_weight = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device)
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        for start in range(0, n, chunk_tokens):
            h, t = hidden[start:start + chunk_tokens], targets[start:start + chunk_tokens]
            logits = (h @ weight.t()).float()                      # [chunk, V]: the only big tensor
            # softmax in place over the logits buffer (no second [chunk, V] temporary)
            top = logits.amax(dim=-1, keepdim=True)
            target_logit = logits.gather(1, t[:, None])
            probs = logits.sub_(top).exp_()
            norm = probs.sum(dim=-1, keepdim=True)
            total += (top + norm.log() - target_logit).sum()
            # d(sum CE)/d(logits) = softmax - onehot
            grad_logits = probs.div_(norm)
            grad_logits[torch.arange(t.numel(), device=t.device), t] -= 1.0
            grad_logits = grad_logits.to(weight.dtype)
            grad_hidden[start:start + chunk_tokens] = grad_logits @ weight
            if weight.dtype == torch.float32:
                grad_weight.addmm_(grad_logits.t(), h)
            else:  # bf16 matmul as the reference does, accumulated in fp32 across chunks
                grad_weight += (grad_logits.t() @ h).float()
            del logits, probs, grad_logits
        ctx.save_for_backward(grad_hidden, grad_weight)
        ctx.weight_dtype = weight.dtype
        return total

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        grad_hidden, grad_weight = ctx.saved_tensors
        # scaled in place: a second [V, d] buffer is what this loss exists to avoid (single backward only)
        return grad_hidden.mul_(grad_out.to(grad_hidden.dtype)), grad_weight.mul_(grad_out).to(ctx.weight_dtype), None, None


def chunked_linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                                 chunk_tokens: int = 1024) -> torch.Tensor:
    """Summed cross-entropy of ``hidden @ weight.T`` against ``targets`` (rows to score only)."""
    if chunk_tokens < 1:
        raise ValueError(f"chunk_tokens must be >= 1, got {chunk_tokens}")
    if hidden.size(0) == 0:
        return hidden.sum() * 0.0 + weight.sum() * 0.0  # keeps both in the graph (ZeRO-3 expects a grad)
    return ChunkedLinearCrossEntropy.apply(hidden, weight, targets, chunk_tokens)


def liger_linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Liger-kernel's fused (Triton) linear cross-entropy, summed; GPU only, where installed."""
    from liger_kernel.transformers import LigerFusedLinearCrossEntropyLoss

    return LigerFusedLinearCrossEntropyLoss(reduction="sum")(weight, hidden, targets)
