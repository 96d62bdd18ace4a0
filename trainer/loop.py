"""One training run on every rank: checks, data, engine, steps, checkpoints, export.

Every check that can fail on bad input (config, world size, dataset, overlong documents,
checkpoint hash) runs before the process group and the model exist. Then rank 0 takes the output
folder's lease (tracecause.lease; a second attempt refuses, naming the holder, before it writes
anything) and only then is the resume point chosen: no other attempt can rotate it away before it
is loaded. Every destructive step is fenced (a collective check that the lease was not taken over):
cutting metrics.jsonl back, each logged step, each checkpoint, the export.
"""
from __future__ import annotations

import logging
import random
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from tracecause.config import write_resolved
from tracecause.contracts import EXIT_REQUEUE, EXPORT_META
from tracecause.io import atomic_write_json, completion_info, is_complete, read_json
from tracecause.lease import EXIT_LEASE_HELD, LeaseHeld, LeaseLost

from . import checkpoint, distributed, runtime
from .config import TrainConfig, training_hash
from .flops import flops_per_token, mfu
from .packing import collate, deal, make_plan
from .reporting import Reporter, truncate_metrics, wandb_run_id
from .signals import StopFlag

log = logging.getLogger("trainer")


def setup_logging(rank: int) -> None:
    logging.basicConfig(level=logging.INFO if rank == 0 else logging.WARNING,
                        format=f"%(asctime)s [rank{rank}] %(levelname)s %(message)s", force=True)
    # DeepSpeed's ZeRO-3 collectives call torch APIs torch deprecates: one warning per call, per step
    warnings.filterwarnings("ignore", message=r"`torch\.distributed\.\w+` is deprecated", category=FutureWarning)


def accumulation_steps(cfg: TrainConfig, world: int) -> int:
    per_pass = cfg.train.micro_batch_rows * world
    if cfg.train.global_batch_rows % per_pass:
        raise ValueError(f"train.global_batch_rows={cfg.train.global_batch_rows} is not divisible by "
                         f"train.micro_batch_rows={cfg.train.micro_batch_rows} x world size {world} = {per_pass}; "
                         f"use a multiple of {per_pass} (or change micro_batch_rows / the number of processes)")
    return cfg.train.global_batch_rows // per_pass


def finished_export(out: Path, chash: str, dataset_hash: str, data_path: str) -> bool:
    export_dir = out / "export"
    if not is_complete(export_dir):
        return False
    meta = read_json(export_dir / EXPORT_META)
    if meta.get("config_hash") != chash:
        raise ValueError(f"{export_dir} was exported by config hash {meta.get('config_hash')}, this run's config "
                         f"hash is {chash}: use another output.dir")
    checkpoint.check_dataset(f"the export {export_dir}", meta.get("dataset_hash"), dataset_hash, data_path)
    return True


def run(cfg: TrainConfig) -> int:
    import torch
    from transformers import AutoConfig, AutoTokenizer

    from .data import dataset_digest, prepare

    cfg.require_complete()
    denv = distributed.detect()
    rank, world = denv.rank, denv.world_size
    setup_logging(rank)
    accum = accumulation_steps(cfg, world)
    out = Path(cfg.output.dir)
    ckpt_root = Path(cfg.checkpoint.dir) if cfg.checkpoint.dir else out / "checkpoints"
    chash = training_hash(cfg)
    if finished_export(out, chash, dataset_digest(cfg.data), cfg.data.path):
        log.info("%s already holds a complete export of config %s: nothing to do", out / "export", chash)
        return 0

    tokenizer = AutoTokenizer.from_pretrained(cfg.model.path, revision=cfg.model.revision or None)
    data = prepare(cfg.data, tokenizer)
    plan = make_plan(data.examples, cfg.data.max_tokens, cfg.train.seed, cfg.train.epochs,
                     cfg.train.global_batch_rows, cfg.train.max_steps)
    checkpoint.check_newest_compatible(ckpt_root, chash, world, data.dataset_hash, cfg.data.path)
    attention = runtime.choose_attention(cfg.train.attention)
    runtime.check_loss(cfg.train.loss)
    hf_config = AutoConfig.from_pretrained(cfg.model.path, revision=cfg.model.revision or None)
    use_cuda = runtime.use_cuda()
    from .engine import resolve_ds_config

    ds_config = resolve_ds_config(cfg, world, accum, hf_config.hidden_size, bf16=use_cuda)
    info = {"config_hash": chash, "world_size": world, "launcher": denv.source, "attention": attention,
            "loss": cfg.train.loss, "grad_checkpointing": cfg.train.grad_checkpointing,
            "precision": runtime.precision(), "device": runtime.device_name(), "accumulation_steps": accum,
            "total_steps": plan.total_steps, "data": data.summary()}
    log.info("config %s | %d ranks (%s) | attention=%s precision=%s | %d documents -> %d steps "
             "(%d rows/step, %d accumulation) | overlong: %s", chash, world, denv.source, attention,
             info["precision"], len(data.examples), plan.total_steps, cfg.train.global_batch_rows, accum, data.overlong)

    stop = StopFlag()
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    random.seed(cfg.train.seed)
    np.random.seed(cfg.train.seed)
    torch.manual_seed(cfg.train.seed)
    distributed.init(denv, use_cuda, cfg.train.collective_timeout_min)
    lease = None
    try:
        lease, token = distributed.take_lease(out, rank)
        return _train_under_lease(cfg, rank, lease, token, stop, info, ds_config, data, plan, tokenizer, ckpt_root)
    except (LeaseHeld, LeaseLost) as err:  # another attempt writes this folder: not a crash, nothing touched
        log.error("%s", err)
        print(f"trainer: refused: {err}", file=sys.stderr, flush=True)
        return EXIT_LEASE_HELD
    finally:
        if lease is not None:
            lease.release()
        stop.restore()
        distributed.shutdown()


def _train_under_lease(cfg: TrainConfig, rank: int, lease, token: int, stop: StopFlag, info: dict, ds_config: dict,
                       data, plan, tokenizer, ckpt_root: Path) -> int:
    """Everything that writes the output folder: only ever run while this attempt holds its lease."""
    from .engine import build

    world, chash, out = info["world_size"], info["config_hash"], Path(cfg.output.dir)
    attention, accum = info["attention"], info["accumulation_steps"]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if finished_export(out, chash, data.dataset_hash, cfg.data.path):  # the previous holder finished it
        log.info("%s was completed by the attempt that held the lease before: nothing to do", out / "export")
        return 0
    resume_from = checkpoint.resume_point(ckpt_root)
    if resume_from is not None:
        checkpoint.check_compatible(resume_from, chash, world, data.dataset_hash, cfg.data.path)
    info["resumed_from_step"] = int(resume_from.name) if resume_from is not None else 0
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        write_resolved(cfg, out)
        atomic_write_json(out / "run.json", info)
        atomic_write_json(out / "deepspeed_config.json", ds_config)
    engine, hf_config = build(cfg, ds_config, attention, plan.total_steps)
    device = runtime.device()

    step, run_id = 0, wandb_run_id(chash, cfg.wandb.group)
    if resume_from is not None:
        state = checkpoint.load(engine, resume_from, rank)
        step, run_id = state["step"], state.get("wandb_run_id", run_id)
        log.info("resumed from %s (step %d)", resume_from, step)
    distributed.fence(lease, f"cutting metrics.jsonl back to step {step}")
    if rank == 0:
        truncate_metrics(out / "metrics.jsonl", step)
    distributed.barrier()

    from tracecause.config import to_dict

    reporter = Reporter(out, rank == 0, plan.total_steps, step, cfg.log.progress, cfg.wandb, run_id,
                        {**to_dict(cfg), "config_hash": chash, **{k: v for k, v in info.items() if k not in ("data", "resumed_from_step")}},
                        cfg.arm_id)
    lengths = [len(e) for e in data.examples]
    seq_len = sum(n * n for n in lengths) / max(1, sum(lengths))  # token-weighted document length
    flops_tok = flops_per_token(hf_config, int(seq_len))
    peak = runtime.peak_flops()
    consumed_rows = sum(len(plan.step_rows(s)) for s in range(step))
    last_loss, last_ckpt_time, saved_step = None, None, step if resume_from is not None else -1

    def state_for(s: int) -> dict:
        return {"step": s, "epoch": plan.locate(min(s, plan.total_steps - 1))[0], "consumed_rows": consumed_rows,
                "config_hash": chash, "dataset_hash": data.dataset_hash, "world_size": world,
                "wandb_run_id": run_id, "last_loss": last_loss}

    def save(s: int) -> float:
        t = checkpoint.save(engine, ckpt_root, s, state_for(s), rank, cfg.checkpoint.keep_last, lease, token)
        log.info("checkpoint %d saved in %.1fs", s, t)
        return t

    from .loss import summed_loss

    try:
        while step < plan.total_steps:
            if stop.should_stop(world > 1):
                log.warning("signal %s: saving at step %d and exiting for requeue", stop.received or "(other rank)", step)
                if saved_step != step and step > 0:  # at step 0 a requeue simply starts over
                    save(step)
                reporter.close(EXIT_REQUEUE)
                return EXIT_REQUEUE
            t0 = time.perf_counter()
            rows = plan.step_rows(step)
            n_targets = sum(data.examples[d].n_targets for row in rows for d in row)
            real_tokens = sum(lengths[d] for row in rows for d in row)
            loss_sum, padded = 0.0, 0
            for micro in deal(rows, rank, world, cfg.train.micro_batch_rows, accum):
                batch = collate(data.examples, micro, pad_id, flat=True)  # one row: exact on every backend
                loss = summed_loss(engine, batch, device, attention, cfg.train.loss, cfg.train.loss_chunk_tokens)
                engine.backward(loss * (world / max(1, n_targets)), scale_wrt_gas=False)
                lr = engine.get_lr()[0]
                engine.step()
                loss_sum += float(loss.detach())
                padded += batch.input_ids.size
            loss_total, padded_total = distributed.all_reduce_sum([loss_sum, float(padded)])
            step += 1
            consumed_rows += len(rows)
            last_loss = loss_total / max(1, n_targets)
            dt = time.perf_counter() - t0
            if step % cfg.log.every_steps == 0 or step == plan.total_steps:
                distributed.fence(lease, f"logging step {step}")  # a taken-over attempt never logs a step twice
                grad_norm = engine.get_global_grad_norm()
                tps = real_tokens / dt / world
                reporter.step({"step": step, "epoch": plan.locate(step - 1)[0], "loss": last_loss, "lr": lr,
                               "grad_norm": None if grad_norm is None else float(grad_norm),
                               "tokens_per_s": tps, "padding_frac": 1 - real_tokens / max(1.0, padded_total),
                               "mfu": mfu(tps, flops_tok, peak), "peak_mem": runtime.peak_memory_bytes(),
                               "ckpt_time": last_ckpt_time, "target_tokens": n_targets})
                last_ckpt_time = None
            if cfg.checkpoint.every_steps and step % cfg.checkpoint.every_steps == 0 and step < plan.total_steps:
                last_ckpt_time, saved_step = save(step), step
        if saved_step != step:
            save(step)
        if cfg.output.export:
            from .export import export

            meta = {"arm_id": cfg.arm_id, "config_hash": chash, "dataset_hash": data.dataset_hash, "steps": step,
                    "final_loss": last_loss if last_loss is not None else checkpoint.read_state(checkpoint.latest(ckpt_root)).get("last_loss"),
                    "base_model": cfg.model.path, "base_revision": cfg.model.revision,
                    "paradigm": cfg.data.paradigm, "rtype": cfg.data.rtype, "precision": info["precision"],
                    "wandb_run_id": run_id,
                    "world_size": world}
            distributed.fence(lease, "exporting")
            done = export(engine, out / "export", cfg.model.path, cfg.model.revision, meta, cfg.output.max_shard_size,
                          rank, lease)
            if done:
                reporter.summary({"final_loss": meta["final_loss"], "weights_hash": done["weights_hash"]})
        distributed.barrier()
    finally:
        stop.restore()
        distributed.shutdown()
    reporter.close()
    return 0
