"""What the plan can know fits before a GPU-hour is spent: training memory per GPU and host RAM per
node, and the generator's and judge's weights on their GPUs.

One formula: ``tracecause.memory`` (the trainer's own planner: ZeRO-3 model states, activations at
the configured row length and checkpointing, the loss, a fixed overhead; host memory for the
offloaded optimizer or zero.Init staging).
"""
from __future__ import annotations

from typing import Any

from tracecause.memory import GiB, plan_from_spec, zero3_host_bytes_per_node

from launch.profiles import ClusterProfile

# Headroom left on a GPU beyond the modelled terms (allocator fragmentation, NCCL buffers): the
# planner aims to be within 10 % of the measured peak (issue 13, bench/memory_plan.py).
GPU_HEADROOM = 0.10


def _tokens_in_flight(cfg: Any) -> int:
    return int(cfg.train.micro_batch_rows) * int(cfg.data.max_tokens)


def train_memory(spec: Any, cfg: Any, n_processes: int, offload: bool, gpu: bool) -> Any:
    """The trainer's memory plan per process for ``cfg`` (None: the trainer config was not checked)."""
    attention = getattr(cfg.train, "attention", "auto")
    if attention == "auto":
        attention = "flash_attention_2" if gpu else "sdpa"
    kw = {"attention": attention, "offload": offload, "dtype_bytes": 2 if gpu else 4}
    if getattr(cfg.train, "loss", None):  # the trainer's lean-loss switch (train.loss, loss_chunk_tokens)
        kw["loss"] = cfg.train.loss
        kw["chunk_tokens"] = getattr(cfg.train, "loss_chunk_tokens", 4096)
    return plan_from_spec(spec, n_gpus=n_processes, tokens=_tokens_in_flight(cfg),
                          grad_checkpointing=bool(cfg.train.grad_checkpointing), **kw)


def train_nodes(profile: ClusterProfile, spec: Any, cfg: Any, who: str, problems: list[str]) -> tuple[int, dict]:
    """Fewest nodes on which one process's peak fits its GPU (or its share of node RAM) AND the node's
    host memory holds the offloaded optimizer / staging buffers. ``cfg`` None: model states only,
    with the profile's ``activation_margin`` standing in for the unmodelled rest."""
    res = profile.resources("train")
    offload = bool(getattr(getattr(cfg, "deepspeed", None), "offload_optimizer", False))
    per_node = profile.processes_per_node("train")
    gpu = bool(res.gpus)
    if gpu:
        margin = GPU_HEADROOM if cfg is not None else profile.activation_margin
        budget = profile.gpu_memory_gb * GiB * (1 - margin)
        where = f"GPU memory {profile.gpu_memory_gb} GiB less {margin:.0%} headroom"
    else:
        margin = 0.0 if cfg is not None else profile.activation_margin
        budget = res.mem_gb * GiB * (1 - margin) / per_node
        where = f"stages.train.mem_gb {res.mem_gb} GiB / {per_node} processes"
    host_budget = res.mem_gb * GiB
    candidates = [res.nodes] if res.nodes else list(range(1, res.max_nodes + 1))
    last = {}
    for nodes in candidates:
        world = nodes * per_node
        if cfg is not None:
            plan = train_memory(spec, cfg, world, offload, gpu)
            need, terms = plan.total, {k: v / GiB for k, v in plan.terms.items()}
        else:
            from tracecause.memory import zero3_model_state_bytes

            need = zero3_model_state_bytes(spec.n_params, spec.largest_layer_params, world, offload)
            terms = {"model_states": need / GiB}
        host = zero3_host_bytes_per_node(spec.n_params, spec.largest_layer_params, per_node, nodes, offload) \
            if gpu else 0
        last = {"state_gib_per_process": terms.get("model_states", need / GiB), "need_gib_per_process": need / GiB,
                "terms_gib": terms, "budget_gib": budget / GiB, "offload": offload, "host_gib_per_node": host / GiB,
                "host_budget_gib": host_budget / GiB, "nodes": nodes}
        if need <= budget and host <= host_budget:
            return nodes, last
    nodes = candidates[-1]
    if last["need_gib_per_process"] * GiB > budget:
        terms = ", ".join(f"{k} {v:.1f}" for k, v in last["terms_gib"].items())
        problems.append(f"{who}: ZeRO-3 memory plan does not fit: {last['need_gib_per_process']:.1f} GiB per process "
                        f"({terms}) on {nodes} node(s) x {per_node} > {budget / GiB:.1f} GiB ({where}); raise "
                        f"stages.train.max_nodes, set deepspeed.offload_optimizer=true, shorten data.max_tokens / "
                        f"turn on train.grad_checkpointing, or use a larger GPU")
    if last["host_gib_per_node"] * GiB > host_budget:
        what = "the offloaded optimizer (16 bytes/param x 1.5 buffers / nodes)" if offload \
            else "zero.Init staging (4 bytes x largest layer x processes x 1.5)"
        problems.append(f"{who}: host memory per node does not fit: {last['host_gib_per_node']:.0f} GiB for {what} on "
                        f"{nodes} node(s) > stages.train.mem_gb {res.mem_gb:.0f} GiB; raise stages.train.mem_gb "
                        f"(nodes have {profile.mem_per_node_gb:.0f}), spread over more nodes (stages.train.max_nodes), "
                        f"or turn deepspeed.offload_optimizer off")
    return nodes, last


def weights_fit(profile: ClusterProfile, stage: str, who: str, n_params: int, tp: int, fraction: float,
                problems: list[str]) -> dict:
    """bf16 weights of an inference engine (generator, judge, eval) within its GPUs' memory share.

    vLLM claims ``fraction`` of each GPU it shards over (``tp`` of the stage's ``gpus``); the weights
    must fit that with room left for the KV cache (a tenth of it, at least)."""
    res = profile.resources(stage)
    if not res.gpus or not n_params:
        return {}
    weights = 2 * n_params / GiB
    usable = min(tp, res.gpus) * profile.gpu_memory_gb * fraction
    if tp > res.gpus:
        problems.append(f"{who}: tensor_parallel_size={tp} exceeds stages.{stage}.gpus={res.gpus}; raise "
                        f"stages.{stage}.gpus or lower the tensor parallelism")
    elif weights > 0.9 * usable:
        problems.append(f"{who}: {weights:.1f} GiB of bf16 weights do not fit {usable:.1f} GiB "
                        f"({min(tp, res.gpus)} GPU(s) x {profile.gpu_memory_gb} GiB x memory fraction {fraction}) with "
                        f"room for a KV cache; raise the tensor parallelism (and stages.{stage}.gpus)")
    return {"weights_gib": weights, "usable_gib": usable}
