"""Per-task state records under ``<sweep>/jobs/<stage>/records/<key>.json`` (atomic writes).

The launcher writes the submission (job id); the running task's rank 0 writes attempts and
outcomes. ``status`` reads them together with one sacct call and the completion markers.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from tracecause.contracts import SweepLayout
from tracecause.io import atomic_write_json

# outcome of one attempt, as the task itself saw it
DONE, RUNNING, PREEMPTED, TIMEOUT, CRASHED, FAILED = "done", "running", "preempted", "timeout", "crashed", "failed"


def record_path(sweep_dir: str | Path, stage: str, key: str) -> Path:
    return SweepLayout(Path(sweep_dir)).jobs(stage) / "records" / f"{key}.json"


def read_record(path: str | Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def update_record(path: str | Path, **changes) -> dict:
    rec = read_record(path)
    rec.update(changes)
    rec["updated_at"] = time.time()
    atomic_write_json(path, rec)
    return rec


def add_event(path: str | Path, event: dict, **changes) -> dict:
    rec = read_record(path)
    rec.setdefault("history", []).append({"at": time.time(), **event})
    rec["history"] = rec["history"][-50:]
    rec.update(changes)
    rec["updated_at"] = time.time()
    atomic_write_json(path, rec)
    return rec


def all_records(sweep_dir: str | Path) -> dict[str, dict]:
    """``{"train/<arm>": record, ...}`` for every record of the sweep."""
    out = {}
    jobs = SweepLayout(Path(sweep_dir)).root / "jobs"
    if not jobs.is_dir():
        return out
    for stage_dir in jobs.iterdir():
        rec_dir = stage_dir / "records"
        if rec_dir.is_dir():
            for f in rec_dir.iterdir():
                if f.suffix == ".json":
                    out[f"{stage_dir.name}/{f.stem}"] = read_record(f)
    return out
