"""ZeRO-3 memory planner: model-state bytes per GPU (and per node on CPU), pure arithmetic.

Launch imports this to size jobs, so it must stay import-light (no torch, no DeepSpeed).
Same model as DeepSpeed's ``estimate_zero3_model_states_mem_needs`` (bench/memory_plan.py
prints both side by side):
  no offload: 4·largest_layer + 18·P / GPUs   (bf16 weights 2 + bf16 grads 2 + fp32 master 4 +
                                               Adam m, v 8 + fp32 grad 2·… = 18 bytes/param,
                                               plus one fully gathered fp32-sized layer)
  optimizer offload: 4·largest_layer + 2·P / GPUs on the GPU, 16·P·1.5 / nodes in host memory.
Activations come on top and are not modelled here.
"""
from __future__ import annotations


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
