"""``tracecause status SWEEP_DIR``: arms x stages from the records, ONE sacct call and the markers."""
from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path

from tracecause.io import is_complete

from launch import records

STAGE_ORDER = ("datagen", "merge", "train", "eval", "analysis")


def _last_metrics(run_dir: Path) -> dict:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return {}
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        fh.seek(max(0, fh.tell() - 4096))
        lines = [l for l in fh.read().decode(errors="replace").splitlines() if l.strip()]
    for line in reversed(lines):
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            continue
    return {}


def _wandb_id(run_dir: Path) -> str:
    for name in ("wandb_run_id", "wandb.json"):
        p = run_dir / name
        if p.is_file():
            text = p.read_text().strip()
            try:
                return json.loads(text).get("id", "")
            except (json.JSONDecodeError, AttributeError):
                return text
    return ""


def collect(sweep_dir: str | Path, use_sacct: bool = True) -> list[dict]:
    """One row per task: stage, key, arm, state, attempts, job id, step/loss, error."""
    sweep_dir = Path(sweep_dir)
    recs = records.all_records(sweep_dir)
    states = {}
    ids = {str(r["job_id"]).split("_")[0] for r in recs.values()
           if r.get("job_id") and not str(r["job_id"]).startswith("local")}
    if use_sacct and ids:
        from slurm.cluster import SlurmError, sacct_states

        try:
            states = sacct_states(ids)
        except SlurmError as err:
            print(f"(sacct unavailable: {err})")
    rows = []
    for uid, rec in sorted(recs.items()):
        stage, key = uid.split("/", 1)
        jid = str(rec.get("job_id", ""))
        js = states.get(jid)
        out_done = False
        state = rec.get("state", "?")
        if js is not None and rec.get("state") not in (records.DONE, records.FAILED):
            state = js.state.lower() if not (js.state == "COMPLETED" and state != records.DONE) else state
        row = {"stage": stage, "key": key, "arm": rec.get("arm", ""), "state": state, "job_id": jid,
               "slurm": js.state if js else "", "attempts": rec.get("attempts", 0), "crashes": rec.get("crashes", 0),
               "preemptions": rec.get("preemptions", 0), "error": (rec.get("error") or "").strip().splitlines()[-1:] or [""]}
        row["error"] = row["error"][0]
        if stage == "train" and rec.get("arm"):
            run = sweep_dir / "train" / rec["arm"]
            m = _last_metrics(run)
            row["step"], row["loss"] = m.get("step", m.get("train/global_step")), m.get("loss", m.get("train/loss"))
            row["wandb"] = _wandb_id(run)
            out_done = is_complete(run / "export")
        if out_done or rec.get("state") == records.DONE:
            row["state"] = "done"
        rows.append(row)
    return rows


def format_status(rows: list[dict]) -> str:
    by_stage: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in rows:
        by_stage[r["stage"]][r["state"]] += 1
    lines = ["summary: " + "; ".join(f"{s} " + ", ".join(f"{k} {v}" for k, v in sorted(by_stage[s].items()))
                                     for s in STAGE_ORDER if s in by_stage), ""]
    lines.append(f"{'stage':<9} {'task':<44} {'state':<10} {'job':<12} {'att':>3} {'crash':>5} {'step':>6} "
                 f"{'loss':>8}  wandb / error")
    order = {s: i for i, s in enumerate(STAGE_ORDER)}
    for r in sorted(rows, key=lambda r: (order.get(r["stage"], 9), r["key"])):
        loss = f"{r['loss']:.4f}" if isinstance(r.get("loss"), (int, float)) else ""
        step = str(r.get("step") or "")
        tail = r["error"] if r["error"] and r["state"] in ("failed", "crashed") else r.get("wandb", "")
        lines.append(f"{r['stage']:<9} {r['key'][:44]:<44} {r['state']:<10} {r['job_id']:<12} {r['attempts']:>3} "
                     f"{r['crashes']:>5} {step:>6} {loss:>8}  {tail}")
    return "\n".join(lines)


def show(sweep_dir: str | Path, watch: float = 0.0) -> int:
    while True:
        text = format_status(collect(sweep_dir))
        if watch:
            print("\033[2J\033[H" + time.strftime("%H:%M:%S ") + str(sweep_dir))
        print(text, flush=True)
        if not watch:
            return 0
        time.sleep(watch)
