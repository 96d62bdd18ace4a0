"""One eval task's W&B run and progress file.

While the task runs: requests done / total and tokens/s per stage and mode, in W&B and in
``eval/<arm>/<mode>/progress-<k>-of-<n>.json`` (what ``tracecause status`` shows). When a mode's
scores are written: every benchmark x metric of that mode with its CI, n and the judge's
unparsed rate. generate, judge and score each run in their own process: each adds a fragment
to the same run id (hash of sweep group, arm, modes and shard: never a SLURM job id), so a
requeued task continues its run, and so does a sweep moved to another folder.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tracecause.contracts import EXPORT_META, eval_progress_file
from tracecause.io import atomic_write_json

from evalsuite.config import EvalConfig


def eval_run_id(cfg: EvalConfig) -> str:
    from evalsuite.tracking import run_id

    return "eval-" + run_id(_group(cfg), cfg.arm_id, sorted(cfg.modes), cfg.shard.index, cfg.shard.count)


def _group(cfg: EvalConfig) -> str:
    return cfg.wandb.group or Path(cfg.sweep_dir).resolve().name


def run_name(cfg: EvalConfig) -> str:
    label = cfg.modes[0] if len(cfg.modes) == 1 else "all"
    return f"{cfg.arm_id}.eval.{label}.{cfg.shard.index}"


def training_run_id(model_dir: str) -> str:
    """The W&B id of the training run that exported ``model_dir`` ("" for a base model)."""
    meta = Path(model_dir) / EXPORT_META
    if not meta.is_file():
        return ""
    info = json.loads(meta.read_text())
    return str(info.get("wandb_run_id") or "")


class EvalTracker:
    """Progress and results of one stage process of an eval task (W&B only when the config enables it)."""

    def __init__(self, cfg: EvalConfig, stage: str):
        self.cfg, self.stage = cfg, stage
        self.run_id = eval_run_id(cfg)
        self.run = None
        self.mode = ""
        self.done = self.total = self.tokens = 0
        self.t0 = time.perf_counter()
        self.enabled = cfg.wandb.enabled and cfg.wandb.mode != "disabled"

    # ------------------------------------------------------------------ W&B
    def _wandb(self):
        if self.run is None and self.enabled:
            from tracecause.provenance import code_version

            from evalsuite.tracking import init_run

            c, code = self.cfg, code_version()
            self.run = init_run(
                c.sweep_dir, job_type="eval", run_id=self.run_id, name=run_name(c), group=_group(c),
                project=c.wandb.project, mode=c.wandb.mode,
                config={"arm_id": c.arm_id, "modes": list(c.modes), "battery": c.battery,
                        "shard": {"index": c.shard.index, "count": c.shard.count},
                        "train_run_id": training_run_id(c.model), "sweep_group": _group(c),
                        "sweep_hash": c.wandb.sweep_hash, "git_commit": code["commit"], "git_dirty": code["dirty"]},
                tags=["eval", *c.modes, *c.arm_id.split(".")[:3]])
            self.run.define_metric("progress/*", step_metric="progress/elapsed_s")
        return self.run

    # ------------------------------------------------------------------ progress
    def begin(self, mode: str, total: int, already_done: int = 0) -> None:
        """A batch of ``total`` requests of ``mode``, ``already_done`` of them answered by the cache."""
        if mode != self.mode:
            self.mode, self.done, self.total, self.tokens, self.t0 = mode, 0, 0, 0, time.perf_counter()
        self.total += total
        self.done += already_done
        self._report()

    def advance(self, requests: int, tokens: int = 0) -> None:
        self.done += requests
        self.tokens += tokens
        self._report()

    def _report(self) -> None:
        elapsed = time.perf_counter() - self.t0
        tps = self.tokens / elapsed if self.tokens and elapsed > 0 else None
        out = self.cfg.out_dir(self.mode)
        atomic_write_json(out / eval_progress_file(self.cfg.shard.index, self.cfg.shard.count),
                          {"stage": self.stage, "mode": self.mode, "done": self.done, "total": self.total,
                           "tokens_per_s": tps, "wandb_run_id": self.run_id if self.enabled else "",
                           "updated_at": time.time()})
        run = self._wandb()
        if run is not None:
            key = f"progress/{self.stage}/{self.mode}"
            run.log({"progress/elapsed_s": elapsed, f"{key}/requests_done": self.done,
                     f"{key}/requests_total": self.total,
                     **({f"{key}/tokens_per_s": tps} if tps is not None else {})})

    # ------------------------------------------------------------------ results
    def completed(self, mode: str, summary: dict, scores: Any = None, samples: list[dict] | None = None) -> None:
        """Every benchmark x metric of ``mode`` (value, CI, n, unparsed rate); a sample table if opted in
        (``scores``: the long scores frame; ``samples``: the sample rows, whose text joins it for "text")."""
        from evalsuite.tracking import eval_metrics, plain_table, safe_table_frame

        run = self._wandb()
        if run is None:
            return
        metrics = eval_metrics(summary, mode=mode)
        metrics[f"eval/{mode}/n_samples"] = summary.get("n_samples")
        run.summary.update(metrics)
        run.log(metrics)
        tables = self.cfg.wandb.sample_tables
        if tables != "off" and scores is not None:
            frame = scores
            if tables == "text" and samples:
                import pandas as pd

                keys = ["benchmark", "prompt_id", "turn", "sample_index"]
                text = pd.DataFrame([{**{k: r[k] for k in keys}, "reasoning": r["reasoning"], "answer": r["answer"]}
                                     for r in samples])
                frame = frame.merge(text, on=keys, how="left")
            run.log({f"eval/{mode}/samples": plain_table(safe_table_frame(frame, allow_text=tables == "text"))})

    def finish(self, exit_code: int = 0) -> None:
        if self.run is not None:
            self.run.finish(exit_code=exit_code)
            self.run = None
