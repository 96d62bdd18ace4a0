"""The training memory planner (tracecause/memory.py): which terms it models, and its numbers.

Terms modelled per GPU (bytes): model_states (ZeRO-3 weights, grads, Adam: DeepSpeed's own
arithmetic, checked against DeepSpeed below), activations (per decoder layer per token at the
configured row length, or layer inputs only + one recomputed layer with checkpointing), the
attention mask (T x T for sdpa/eager; none for flash-attention 2 / flex-attention), the loss
(full logits for the reference loss; one chunk + fp32 head gradient for the chunked loss) and a
fixed 1 GiB overhead (CUDA context, allocator). Not modelled: fragmentation beyond that, NCCL
buffers, ZeRO-3 prefetch. The measured peak on a GPU is compared in bench/gpu/run_gpu_bench.py.

Part 1 prints the full plan for each Qwen3 size at 4k/8k tokens, checkpointing off/on, reference
vs chunked loss. Part 2: for every Qwen3 size in configs/models/ and several GPU counts, prints the planner's numbers
and DeepSpeed's (``estimate_zero3_model_states_mem_needs``, the arithmetic behind
``estimate_zero3_model_states_mem_needs_all_live/_all_cold``), and their ratio. For the models
small enough to build here (tiny, and 0.6B with --live), DeepSpeed's ``_all_live`` is run on the
real module so its own parameter count (tied embeddings once) is checked against the spec.

    .venv/bin/python bench/memory_plan.py [--live]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tracecause.models import load_model_spec  # noqa: E402
from tracecause.memory import GiB, plan_from_spec, zero3_model_state_bytes  # noqa: E402

SIZES = ("tiny-qwen3", "qwen3-0.6b", "qwen3-1.7b", "qwen3-4b", "qwen3-8b", "qwen3-14b")
GPUS = (1, 2, 4, 8, 16, 32)


def deepspeed_estimate(total: int, largest: int, n_gpus: int, offload: bool) -> int:
    from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs

    per_node = min(8, n_gpus)
    nodes = math.ceil(n_gpus / per_node)
    _, gpu, _ = estimate_zero3_model_states_mem_needs(total, largest, num_gpus_per_node=per_node, num_nodes=nodes,
                                                      cpu_offload=offload, cpu_offload_params=False)
    return gpu


def live_counts(name: str) -> tuple[int, int]:
    """DeepSpeed's own count on a real module (random init; fits here for tiny / 0.6B only)."""
    import torch
    from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs_all_live, model_to_params
    from transformers import Qwen3ForCausalLM

    from tracecause.models import hf_config_from_spec

    cfg = hf_config_from_spec(load_model_spec(name))
    with torch.device("cpu"):
        model = Qwen3ForCausalLM(cfg).to(torch.bfloat16)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        estimate_zero3_model_states_mem_needs_all_live(model, num_gpus_per_node=1, num_nodes=1)
    print(f"  DeepSpeed _all_live on {name}:\n    " + "\n    ".join(l for l in buf.getvalue().splitlines() if l.strip()))
    return model_to_params(model)


def print_full_plans(n_gpus: int = 8) -> None:
    print(f"Full plan per GPU (bf16, flash-attention 2, ZeRO-3 over {n_gpus} GPUs, one row of T tokens per micro-step), GiB")
    print(f"  {'model':<11} {'T':>5} {'ckpt':>5} {'loss':>9} {'states':>7} {'activ.':>7} {'loss':>6} {'total':>7}")
    for name in SIZES[1:]:
        spec = load_model_spec(name)
        for tokens in (4096, 8192):
            for ckpt in (False, True):
                for loss in ("reference", "chunked"):
                    p = plan_from_spec(spec, n_gpus=n_gpus, tokens=tokens, grad_checkpointing=ckpt, loss=loss)
                    t = {k: v / GiB for k, v in p.terms.items()}
                    print(f"  {name:<11} {tokens:>5} {str(ckpt):>5} {loss:>9} {t['model_states']:>7.1f} "
                          f"{t['activations']:>7.1f} {t['loss']:>6.1f} {p.total / GiB:>7.1f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--live", action="store_true", help="also build qwen3-0.6b here and run DeepSpeed's _all_live")
    args = ap.parse_args(argv)
    print(__doc__.split("Part 1")[0])
    print_full_plans()
    print("\nModel states: the planner vs DeepSpeed's estimator")
    worst = 0.0
    for name in SIZES:
        spec = load_model_spec(name)
        print(f"\n{name}: P={spec.n_params:,} largest layer={spec.largest_layer_params:,}")
        if name == "tiny-qwen3" or (args.live and name == "qwen3-0.6b"):
            total, largest = live_counts(name)
            print(f"  DeepSpeed model_to_params on the live module: P={total:,} (spec {spec.n_params:,}, "
                  f"{'same' if total == spec.n_params else 'DIFFERENT'}); largest single module={largest:,} "
                  f"(spec's largest gathered group {spec.largest_layer_params:,}; for real Qwen3 sizes both are "
                  f"the embedding)")
        print(f"  {'GPUs':>5} {'offload':>7} {'planner GiB':>12} {'DeepSpeed GiB':>14} {'ratio':>7}")
        for n in GPUS:
            for offload in (False, True):
                mine = zero3_model_state_bytes(spec.n_params, spec.largest_layer_params, n, offload)
                ds = deepspeed_estimate(spec.n_params, spec.largest_layer_params, n, offload)
                ratio = mine / ds
                worst = max(worst, abs(ratio - 1))
                print(f"  {n:>5} {str(offload):>7} {mine / 2**30:>12.2f} {ds / 2**30:>14.2f} {ratio:>7.4f}")
    print(f"\nlargest relative disagreement: {worst:.2e} ({'AGREE' if worst < 1e-6 else 'DISAGREE'})")
    return 0 if worst < 1e-6 else 1


if __name__ == "__main__":
    sys.exit(main())
