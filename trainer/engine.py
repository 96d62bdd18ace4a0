"""Build the DeepSpeed ZeRO-3 engine: resolved DeepSpeed config, model, optimizer, LR schedule."""
from __future__ import annotations

import copy
import json
import logging
import math
from pathlib import Path

from tracecause.config import read_yaml

from configs import config_path

from .config import TrainConfig

log = logging.getLogger("trainer")
MIN_BUCKET_ELEMENTS = 2 ** 20  # 4 MiB of fp32: see resolve_ds_config


def read_ds_config(name: str) -> dict:
    path = Path(name)
    if not path.is_file():
        folder = Path(config_path("deepspeed", "zero3")).parent
        for cand in (folder / name, folder / f"{name}.yaml", folder / f"{name}.json"):
            if cand.is_file():
                path = cand
                break
        else:
            known = sorted(p.name for p in folder.iterdir())
            raise FileNotFoundError(f"deepspeed.config={name}: not found in {folder}; known: {known}")
    return json.loads(path.read_text()) if path.suffix == ".json" else read_yaml(path)


def resolve_ds_config(cfg: TrainConfig, world: int, accum: int, hidden_size: int, bf16: bool) -> dict:
    """Fill every "auto" from the TrainConfig; a value set in the file that contradicts it is an error."""
    ds = copy.deepcopy(read_ds_config(cfg.deepspeed.config))
    zero = ds.setdefault("zero_optimization", {})
    if zero.get("stage") != 3:
        raise ValueError(f"deepspeed.config={cfg.deepspeed.config}: zero_optimization.stage must be 3, got {zero.get('stage')}")
    wanted = {"train_micro_batch_size_per_gpu": cfg.train.micro_batch_rows,
              "gradient_accumulation_steps": accum,
              "gradient_clipping": cfg.optim.grad_clip}
    for key, value in wanted.items():
        if ds.get(key, "auto") not in ("auto", value):
            raise ValueError(f"deepspeed.config sets {key}={ds[key]} but the trainer config implies {value}; "
                             "set it to auto in the DeepSpeed file")
        ds[key] = value
    ds["train_batch_size"] = cfg.train.micro_batch_rows * accum * world
    ds["bf16"] = {"enabled": bf16}
    ds.pop("fp16", None)
    opt = ds.setdefault("optimizer", {"type": "AdamW", "params": {}})
    params = opt.setdefault("params", {})
    for key, value in {"lr": cfg.optim.lr, "betas": list(cfg.optim.betas), "eps": cfg.optim.eps,
                       "weight_decay": cfg.optim.weight_decay}.items():
        if params.get(key, "auto") == "auto":
            params[key] = value
    if cfg.deepspeed.offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": bf16}
    if zero.get("offload_optimizer", {}).get("device", "none") != "none":
        params.pop("torch_adam", None)  # offload needs DeepSpeedCPUAdam
    # Buckets of hidden^2 elements (transformers' rule for "auto"), never under 2^20: every Qwen3 the
    # study trains has hidden >= 1024, so only a toy model meets the floor, where hidden^2 buckets cut
    # the backward into thousands of tiny reduce calls (the world's 128-wide model: 2432 in a 32-step
    # run). bench/zero3_buckets.py runs a demo task both ways side by side: the floored buckets take
    # 0.90x the training steps' time and 0.93x the task's, with the same losses (bench/RESULTS.md).
    bucket = max(hidden_size * hidden_size, MIN_BUCKET_ELEMENTS)
    for key, value in {"reduce_bucket_size": bucket,
                       "stage3_prefetch_bucket_size": int(0.9 * bucket),
                       "stage3_param_persistence_threshold": 10 * hidden_size}.items():
        if zero.get(key) == "auto":
            zero[key] = value
    left = [k for k, v in _walk(ds) if v == "auto"]
    if left:
        raise ValueError(f"deepspeed.config={cfg.deepspeed.config}: cannot resolve 'auto' for {left}")
    return ds


def _walk(d: dict, prefix: str = ""):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _walk(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def lr_lambda(cfg: TrainConfig, total_steps: int):
    warm, kind, floor = cfg.optim.warmup_steps, cfg.optim.schedule, cfg.optim.min_lr_ratio

    def factor(step: int) -> float:  # step = optimizer steps already taken
        if warm and step < warm:
            return (step + 1) / warm
        if kind == "constant":
            return 1.0
        span = max(1, total_steps - warm)
        progress = min(1.0, (step - warm) / span)
        shape = 0.5 * (1 + math.cos(math.pi * progress)) if kind == "cosine" else 1 - progress
        return floor + (1 - floor) * shape

    return factor


def build(cfg: TrainConfig, ds_config: dict, attention: str, total_steps: int):
    """Return (engine, hf_config). The model is created under zero.Init (partitioned as it loads)."""
    import deepspeed
    import torch
    from torch.optim.lr_scheduler import LambdaLR
    from transformers import AutoModelForCausalLM
    from transformers.integrations import HfDeepSpeedConfig

    dtype = torch.bfloat16 if ds_config["bf16"]["enabled"] else torch.float32
    keep_alive = HfDeepSpeedConfig(ds_config)  # noqa: F841 — makes from_pretrained use zero.Init
    model = AutoModelForCausalLM.from_pretrained(cfg.model.path, revision=cfg.model.revision or None,
                                                 dtype=dtype, attn_implementation=attention)
    model.config.use_cache = False
    if cfg.train.grad_checkpointing:
        # one checkpoint per decoder layer; non-reentrant: works with ZeRO-3's parameter hooks
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        log.info("gradient checkpointing: %s (each decoder layer recomputed in backward)",
                 "on" if model.is_gradient_checkpointing else "REQUESTED BUT OFF")
    factor = lr_lambda(cfg, total_steps)
    # DeepSpeed steps the schedule at each boundary and checkpoints its state
    engine, _, _, _ = deepspeed.initialize(model=model, model_parameters=model.parameters(), config=ds_config,
                                           lr_scheduler=lambda opt: LambdaLR(opt, factor))
    engine._tracecause_hf_ds_config = keep_alive  # zero3-awareness of transformers lives as long as the engine
    return engine, model.config
