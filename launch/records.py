"""Per-task state records under ``<sweep>/jobs/<stage>/records/<key>.json`` (atomic writes).

The launcher writes the submission (job id); the running task's rank 0 writes attempts and
outcomes. ``status`` reads them together with one sacct call and the completion markers.

Every update is a read-modify-write under an exclusive lock on ``<key>.json.lock``: two attempts of
one task (a requeue racing a zombie, a double submission) or two ranks never lose each other's
updates, and counters (``increment``) are added to the value on disk, never to a stale copy.

Paths are stored relative to the sweep folder (``done_dir``, and ``{sweep}`` inside the recorded
command lines), so a sweep copied or moved to another filesystem keeps its status and resume.
"""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

from tracecause.contracts import SweepLayout
from typing import Callable

from tracecause.io import atomic_write_json, locked

# outcome of one attempt, as the task itself saw it
DONE, RUNNING, PREEMPTED, TIMEOUT, CRASHED, FAILED = "done", "running", "preempted", "timeout", "crashed", "failed"


def record_path(sweep_dir: str | Path, stage: str, key: str) -> Path:
    return SweepLayout(Path(sweep_dir)).jobs(stage) / "records" / f"{key}.json"


def read_record(path: str | Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


SWEEP_TOKEN = "{sweep}"  # the sweep folder inside recorded command lines (as in sweep specs)


def _sweep_of(record: str | Path) -> Path:
    return Path(record).absolute().parents[3]  # <sweep>/jobs/<stage>/records/<key>.json


def _relative(changes: dict, sweep: Path) -> dict:
    out = dict(changes)
    roots = [str(r) for r in {sweep, sweep.resolve()}]
    if out.get("done_dir"):
        done = Path(out["done_dir"])
        for root in roots:
            if done.is_absolute() and done.is_relative_to(root):
                out["done_dir"] = str(done.relative_to(root))
    if out.get("argvs"):
        text = [list(a) for a in out["argvs"]]
        for root in sorted(roots, key=len, reverse=True):  # the folder itself, not a sibling "<root>2"
            pattern = re.compile(re.escape(root) + r"(?=/|$|[,\]\s])")
            text = [[pattern.sub(SWEEP_TOKEN, a) for a in argv] for argv in text]
        out["argvs"] = text
    return out


def done_dir(sweep_dir: str | Path, rec: dict) -> Path | None:
    """The record's output folder, wherever the sweep folder is now."""
    return Path(sweep_dir) / rec["done_dir"] if rec.get("done_dir") else None


def _apply(path: str | Path, event: dict | None, increment: dict | None,
           derive: Callable[[dict], dict] | None, changes: dict) -> dict:
    """One locked read-modify-write: counters added to what is on disk, then ``derive(rec)``'s changes."""
    with locked(f"{path}.lock"):
        rec = read_record(path)
        for key, n in (increment or {}).items():
            rec[key] = int(rec.get(key) or 0) + n
        if event is not None:
            rec.setdefault("history", []).append({"at": time.time(), **event})
            rec["history"] = rec["history"][-50:]
        rec.update(_relative({**changes, **(derive(rec) if derive else {})}, _sweep_of(path)))
        rec["updated_at"] = time.time()
        atomic_write_json(path, rec)
        return rec


def update_record(path: str | Path, increment: dict | None = None, derive: Callable[[dict], dict] | None = None,
                  **changes) -> dict:
    return _apply(path, None, increment, derive, changes)


def add_event(path: str | Path, event: dict, increment: dict | None = None,
              derive: Callable[[dict], dict] | None = None, **changes) -> dict:
    """Append ``event`` to the history; ``increment`` adds to counters (``{"crashes": 1}``); ``derive``
    returns further changes computed from the record after the counters moved."""
    return _apply(path, event, increment, derive, changes)


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
