"""Stage outputs of one (arm, mode) folder: shard parts, merge, per-stage completion markers.

Layout of ``<sweep>/eval/<arm_id>/<mode>/``::

    samples.jsonl  judged.jsonl  scores.parquet  summary.json     (merged outputs)
    _COMPLETE.generate  _COMPLETE.judge  _COMPLETE.score           (stage markers; JSON with
                                                                    inputs_hash, sha256, bytes, rows)
    _COMPLETE                                                      (whole folder: after score;
                                                                    seals every merged output)
    shards/<stage>-<k>-of-<n>/part.jsonl (+ _COMPLETE)              (one per array task)
    <stage>_config.yaml / .sha256                                  (resolved config)

A merged file exists only with its stage marker; a shard part only inside a completed shard folder.
Every marker seals what it completes (sha256, bytes, rows: tracecause/seal.py), and a marker counts as
done only while its file is re-hashed equal to the seal: a damaged output (a lost tail, a flipped
byte) is named on stderr with the expected and found hash, its markers are dropped and the stage
redoes it (from the request caches) instead of reusing it.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Iterable

from tracecause.contracts import SUMMARY_FILE
from tracecause.io import MARKER, atomic_dir, atomic_write_bytes, atomic_write_json, completion_info, read_json
from tracecause.seal import seal, seal_problem

STAGE_FILES = {"generate": "samples.jsonl", "judge": "judged.jsonl", "score": "scores.parquet"}
PART_FILE = "part.jsonl"


def marker_path(out_dir: Path, stage: str) -> Path:
    return Path(out_dir) / f"_COMPLETE.{stage}"


def stage_info(out_dir: Path, stage: str) -> dict | None:
    p = marker_path(out_dir, stage)
    return read_json(p) if p.is_file() else None


def _still_sealed(path: Path, sealed: dict, markers: tuple[Path, ...], unit: str) -> str | None:
    """The sha256 of ``path`` when it still matches ``sealed``; else say so, drop ``markers`` (the unit
    is then not done, so it is redone) and return None."""
    problem, found = seal_problem(path, sealed)
    if not problem:
        return found
    print(f"[evalsuite] {problem}: {unit} is redone", file=sys.stderr, flush=True)
    for marker in markers:
        marker.unlink(missing_ok=True)
    return None


def verified_stage_sha(out_dir: Path, stage: str, inputs_hash: str | None = None) -> str | None:
    """The re-hashed sha256 of the stage's merged file when the stage is done (on ``inputs_hash``, if
    given) and the file still matches its marker; None otherwise (a damaged file's markers dropped)."""
    info = stage_info(out_dir, stage)
    if info is None or (inputs_hash is not None and info.get("inputs_hash") != inputs_hash):
        return None
    out = Path(out_dir)
    return _still_sealed(out / STAGE_FILES[stage], info, (marker_path(out, stage), out / MARKER),
                         f"the {stage} stage of {out}")


def stage_done(out_dir: Path, stage: str, inputs_hash: str | None = None) -> bool:
    return verified_stage_sha(out_dir, stage, inputs_hash) is not None


def mark_stage(out_dir: Path, stage: str, file: Path, rows: int, inputs_hash: str, **extra: Any) -> None:
    atomic_write_json(marker_path(out_dir, stage), {"stage": stage, "file": file.name, **seal(file, rows),
                                                     "inputs_hash": inputs_hash, **extra})


def seal_folder(out_dir: Path) -> dict:
    """The seals of the merged outputs and summary.json, for the folder's own marker (after score)."""
    files = {name: stage_info(out_dir, stage) or {} for stage, name in STAGE_FILES.items()}
    sealed = {name: {k: info[k] for k in ("sha256", "bytes", "rows") if k in info} for name, info in files.items()}
    if (Path(out_dir) / SUMMARY_FILE).is_file():
        sealed[SUMMARY_FILE] = seal(Path(out_dir) / SUMMARY_FILE)
    return {"files": sealed}


def jsonl_bytes(rows: Iterable[dict]) -> bytes:
    return b"".join(json.dumps(r, ensure_ascii=False, sort_keys=True).encode("utf-8") + b"\n" for r in rows)


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def shard_dir(out_dir: Path, stage: str, index: int, count: int) -> Path:
    return Path(out_dir) / "shards" / f"{stage}-{index}-of-{count}"


def verified_part(out_dir: Path, stage: str, index: int, count: int, inputs_hash: str | None = None) -> str | None:
    """The re-hashed sha256 of a complete shard's part when it still matches its seal (None: not done,
    done on other inputs, or damaged: then its marker is dropped and the shard redone)."""
    d = shard_dir(out_dir, stage, index, count)
    info = completion_info(d)
    if info is None or (inputs_hash is not None and info.get("inputs_hash") != inputs_hash):
        return None
    return _still_sealed(d / PART_FILE, info, (d / MARKER,), f"shard {index} of {count} of the {stage} stage")


def shard_done(out_dir: Path, stage: str, index: int, count: int, inputs_hash: str) -> bool:
    return verified_part(out_dir, stage, index, count, inputs_hash) is not None


def write_shard(out_dir: Path, stage: str, index: int, count: int, rows: list[dict], inputs_hash: str) -> Path:
    final = shard_dir(out_dir, stage, index, count)
    info = {"inputs_hash": inputs_hash}  # sealed in the body: atomic_dir writes it into the marker
    with atomic_dir(final, info=info, overwrite=True) as tmp:
        atomic_write_bytes(tmp / PART_FILE, jsonl_bytes(rows))
        info.update(seal(tmp / PART_FILE, len(rows)))
    return final


def shards_missing(out_dir: Path, stage: str, count: int, inputs_hash: str) -> list[int]:
    return [k for k in range(count) if not shard_done(out_dir, stage, k, count, inputs_hash)]


def read_shards(out_dir: Path, stage: str, count: int) -> list[dict]:
    """Every shard's rows; a shard that is missing or no longer matches its seal is refused (and, when
    damaged, its marker dropped so its task redoes it)."""
    rows: list[dict] = []
    for k in range(count):
        if verified_part(out_dir, stage, k, count) is None:
            raise FileNotFoundError(f"{shard_dir(out_dir, stage, k, count)} is not complete (or was damaged): run "
                                    f"`python -m evalsuite {stage} --shard {k} --num-shards {count}` again")
        rows.extend(read_jsonl(shard_dir(out_dir, stage, k, count) / PART_FILE))
    return rows


def row_order(row: dict) -> tuple:
    return (row["benchmark"], row["prompt_id"], row["turn"], row["sample_index"])


def write_merged_jsonl(out_dir: Path, stage: str, rows: list[dict], inputs_hash: str, **extra: Any) -> Path:
    """Write the merged file of ``stage`` atomically, then its marker (deterministic row order)."""
    path = Path(out_dir) / STAGE_FILES[stage]
    rows = sorted(rows, key=row_order)
    atomic_write_bytes(path, jsonl_bytes(rows))
    mark_stage(out_dir, stage, path, len(rows), inputs_hash, **extra)
    return path


def require_stage(out_dir: Path, stage: str, needed_by: str) -> Path:
    path = Path(out_dir) / STAGE_FILES[stage]
    if not stage_done(out_dir, stage) or not path.is_file():
        hint = ""
        parts = sorted((Path(out_dir) / "shards").glob(f"{stage}-*")) if (Path(out_dir) / "shards").is_dir() else []
        if parts:
            done = sum((p / MARKER).is_file() for p in parts)
            hint = f" ({done} of the shard folders present are complete; run the missing shards)"
        raise FileNotFoundError(f"{needed_by} needs {path} with its marker {marker_path(out_dir, stage).name}: "
                                f"run `python -m evalsuite {stage}` first{hint}")
    return path


# ----------------------------------------------------------------------------- stage inputs
# judge and score shard K read generate's (and judge's) shard K part, so one array task can run
# generate -> judge -> score for its shard without waiting for the other shards.


def verified_input(out_dir: Path, stage: str, index: int, count: int) -> tuple[Path, str] | None:
    """The file a downstream stage reads — the merged output (count == 1) or shard ``index``'s part —
    with its sha256, re-hashed and checked against its seal; None while missing or damaged."""
    if count == 1:
        sha = verified_stage_sha(out_dir, stage)
        return (Path(out_dir) / STAGE_FILES[stage], sha) if sha else None
    sha = verified_part(out_dir, stage, index, count)
    return (shard_dir(out_dir, stage, index, count) / PART_FILE, sha) if sha else None


def input_file(out_dir: Path, stage: str, index: int, count: int) -> Path | None:
    found = verified_input(out_dir, stage, index, count)
    return found[0] if found else None


def input_hash(out_dir: Path, upstream: tuple[str, ...], index: int, count: int, extra: Any) -> str | None:
    """Identity of what shard ``index`` of a stage consumes (None while an input is missing or damaged)."""
    from tracecause.config import config_hash

    shas = []
    for stage in upstream:
        found = verified_input(out_dir, stage, index, count)
        if found is None:
            return None
        shas.append(found[1])
    return config_hash({"inputs": shas, "extra": extra})


def read_input(out_dir: Path, stage: str, index: int, count: int, needed_by: str) -> list[dict]:
    f = input_file(out_dir, stage, index, count)
    if f is None:
        if count == 1:
            require_stage(out_dir, stage, needed_by)
        raise FileNotFoundError(f"{needed_by} shard {index} of {count} needs {shard_dir(out_dir, stage, index, count)} "
                                f"complete: run `python -m evalsuite {stage} --shard {index} --num-shards {count}` first")
    return read_jsonl(f)


def merged_hash_if_ready(out_dir: Path, stage: str, upstream: tuple[str, ...], count: int, extra: Any) -> str | None:
    """When every shard of ``stage`` is done on its current inputs: the merged output's inputs hash."""
    from tracecause.config import config_hash

    hashes = []
    for j in range(count):
        h = input_hash(out_dir, upstream, j, count, extra)
        if h is None or not shard_done(out_dir, stage, j, count, h):
            return None
        hashes.append(h)
    return config_hash({"shards": hashes})
