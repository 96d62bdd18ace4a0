"""One training run on every rank: checks, data, engine, steps, checkpoints, export.

Every check that can fail on bad input (config, world size, dataset, overlong documents,
checkpoint hash) runs before the process group and the model exist. Then rank 0 takes the output
folder's lease (tracecause.lease; a second attempt refuses, naming the holder, before it writes
anything) and only then is the resume point chosen: no other attempt can rotate it away before it
is loaded. Every destructive step is fenced (a collective check that the lease was not taken over):
cutting metrics.jsonl back, each logged step, each checkpoint, the export.

Read top-down: ``run`` (checks, process group, lease) -> ``_train_under_lease`` (resume point, run
files, engine, resume) -> ``_train_loop`` (the steps, checkpoints) -> ``_export``.
"""
from __future__ import annotations

import logging
import random
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoConfig, AutoTokenizer

from tracecause.config import to_dict, write_resolved
from tracecause.contracts import EXIT_REQUEUE, EXPORT_META
from tracecause.io import atomic_write_json, is_complete, read_json
from tracecause.lease import EXIT_LEASE_HELD, Lease, LeaseHeld, LeaseLost

from . import checkpoint, distributed, runtime
from .config import TrainConfig, training_hash
from .data import TokenizedData, dataset_digest, prepare
from .engine import build, resolve_ds_config
from .export import export
from .flops import flops_per_token, mfu
from .loss import summed_loss
from .packing import StepPlan, collate, deal, make_plan
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


@dataclass
class Checked:
    """What the checks before the process group established (nothing is written yet)."""

    cfg: TrainConfig
    rank: int
    world: int
    out: Path
    ckpt_root: Path
    chash: str               # the training hash: what a checkpoint or export must have been made by
    accum: int               # gradient accumulation steps
    attention: str
    use_cuda: bool
    info: dict               # run.json
    ds_config: dict          # the resolved DeepSpeed config
    data: TokenizedData
    plan: StepPlan
    tokenizer: Any


@dataclass
class Progress:
    """Where the run stands: what each checkpoint records and the export reads."""

    step: int
    consumed_rows: int
    run_id: str                          # the W&B run, kept across resumes
    saved_step: int                      # the newest checkpoint this attempt can rely on (-1: none)
    last_loss: float | None = None
    last_ckpt_time: float | None = None  # logged with the next step, then cleared


def run(cfg: TrainConfig) -> int:
    cfg.require_complete()
    denv = distributed.detect()
    setup_logging(denv.rank)
    checked = check_inputs(cfg, denv)
    if checked is None:
        return 0
    stop = StopFlag()
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    random.seed(cfg.train.seed)
    np.random.seed(cfg.train.seed)
    torch.manual_seed(cfg.train.seed)
    distributed.init(denv, checked.use_cuda, cfg.train.collective_timeout_min)
    lease = None
    try:
        lease, token = distributed.take_lease(checked.out, checked.rank)
        return _train_under_lease(checked, lease, token, stop)
    except (LeaseHeld, LeaseLost) as err:  # another attempt writes this folder: not a crash, nothing touched
        log.error("%s", err)
        print(f"trainer: refused: {err}", file=sys.stderr, flush=True)
        return EXIT_LEASE_HELD
    finally:
        if lease is not None:
            lease.release()
        stop.restore()
        distributed.shutdown()


def check_inputs(cfg: TrainConfig, denv: distributed.DistEnv) -> Checked | None:
    """Every check that can fail on bad input, before any process group or model exists; None when the
    output folder already holds this config's finished export."""
    rank, world = denv.rank, denv.world_size
    accum = accumulation_steps(cfg, world)
    out = Path(cfg.output.dir)
    ckpt_root = Path(cfg.checkpoint.dir) if cfg.checkpoint.dir else out / "checkpoints"
    chash = training_hash(cfg)
    if finished_export(out, chash, dataset_digest(cfg.data), cfg.data.path):
        log.info("%s already holds a complete export of config %s: nothing to do", out / "export", chash)
        return None

    tokenizer = AutoTokenizer.from_pretrained(cfg.model.path, revision=cfg.model.revision or None)
    data = prepare(cfg.data, tokenizer)
    plan = make_plan(data.examples, cfg.data.max_tokens, cfg.train.seed, cfg.train.epochs,
                     cfg.train.global_batch_rows, cfg.train.max_steps)
    checkpoint.check_newest_compatible(ckpt_root, chash, world, data.dataset_hash, cfg.data.path)
    attention = runtime.choose_attention(cfg.train.attention)
    runtime.check_loss(cfg.train.loss)
    hf_config = AutoConfig.from_pretrained(cfg.model.path, revision=cfg.model.revision or None)
    use_cuda = runtime.use_cuda()
    ds_config = resolve_ds_config(cfg, world, accum, hf_config.hidden_size, bf16=use_cuda)
    info = {"config_hash": chash, "world_size": world, "launcher": denv.source, "attention": attention,
            "loss": cfg.train.loss, "grad_checkpointing": cfg.train.grad_checkpointing,
            "precision": runtime.precision(), "device": runtime.device_name(), "accumulation_steps": accum,
            "total_steps": plan.total_steps, "data": data.summary()}
    log.info("config %s | %d ranks (%s) | attention=%s precision=%s | %d documents -> %d steps "
             "(%d rows/step, %d accumulation) | overlong: %s", chash, world, denv.source, attention,
             info["precision"], len(data.examples), plan.total_steps, cfg.train.global_batch_rows, accum, data.overlong)
    return Checked(cfg, rank, world, out, ckpt_root, chash, accum, attention, use_cuda, info, ds_config, data, plan,
                   tokenizer)


def _train_under_lease(c: Checked, lease: Lease | None, token: int, stop: StopFlag) -> int:
    """Everything that writes the output folder: only ever run while this attempt holds its lease."""
    cfg = c.cfg
    if finished_export(c.out, c.chash, c.data.dataset_hash, cfg.data.path):  # the previous holder finished it
        log.info("%s was completed by the attempt that held the lease before: nothing to do", c.out / "export")
        return 0
    resume_from = checkpoint.resume_point(c.ckpt_root)
    if resume_from is not None:
        checkpoint.check_compatible(resume_from, c.chash, c.world, c.data.dataset_hash, cfg.data.path)
    c.info["resumed_from_step"] = int(resume_from.name) if resume_from is not None else 0
    if c.rank == 0:
        c.out.mkdir(parents=True, exist_ok=True)
        write_resolved(cfg, c.out)
        atomic_write_json(c.out / "run.json", c.info)
        atomic_write_json(c.out / "deepspeed_config.json", c.ds_config)
    engine, hf_config = build(cfg, c.ds_config, c.attention, c.plan.total_steps)

    prog = Progress(0, 0, wandb_run_id(c.chash, cfg.wandb.group), saved_step=-1)
    if resume_from is not None:
        state = checkpoint.load(engine, resume_from, c.rank)
        prog.step, prog.run_id = state["step"], state.get("wandb_run_id", prog.run_id)
        prog.saved_step = prog.step
        log.info("resumed from %s (step %d)", resume_from, prog.step)
    prog.consumed_rows = sum(len(c.plan.step_rows(s)) for s in range(prog.step))
    distributed.fence(lease, f"cutting metrics.jsonl back to step {prog.step}")
    if c.rank == 0:
        truncate_metrics(c.out / "metrics.jsonl", prog.step)
    distributed.barrier()

    run_info = {k: v for k, v in c.info.items() if k not in ("data", "resumed_from_step")}
    reporter = Reporter(c.out, c.rank == 0, c.plan.total_steps, prog.step, cfg.log.progress, cfg.wandb, prog.run_id,
                        {**to_dict(cfg), "config_hash": c.chash, **run_info}, cfg.arm_id)
    return _train_loop(c, engine, hf_config, prog, reporter, stop, lease, token)


def _train_loop(c: Checked, engine, hf_config, prog: Progress, reporter: Reporter, stop: StopFlag, lease: Lease | None,
                token: int) -> int:
    """The steps from ``prog.step`` to the plan's end with their checkpoints, then the last checkpoint and
    the export. On a stop signal: save, close the reporter, return EXIT_REQUEUE."""
    cfg, rank, world, plan, data = c.cfg, c.rank, c.world, c.plan, c.data
    pad_id = c.tokenizer.pad_token_id if c.tokenizer.pad_token_id is not None else c.tokenizer.eos_token_id
    device = runtime.device()
    lengths = [len(e) for e in data.examples]
    seq_len = sum(n * n for n in lengths) / max(1, sum(lengths))  # token-weighted document length
    flops_tok = flops_per_token(hf_config, int(seq_len))
    peak = runtime.peak_flops()
    try:
        while prog.step < plan.total_steps:
            if stop.should_stop(world > 1):
                log.warning("signal %s: saving at step %d and exiting for requeue", stop.received or "(other rank)",
                            prog.step)
                if prog.saved_step != prog.step and prog.step > 0:  # at step 0 a requeue simply starts over
                    _save(c, engine, prog, lease, token)
                reporter.close(EXIT_REQUEUE)
                return EXIT_REQUEUE
            t0 = time.perf_counter()
            rows = plan.step_rows(prog.step)
            n_targets = sum(data.examples[d].n_targets for row in rows for d in row)
            real_tokens = sum(lengths[d] for row in rows for d in row)
            loss_sum, padded = 0.0, 0
            for micro in deal(rows, rank, world, cfg.train.micro_batch_rows, c.accum):
                batch = collate(data.examples, micro, pad_id, flat=True)  # one row: exact on every backend
                loss = summed_loss(engine, batch, device, c.attention, cfg.train.loss, cfg.train.loss_chunk_tokens)
                engine.backward(loss * (world / max(1, n_targets)), scale_wrt_gas=False)
                lr = engine.get_lr()[0]
                engine.step()
                loss_sum += float(loss.detach())
                padded += batch.input_ids.size
            loss_total, padded_total = distributed.all_reduce_sum([loss_sum, float(padded)])
            prog.step += 1
            prog.consumed_rows += len(rows)
            prog.last_loss = loss_total / max(1, n_targets)
            dt = time.perf_counter() - t0
            if prog.step % cfg.log.every_steps == 0 or prog.step == plan.total_steps:
                distributed.fence(lease, f"logging step {prog.step}")  # a taken-over attempt never logs a step twice
                grad_norm = engine.get_global_grad_norm()
                tps = real_tokens / dt / world
                reporter.step({"step": prog.step, "epoch": plan.locate(prog.step - 1)[0], "loss": prog.last_loss,
                               "lr": lr, "grad_norm": None if grad_norm is None else float(grad_norm),
                               "tokens_per_s": tps, "padding_frac": 1 - real_tokens / max(1.0, padded_total),
                               "mfu": mfu(tps, flops_tok, peak), "peak_mem": runtime.peak_memory_bytes(),
                               "ckpt_time": prog.last_ckpt_time, "target_tokens": n_targets})
                prog.last_ckpt_time = None
            if cfg.checkpoint.every_steps and prog.step % cfg.checkpoint.every_steps == 0 \
                    and prog.step < plan.total_steps:
                prog.last_ckpt_time = _save(c, engine, prog, lease, token)
        if prog.saved_step != prog.step:
            _save(c, engine, prog, lease, token)
        if cfg.output.export:
            _export(c, engine, prog, reporter, lease)
        distributed.barrier()
    finally:
        stop.restore()
        distributed.shutdown()
    reporter.close()
    return 0


def _save(c: Checked, engine, prog: Progress, lease: Lease | None, token: int) -> float:
    """Checkpoint the current step (fenced inside checkpoint.save); its duration in seconds."""
    s = prog.step
    state = {"step": s, "epoch": c.plan.locate(min(s, c.plan.total_steps - 1))[0], "consumed_rows": prog.consumed_rows,
             "config_hash": c.chash, "dataset_hash": c.data.dataset_hash, "world_size": c.world,
             "wandb_run_id": prog.run_id, "last_loss": prog.last_loss}
    t = checkpoint.save(engine, c.ckpt_root, s, state, c.rank, c.cfg.checkpoint.keep_last, lease, token)
    log.info("checkpoint %d saved in %.1fs", s, t)
    prog.saved_step = s
    return t


def _export(c: Checked, engine, prog: Progress, reporter: Reporter, lease: Lease | None) -> None:
    cfg = c.cfg
    final_loss = prog.last_loss
    if final_loss is None:  # resumed at the last step: the loss the checkpoint recorded
        final_loss = checkpoint.read_state(checkpoint.latest(c.ckpt_root)).get("last_loss")
    meta = {"arm_id": cfg.arm_id, "config_hash": c.chash, "dataset_hash": c.data.dataset_hash, "steps": prog.step,
            "final_loss": final_loss, "base_model": cfg.model.path, "base_revision": cfg.model.revision,
            "paradigm": cfg.data.paradigm, "rtype": cfg.data.rtype, "precision": c.info["precision"],
            "wandb_run_id": prog.run_id, "world_size": c.world}
    distributed.fence(lease, "exporting")
    done = export(engine, c.out / "export", cfg.model.path, cfg.model.revision, meta, cfg.output.max_shard_size,
                  c.rank, lease)
    if done:
        reporter.summary({"final_loss": meta["final_loss"], "weights_hash": done["weights_hash"]})
