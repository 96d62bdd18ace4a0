"""``tracecause status SWEEP_DIR``: one row per task from the records, ONE sacct call and the markers.

A task's state is, in order: ``done`` (its completion marker), SLURM's verdict when its job ended
without finishing (``failed`` with the reason: OOM, node failure, time limit, ...), the task's own
record (``failed`` after its crash cap), the live SLURM state (pending, running, ...), and
``blocked`` when something it needs failed. ``--watch`` ends once nothing can still move.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from tracecause.contracts import eval_progress_file, require_sweep_folder
from tracecause.io import is_complete

from launch import failure, records

STAGE_ORDER = ("datagen", "merge", "train", "eval", "analysis")
SETTLED = ("done", "failed", "blocked")  # nothing more will happen to these without a resume


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


def eval_progress(sweep_dir: Path, arm: str, key: str) -> dict:
    """Requests done / total, tokens/s and the W&B id of eval task ``<arm>.<label>.<shard>``, over its modes."""
    label, _, shard = key[len(arm) + 1:].rpartition(".")
    if not shard.isdigit():
        return {}
    found = []
    for mode_dir in sorted((sweep_dir / "eval" / arm).glob("*")):
        if label in ("all", mode_dir.name):
            found += [json.loads(p.read_text()) for p in mode_dir.glob(eval_progress_file(int(shard), "*"))]
    if not found:
        return {}
    latest = max(found, key=lambda p: p.get("updated_at", 0))
    return {"stage": latest.get("stage", ""), "done": sum(p.get("done", 0) for p in found if p.get("stage") == latest.get("stage")),
            "total": sum(p.get("total", 0) for p in found if p.get("stage") == latest.get("stage")),
            "tokens_per_s": latest.get("tokens_per_s"), "wandb": latest.get("wandb_run_id", "")}


# what each stage needs, by stage (eval: its own arm's training only)
NEEDS = {"merge": ("datagen",), "train": ("merge",), "analysis": ("train", "eval")}


def mark_blocked(rows: list[dict]) -> None:
    """A task that cannot start because something it needs failed: ``blocked`` by that (root) task."""
    by_uid = {f"{r['stage']}/{r['key']}": r for r in rows}
    by_stage: dict[str, list[str]] = {}
    for uid, r in by_uid.items():
        by_stage.setdefault(r["stage"], []).append(uid)
    for stage in STAGE_ORDER:
        for uid in by_stage.get(stage, []):
            row = by_uid[uid]
            if row["state"] in ("done", "running"):
                continue
            if row["state"] == "failed" and row["slurm"] != "CANCELLED":  # SLURM drops a job whose
                continue                                               # dependency failed: that is "blocked"
            needs = [f"train/{row['arm']}"] if stage == "eval" else [u for s in NEEDS.get(stage, ()) for u in by_stage.get(s, [])]
            culprit = next((by_uid[u] for u in needs if u in by_uid and by_uid[u]["state"] in ("failed", "blocked")), None)
            if culprit is not None:
                row["state"] = "blocked"
                row["blocked_by"] = culprit.get("blocked_by") or f"{culprit['stage']}/{culprit['key']}"


def collect(sweep_dir: str | Path, use_sacct: bool = True) -> list[dict]:
    """One row per task: stage, key, arm, state, reason, counts, job id, step/loss or eval progress, W&B."""
    sweep_dir = require_sweep_folder(sweep_dir)
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
    project, entity = _wandb_target(sweep_dir)
    rows = []
    for uid, rec in sorted(recs.items()):
        stage, key = uid.split("/", 1)
        jid = str(rec.get("job_id", ""))
        rows.append(_row(sweep_dir, stage, key, rec, jid, states.get(jid), project, entity))
    mark_blocked(rows)
    return rows


def _row(sweep_dir: Path, stage: str, key: str, rec: dict, jid: str, js, project: str, entity: str) -> dict:
    state, reason = rec.get("state", "?"), ""
    if js is not None and state not in (records.DONE, records.FAILED):
        if js.final and js.state != "COMPLETED":
            state, reason = "failed", failure.slurm_reason(js.state, js.exit_code, js.signal)
        elif not js.final:
            state = js.state.lower()
    error = (rec.get("error") or "").strip()
    row = {"stage": stage, "key": key, "arm": rec.get("arm", ""), "state": state, "job_id": jid,
           "slurm": js.state if js else "", "attempts": rec.get("attempts", 0), "crashes": rec.get("crashes", 0),
           "preemptions": rec.get("preemptions", 0), "counts": failure.counts(rec),
           "reason": reason or (failure.tail(error, 1)[0] if error else ""),
           "log_tail": failure.log_tail(failure.error_log(sweep_dir, stage, jid)) or failure.tail(error),
           "error": failure.tail(error, 1)[0] if error else ""}
    out_done = False
    if stage == "train" and rec.get("arm"):
        run = sweep_dir / "train" / rec["arm"]
        m = _last_metrics(run)
        row["step"], row["loss"] = m.get("step", m.get("train/global_step")), m.get("loss", m.get("train/loss"))
        row["wandb"] = _link(_wandb_id(run), project, entity)
        out_done = is_complete(run / "export")
    elif rec.get("done_dir"):
        out_done = is_complete(records.done_dir(sweep_dir, rec))
    if stage == "eval" and rec.get("arm"):
        row["progress"] = eval_progress(sweep_dir, rec["arm"], key)
        row["wandb"] = _link(row["progress"].get("wandb", ""), project, entity)
    if out_done or rec.get("state") == records.DONE:
        row["state"], row["reason"] = "done", ""
    return row


def _link(run_id: str, project: str, entity: str) -> str:
    if not run_id:
        return ""
    return f"https://wandb.ai/{entity}/{project}/runs/{run_id}" if entity else f"wandb {project}/{run_id}"


def show(sweep_dir: str | Path, watch: float = 0.0) -> int:
    """Print the table; with ``watch`` refresh until nothing is pending or running: 0 if all done, 1 if not."""
    from launch.status_view import format_status

    require_sweep_folder(sweep_dir)
    while True:
        rows = collect(sweep_dir)
        if watch:
            print("\033[2J\033[H" + time.strftime("%H:%M:%S ") + str(sweep_dir))
        print(format_status(rows), flush=True)
        if not watch:
            return 0
        if all(r["state"] in SETTLED for r in rows):
            bad = [r for r in rows if r["state"] != "done"]
            print(f"\nnothing left pending or running: {len(rows) - len(bad)} done, {len(bad)} failed or blocked",
                  flush=True)
            return 1 if bad else 0
        time.sleep(watch)
