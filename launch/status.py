"""``tracecause status SWEEP_DIR``: arms x stages from the records, ONE sacct call and the markers."""
from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path

from tracecause.contracts import Arm
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
    """The W&B run id from the run folder's wandb/ (offline-run-<time>-<id> or run-<time>-<id>)."""
    wdir = run_dir / "wandb"
    if not wdir.is_dir():
        return ""
    names = sorted(p.name for p in wdir.iterdir() if p.name.startswith(("offline-run-", "run-")))
    if not names:
        return ""
    last = names[-1]
    return last.split("-", 3)[3] if last.startswith("offline-") else last.split("-", 2)[2]


def _wandb_target(sweep_dir: Path) -> tuple[str, str]:
    """(project, entity) from the recorded sweep.yaml: what a W&B link needs."""
    import yaml

    path = sweep_dir / "sweep.yaml"
    if not path.is_file():
        return "tracecause", ""
    w = (yaml.safe_load(path.read_text()) or {}).get("wandb") or {}
    return w.get("project") or "tracecause", w.get("entity") or ""


def collect(sweep_dir: str | Path, use_sacct: bool = True) -> list[dict]:
    """One row per task: stage, key, arm, state, attempts, job id, step/loss, error."""
    sweep_dir = Path(sweep_dir)
    recs = records.all_records(sweep_dir)
    states = {}
    ids = {str(r["job_id"]).split("_")[0] for r in recs.values()
           if r.get("job_id") and not str(r["job_id"]).startswith("local")}
    if use_sacct and ids:
        from launch.slurmtools import SlurmError, sacct_states

        try:
            states = sacct_states(ids)
        except SlurmError as err:
            print(f"(sacct unavailable: {err})")
    project, entity = _wandb_target(sweep_dir)
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
            run_id = _wandb_id(run)
            row["wandb"] = "" if not run_id else (f"https://wandb.ai/{entity}/{project}/runs/{run_id}" if entity
                                                  else f"wandb {project}/{run_id}")
            out_done = is_complete(run / "export")
        elif rec.get("done_dir"):
            out_done = is_complete(rec["done_dir"])
        if out_done or rec.get("state") == records.DONE:
            row["state"] = "done"
        rows.append(row)
    return rows


def _trained(arm_id: str) -> bool:
    try:
        return Arm.parse(arm_id).trained
    except ValueError:
        return True


def _cell(rows: list[dict]) -> str:
    if not rows:
        return "-"
    states = sorted({r["state"] for r in rows})
    att = max(r["attempts"] for r in rows)
    text = states[0] if len(states) == 1 else "/".join(states)
    return f"{text}" + (f" x{att}" if att > 1 else "")


def format_status(rows: list[dict]) -> str:
    """Sweep-level stages on top, then one line per arm: train and eval state, step/loss, W&B or error."""
    by_stage: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in rows:
        by_stage[r["stage"]][r["state"]] += 1
    lines = ["summary: " + "; ".join(f"{s} " + ", ".join(f"{k} {v}" for k, v in sorted(by_stage[s].items()))
                                     for s in STAGE_ORDER if s in by_stage)]
    for r in rows:
        if r["stage"] in ("datagen", "merge", "analysis") and r["state"] in ("failed", "crashed"):
            lines.append(f"  {r['stage']}/{r['key']}: {r['state']} (job {r['job_id']}): {r['error']}")
    arms: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r["arm"] and r["stage"] in ("train", "eval"):
            arms[r["arm"]][r["stage"]].append(r)
    lines += ["", f"{'arm':<40} {'train':<14} {'job':<12} {'step':>6} {'loss':>8} {'eval':<14}  W&B / error"]
    for arm in sorted(arms):
        tr, ev = arms[arm]["train"], arms[arm]["eval"]
        t = tr[0] if tr else {}
        loss = f"{t['loss']:.4f}" if isinstance(t.get("loss"), (int, float)) else ""
        err = next((r["error"] for r in tr + ev if r["state"] in ("failed", "crashed") and r["error"]), "")
        lines.append(f"{arm[:40]:<40} {_cell(tr) if tr else ('-' if _trained(arm) else 'base'):<14} {t.get('job_id', ''):<12} "
                     f"{str(t.get('step') or ''):>6} {loss:>8} {_cell(ev):<14}  {err or t.get('wandb', '')}")
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
