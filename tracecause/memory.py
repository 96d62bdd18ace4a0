"""Training memory planner per GPU: ZeRO-3 model states + activations + the loss. Pure arithmetic.

Both launch (plan-time feasibility) and the trainer/bench need it, and stages never import each
other, so the one copy lives here (no torch, no DeepSpeed).

Terms (``TrainMemoryPlan.terms`` names them; bench/memory_plan.py prints them):
- model_states: DeepSpeed's ``estimate_zero3_model_states_mem_needs`` arithmetic,
  4·largest_layer + 18·P/GPUs (bf16 weights 2 + bf16 grads 2 + fp32 master 4 + Adam m, v 8 +
  2 of fp32 grad staging), or 4·largest_layer + 2·P/GPUs with the optimizer offloaded.
- activations: what autograd keeps for backward over one micro-batch of ``tokens`` tokens (the
  trainer flattens a micro-batch into one row of micro_batch_rows × max_tokens tokens at most).
  Without checkpointing every decoder layer keeps ``layer_activation_bytes_per_token``; with it
  (one checkpoint per decoder layer) each layer keeps its input (2·d bytes/token) and one layer's
  full activations exist again during its recomputation.
- attention_mask: sdpa/eager get an explicit T×T document mask (1 byte bool / 2 bytes additive)
  and, for eager, a T×T score matrix per head; flash-attention 2 (varlen) and flex-attention
  (block mask) hold no T×T tensor.
- loss: the reference loss holds the fp32 log-softmax, its fp32 gradient and the bf16 logits
  gradient (10 bytes × T × V); the chunked loss holds one chunk's fp32 probabilities and their
  bf16 copy, the fp32 head-weight gradient (+ one bf16 chunk product) and the hidden-state
  gradient (T·d).
Not modelled: CUDA context / allocator fragmentation (a fixed ``overhead`` is added), the NCCL
buffers, DeepSpeed's prefetch of the next layers (bounded by stage3_prefetch_bucket_size).
"""
from __future__ import annotations

from dataclasses import dataclass, field

GiB = 2 ** 30
ATTENTIONS = ("flash_attention_2", "flex_attention", "sdpa", "eager")
LOSSES = ("chunked", "liger", "reference")


def zero3_model_state_bytes(n_params: int, largest_layer_params: int, n_gpus: int, offload: bool = False) -> int:
    """Bytes per GPU for ZeRO-3 model states (weights, gradients, optimizer) of a P-parameter model."""
    if n_gpus < 1:
        raise ValueError(f"n_gpus must be >= 1, got {n_gpus}")
    if n_params < 0 or largest_layer_params < 0:
        raise ValueError("parameter counts must be >= 0")
    per_param = 2 if offload else 18
    return 4 * largest_layer_params + int(per_param * n_params / n_gpus)


def zero3_host_bytes_per_node(n_params: int, largest_layer_params: int, gpus_per_node: int, n_nodes: int,
                              offload: bool = False, buffer_factor: float = 1.5) -> int:
    """Host (CPU) memory per node: the offloaded optimizer, or the zero.Init staging buffer."""
    if offload:
        return int(n_params * 16 / n_nodes * buffer_factor)
    return int(largest_layer_params * 4 * gpus_per_node * buffer_factor)


def layer_activation_bytes_per_token(hidden: int, intermediate: int, q_dim: int, kv_dim: int, dtype_bytes: int = 2) -> int:
    """Tensors one Qwen3 decoder layer keeps for backward, per token (flash/flex attention).

    input RMSNorm in + out (2d), q/k/v projections (q + 2kv), q/k after norm and RoPE (q + kv),
    attention output (q), residual sum and post-attention RMSNorm in + out (2d), MLP gate and up
    outputs (2I), SiLU(gate) and the product feeding down_proj (2I); plus fp32 RMSNorm statistics
    and the attention log-sum-exp, which are negligible (a few floats per token).
    """
    return dtype_bytes * (4 * hidden + 3 * q_dim + 3 * kv_dim + 4 * intermediate)


def loss_bytes(tokens: int, vocab: int, hidden: int, loss: str, chunk_tokens: int, dtype_bytes: int = 2) -> int:
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    if loss == "reference":
        return tokens * vocab * (dtype_bytes + 4 + 4)
    chunk = min(tokens, chunk_tokens)
    weight_grad = vocab * hidden * (4 + (dtype_bytes if dtype_bytes != 4 else 0))  # fp32 sum + a bf16 chunk term
    return chunk * vocab * (4 + dtype_bytes) + weight_grad + tokens * hidden * dtype_bytes


@dataclass(frozen=True)
class TrainMemoryPlan:
    terms: dict = field(default_factory=dict)   # name -> bytes per GPU

    @property
    def total(self) -> int:
        return sum(self.terms.values())

    def describe(self) -> str:
        return ", ".join(f"{k} {v / GiB:.2f}" for k, v in self.terms.items()) + f" = {self.total / GiB:.2f} GiB"


def plan_train_memory(*, n_params: int, largest_layer_params: int, n_layers: int, hidden: int, intermediate: int,
                      q_dim: int, kv_dim: int, n_heads: int, vocab: int, n_gpus: int, tokens: int,
                      grad_checkpointing: bool, attention: str = "flash_attention_2", loss: str = "chunked",
                      chunk_tokens: int = 1024, offload: bool = False, dtype_bytes: int = 2,
                      overhead: int = GiB) -> TrainMemoryPlan:
    """Peak bytes per GPU of one micro-step (forward + backward) with ``tokens`` tokens in flight."""
    if attention not in ATTENTIONS:
        raise ValueError(f"attention must be one of {ATTENTIONS}, got {attention!r}")
    if tokens < 1:
        raise ValueError(f"tokens must be >= 1, got {tokens}")
    per_layer = layer_activation_bytes_per_token(hidden, intermediate, q_dim, kv_dim, dtype_bytes) * tokens
    if grad_checkpointing:
        activations = n_layers * dtype_bytes * hidden * tokens + per_layer
    else:
        activations = n_layers * per_layer
    activations += 2 * dtype_bytes * hidden * tokens  # embedding output and final norm
    mask = 0
    if attention == "sdpa":
        mask = tokens * tokens  # bool document mask
    elif attention == "eager":
        # additive mask + one layer's scores and probabilities per head (fp32 softmax)
        mask = tokens * tokens * (dtype_bytes + n_heads * (dtype_bytes + 4))
    return TrainMemoryPlan({
        "model_states": zero3_model_state_bytes(n_params, largest_layer_params, n_gpus, offload),
        "activations": activations,
        "attention_mask": mask,
        "loss": loss_bytes(tokens, vocab, hidden, loss, chunk_tokens, dtype_bytes),
        "overhead": overhead,
    })


def plan_from_spec(spec, *, n_gpus: int, tokens: int, grad_checkpointing: bool, **kw) -> TrainMemoryPlan:
    """The plan for a ``tracecause.models.ModelSpec`` (duck-typed: any object with its fields)."""
    return plan_train_memory(n_params=spec.n_params, largest_layer_params=spec.largest_layer_params,
                             n_layers=spec.n_layers, hidden=spec.hidden_size, intermediate=spec.intermediate_size,
                             q_dim=spec.n_heads * spec.head_dim, kv_dim=spec.n_kv_heads * spec.head_dim,
                             n_heads=spec.n_heads, vocab=spec.vocab_size, n_gpus=n_gpus, tokens=tokens,
                             grad_checkpointing=grad_checkpointing, **kw)
