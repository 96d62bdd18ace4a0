"""What a run reports: metrics.jsonl lines, a progress bar or plain lines, and W&B (rank 0 only).

metrics.jsonl has one JSON object per logged step (step, loss, lr, grad_norm, tokens_per_s,
padding_frac, mfu, peak_mem, ckpt_time); launch's status reads its last line. On resume the file
is cut back to the resumed step, so every step appears once.

W&B (offline, one fragment per attempt under the same run id): a resumed attempt reads what its
predecessors' fragments hold, backfills from metrics.jsonl the steps they never flushed (a
SIGKILLed attempt can leave an empty fragment), and does not log again a replayed step they
already hold, so the run has every step exactly once, charted on ``train/global_step``.
"""
from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

from tracecause.io import atomic_write_text

log = logging.getLogger("trainer")
METRICS_FILE = "metrics.jsonl"


def read_metrics(path: str | Path) -> list[dict]:
    rows = []
    p = Path(path)
    if not p.is_file():
        return rows
    for line in p.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut by a SIGKILL
    return rows


def truncate_metrics(path: Path, upto_step: int) -> None:
    rows = [r for r in read_metrics(path) if r.get("step", 0) <= upto_step]
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


def _init_wandb_run(wandb, attempts: int = 12, **kwargs):
    """wandb.init, waiting out a predecessor's orphaned service that still holds the run id.

    A worker killed hard on this node can leave its wandb-core alive for a while; the
    requeued run must continue the same run id rather than fail or fork a new run.
    """
    import time

    for attempt in range(attempts):
        try:
            return wandb.init(**kwargs)
        except Exception as err:  # wandb raises ServerResponseError; match on its message
            if "is in use" not in str(err) or attempt == attempts - 1:
                raise
            log.warning("W&B run id %s still held by an old process; retrying in 5 s", kwargs.get("id"))
            time.sleep(5)


def wandb_run_id(config_hash: str, group: str = "") -> str:
    """The training hash names the run; the sweep's group keeps two sweeps of one spec apart."""
    if not group:
        return f"train-{config_hash}"
    from tracecause.config import config_hash as hash_of

    return f"train-{hash_of({'training': config_hash, 'group': group})}"


def flushed_steps(wandb_dir: Path, run_id: str, own_folder: Path | None = None) -> set[int]:
    """``train/global_step`` values the run's earlier fragments hold (a torn or unreadable one: what it has)."""
    from tracecause import wandb_records

    steps: set[int] = set()
    if not wandb_dir.is_dir():
        return steps
    own = own_folder.resolve() if own_folder else None
    for path in wandb_records.find_run_files(wandb_dir, run_id):
        if path.parent.resolve() == own:
            continue
        try:
            wandb_records.wait_settled(path)  # its wandb service may still be writing it
            rows = wandb_records.history(path)
        except wandb_records.WandbFileError as err:  # backfill re-logs what it cannot see: never a gap
            log.warning("W&B fragment %s is unreadable (%s): its steps are logged again", path, err)
            continue
        steps.update(int(r["train/global_step"]) for r in rows if r.get("train/global_step") is not None)
    return steps


def _wandb_row(row: dict) -> dict:
    return {"train/global_step": row["step"], **{f"train/{k}": v for k, v in row.items() if k != "step" and v is not None}}


class Reporter:
    def __init__(self, out_dir: Path, is_main: bool, total_steps: int, start_step: int, progress: str,
                 wandb_cfg, run_id: str, config: dict, arm_id: str):
        self.is_main = is_main
        self.path = Path(out_dir) / METRICS_FILE
        self.bar = None
        self.run = None
        self.in_wandb: set[int] = set()  # steps an earlier fragment of this run already holds
        if not is_main:
            return
        use_bar = progress == "bar" or (progress == "auto" and sys.stderr.isatty())
        if use_bar:
            from tqdm import tqdm

            self.bar = tqdm(total=total_steps, initial=start_step, desc="train", unit="step", dynamic_ncols=True)
        if wandb_cfg.enabled and wandb_cfg.mode != "disabled":
            import wandb

            wdir = Path(wandb_cfg.dir or out_dir)
            wdir.mkdir(parents=True, exist_ok=True)
            from tracecause.provenance import code_version

            code = code_version()
            self.run = _init_wandb_run(wandb, project=wandb_cfg.project, group=wandb_cfg.group or None,
                                       job_type="train", id=run_id, resume="allow", name=arm_id or run_id,
                                       config={**config, "sweep_hash": wandb_cfg.sweep_hash,
                                               "git_commit": code["commit"], "git_dirty": code["dirty"]},
                                       dir=str(wdir), mode=wandb_cfg.mode,
                                       tags=[t for t in arm_id.split(".")[:3] if t])
            self.run.define_metric("train/global_step")
            self.run.define_metric("train/*", step_metric="train/global_step")
            # after init: a killed predecessor's service has let go of the id, so its fragment is final
            self.in_wandb = flushed_steps(wdir / "wandb", run_id, Path(self.run.dir).parent)
            backfill = [r for r in read_metrics(self.path) if r.get("step") not in self.in_wandb]
            for row in backfill:
                self.run.log(_wandb_row(row))
            self.in_wandb.update(r["step"] for r in backfill)
            if backfill:
                log.info("W&B: backfilled %d step(s) from %s that earlier attempts never flushed",
                         len(backfill), self.path.name)

    def step(self, row: dict) -> None:
        if not self.is_main:
            return
        line = json.dumps(row) + "\n"
        with open(self.path, "a") as fh:  # one write() per line: a kill leaves at most one cut line
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        if self.run is not None and row["step"] not in self.in_wandb:  # a replayed step W&B holds: once
            self.run.log(_wandb_row(row))
        if self.bar is not None:
            self.bar.n = row["step"]
            self.bar.set_postfix(loss=f"{row['loss']:.4f}", lr=f"{row['lr']:.2e}")
            self.bar.refresh()
        else:
            mfu = "n/a" if row.get("mfu") is None else f"{row['mfu']:.1%}"
            log.info("step %d loss %.4f lr %.3e grad_norm %s tok/s/dev %.0f pad %.1f%% mfu %s peak_mem %.2fGiB%s",
                     row["step"], row["loss"], row["lr"],
                     "n/a" if row.get("grad_norm") is None else f"{row['grad_norm']:.3f}",
                     row["tokens_per_s"], 100 * row["padding_frac"], mfu, row["peak_mem"] / 2**30,
                     f" ckpt {row['ckpt_time']:.1f}s" if row.get("ckpt_time") else "")

    def summary(self, values: dict) -> None:
        if self.run is not None:
            for k, v in values.items():
                self.run.summary[k] = v

    def close(self, exit_code: int = 0) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.run is not None:
            self.run.finish(exit_code=exit_code)  # 75: saved for requeue, visible in W&B
