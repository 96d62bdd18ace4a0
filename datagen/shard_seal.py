"""A finished shard's seal, checked before the shard is reused (a re-run, the merge).

The shard marker records a seal (sha256, size, rows) of records.jsonl and stats.json. A shard whose
files no longer match it — a tail lost by an interrupted copy or a lagging restore, a flipped byte —
is set aside (its folder renamed, so the marker is gone and the evidence kept) with a line on stderr
naming the file and the expected vs found hash; a shard is a unit that can be generated again.
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from tracecause.io import MARKER, completion_info, fsync_dir
from tracecause.seal import files_problem

RECORDS_FILE = "records.jsonl"   # one row per (pair, type) that survived
STATS_FILE = "stats.json"


def count_rows(path: Path) -> int:
    with open(path, "rb") as fh:
        return sum(1 for line in fh if line.strip())


def shard_problem(folder: Path, n_types: int) -> str:
    """"" while the complete shard in ``folder`` still holds what its marker sealed; else what differs."""
    info = completion_info(folder) or {}
    files = info.get("files")
    if files:
        return files_problem(folder, {name: files.get(name) for name in (RECORDS_FILE, STATS_FILE)})
    # a shard finished before shards were sealed: its stats still say how many rows it kept
    records = folder / RECORDS_FILE
    try:
        want = json.loads((folder / STATS_FILE).read_text())["pairs_kept"] * n_types
    except (OSError, ValueError, KeyError, TypeError) as err:
        return f"{folder / STATS_FILE} is unreadable ({err})"
    found = count_rows(records) if records.is_file() else 0
    if found != want:
        return f"{records} holds {found} rows, but its stats.json counts {want} (pairs_kept x {n_types} types)"
    print(f"[datagen] {folder.name} has no seal (finished before shards were sealed): only its row count "
          f"was checked", file=sys.stderr)
    return ""


def set_aside(folder: Path, problem: str, then: str) -> Path:
    """Take a damaged shard out of use (its marker with it); ``then`` says what happens next."""
    aside = folder.with_name(f".{folder.name}.damaged")
    if aside.exists():
        shutil.rmtree(aside)
    folder.rename(aside)
    fsync_dir(folder.parent)
    print(f"[datagen] {problem}. The shard is set aside as {aside} (its {MARKER} with it); {then}",
          file=sys.stderr, flush=True)
    return aside
