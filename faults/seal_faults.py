"""Damage to finished (sealed) outputs: a datagen shard that lost its tail or had a byte flipped, an
eval output that lost its tail. Each must be named (file, sealed vs found sha256) and redone or
refused, never reused; "completed work lost" is rows that differ, value for value, from the
undamaged outputs (and, for the dataset, from one merged from the undamaged shard)."""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from itertools import zip_longest
from pathlib import Path

from tracecause.contracts import DATASET_FILE
from tracecause.io import is_complete, sha256_file

from faults import inject
from faults.jobs import TIMEOUT_S, StageJob
from faults.scoreboard import Outcome, Scoreboard

ROOT = Path(__file__).resolve().parents[1]


def differing(want: bytes, got: bytes) -> int:
    """Lines of ``want`` that ``got`` does not hold at the same place (missing lines count)."""
    return sum(a != b for a, b in zip_longest(want.splitlines(), got.splitlines()))


def lose_tail(path: Path) -> None:
    """The last line gone, as after an interrupted copy or a lagging restore: every line left parses."""
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-1]))


def flip_in_trace(path: Path) -> None:
    """One byte flipped inside the first trace (the line still parses, as JSON with one odd character)."""
    inject.flip_byte(path, path.read_bytes().index(b'"reasoning": "') + 20)


# ----------------------------------------------------------------------------- datagen


def reference_dataset(work: Path, cfg: Path, data_dir: Path) -> bytes:
    """data.jsonl merged here from a copy of the undamaged finished shard(s)."""
    from datagen.merge import merge
    from datagen.plan import load_config, make_plan

    root = work / "reference"
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(data_dir, root / "data" / data_dir.name)
    plan = make_plan(load_config(cfg, [f"output.root={root}"]))
    merge(plan)
    return (plan.data_dir / DATASET_FILE).read_bytes()


def damaged_shard(sweep: Path, cfg: Path, shard_dir: Path, data_dir: Path, board: Scoreboard) -> list[Outcome]:
    """Per damage: the merge must refuse naming file and hashes and set the shard aside; the shard
    task, run again, must write the records the undamaged shard held."""
    from launch import stages

    records, rows = shard_dir / "records.jsonl", []
    for n, (fault, damage) in enumerate((("finished shard truncated", lose_tail),
                                         ("finished shard bit-flipped", flip_in_trace))):
        good = records.read_bytes()
        damage(records)
        sealed, found = hashlib.sha256(good).hexdigest(), sha256_file(records)
        merge = StageJob(sweep, "merge", f"merge-damaged-{n}", [stages.datagen_merge_argv(cfg, [], 1)], data_dir)
        merge.submit(max_crash_retries=0)
        refused = merge.wait_end()
        error = merge.error_text()
        named = f"{records} does not hold what was sealed" in error and f"expected {sealed}, found {found}" in error
        aside = not shard_dir.exists() and not (data_dir / DATASET_FILE).exists()
        shard = StageJob(sweep, "datagen", f"shard-00000-again-{n}", [stages.datagen_shard_argv(cfg, [], 0, 1)],
                         shard_dir)
        shard.submit(max_crash_retries=0)
        again = shard.wait_end()
        lost = differing(good, records.read_bytes() if is_complete(shard_dir) else b"")
        rows.append(board.add(Outcome(
            fault, "merge", refused.state == "FAILED" and named and aside and again.state == "COMPLETED" and not lost,
            lost, "records", f"merge {refused.state}, naming file, sealed and found sha256: {named}; shard set aside, "
                             f"nothing merged: {aside}; shard run again: {again.state}, {lost} records differ from "
                             f"the undamaged shard's")))
    return rows


def compare_dataset(rows: list[Outcome], data_dir: Path, reference: bytes) -> None:
    """The dataset finally merged against the one merged from the undamaged shard, line for line."""
    got = (data_dir / DATASET_FILE).read_bytes() if is_complete(data_dir) else b""
    lost = differing(reference, got)
    for row in rows:
        row.survived = row.survived and lost == 0
        row.lost += lost
        row.detail += (f"; the dataset merged at the end: {lost} of {len(reference.splitlines())} records differ "
                       f"from one merged from the undamaged shard")


# ----------------------------------------------------------------------------- eval


def _score_rows_differing(want: bytes, got: Path) -> int:
    import io

    import pandas as pd

    a = pd.read_parquet(io.BytesIO(want))
    b = pd.read_parquet(got) if got.is_file() else a.iloc[0:0]
    if len(a) != len(b) or list(a.columns) != list(b.columns):
        return max(len(a), len(b))
    same = (a == b) | (a.isna() & b.isna())
    return int((~same.all(axis=1)).sum())


def damaged_eval_output(argvs: list[list[str]], out: Path, endpoint, board: Scoreboard) -> Outcome:
    """samples.jsonl of a finished eval loses its tail; the eval's stage commands run again (what its
    task runs) must say so, redo it from the request caches and end with every output as it was."""
    before = {f: (out / f).read_bytes() for f in ("samples.jsonl", "judged.jsonl", "summary.json", "scores.parquet")}
    samples = out / "samples.jsonl"
    sealed = sha256_file(samples)
    lose_tail(samples)
    found, asked = sha256_file(samples), endpoint.total_delivered()
    err, rcs = "", []
    for argv in argvs:
        proc = subprocess.run([sys.executable, "-m", "evalsuite", *argv], cwd=ROOT, capture_output=True, text=True,
                              timeout=TIMEOUT_S)
        err, rcs = err + proc.stderr, rcs + [proc.returncode]
        if proc.returncode:
            break
    said = f"{samples} does not hold what was sealed" in err and f"expected {sealed}, found {found}" in err \
        and "is redone" in err
    lost = sum(differing(before[f], (out / f).read_bytes() if (out / f).is_file() else b"")
               for f in ("samples.jsonl", "judged.jsonl", "summary.json"))
    lost += _score_rows_differing(before["scores.parquet"], out / "scores.parquet")
    reasked = endpoint.total_delivered() - asked
    ok = rcs == [0] * len(argvs) and said and is_complete(out) and reasked == 0 and lost == 0
    return board.add(Outcome("finished eval output truncated", "eval", ok, lost, "rows",
                             f"stages re-run: exit {rcs}; named file, sealed and found sha256, redone: {said}; "
                             f"{lost} rows differ from the undamaged outputs; judge requests asked again: {reasked}"
                             + ("" if ok or said else f"; stderr: {err[-600:]}")))
