"""Stage outputs of one (arm, mode) folder: shard parts, merge, per-stage completion markers.

Layout of ``<sweep>/eval/<arm_id>/<mode>/``::

    samples.jsonl  judged.jsonl  scores.parquet  summary.json     (merged outputs)
    _COMPLETE.generate  _COMPLETE.judge  _COMPLETE.score           (stage markers; JSON with
                                                                    inputs_hash, rows, sha256)
    _COMPLETE                                                      (whole folder: after score)
    shards/<stage>-<k>-of-<n>/part.jsonl (+ _COMPLETE)              (one per array task)
    <stage>_config.yaml / .sha256                                  (resolved config)

A merged file exists only with its stage marker; a shard part only inside a completed shard folder.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from tracecause.io import atomic_dir, atomic_write_bytes, atomic_write_json, is_complete, read_json, sha256_file

STAGE_FILES = {"generate": "samples.jsonl", "judge": "judged.jsonl", "score": "scores.parquet"}


def marker_path(out_dir: Path, stage: str) -> Path:
    return Path(out_dir) / f"_COMPLETE.{stage}"


def stage_info(out_dir: Path, stage: str) -> dict | None:
    p = marker_path(out_dir, stage)
    return read_json(p) if p.is_file() else None


def stage_done(out_dir: Path, stage: str, inputs_hash: str | None = None) -> bool:
    info = stage_info(out_dir, stage)
    return info is not None and (inputs_hash is None or info.get("inputs_hash") == inputs_hash)


def mark_stage(out_dir: Path, stage: str, file: Path, rows: int, inputs_hash: str, **extra: Any) -> None:
    atomic_write_json(marker_path(out_dir, stage), {"stage": stage, "file": file.name, "rows": rows,
                                                     "sha256": sha256_file(file), "inputs_hash": inputs_hash, **extra})


def jsonl_bytes(rows: Iterable[dict]) -> bytes:
    return b"".join(json.dumps(r, ensure_ascii=False, sort_keys=True).encode("utf-8") + b"\n" for r in rows)


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def shard_dir(out_dir: Path, stage: str, index: int, count: int) -> Path:
    return Path(out_dir) / "shards" / f"{stage}-{index}-of-{count}"


def shard_done(out_dir: Path, stage: str, index: int, count: int, inputs_hash: str) -> bool:
    d = shard_dir(out_dir, stage, index, count)
    return is_complete(d) and (read_json(d / "_COMPLETE").get("inputs_hash") == inputs_hash)


def write_shard(out_dir: Path, stage: str, index: int, count: int, rows: list[dict], inputs_hash: str) -> Path:
    final = shard_dir(out_dir, stage, index, count)
    with atomic_dir(final, info={"inputs_hash": inputs_hash, "rows": len(rows)}, overwrite=True) as tmp:
        atomic_write_bytes(tmp / "part.jsonl", jsonl_bytes(rows))
    return final


def shards_missing(out_dir: Path, stage: str, count: int, inputs_hash: str) -> list[int]:
    return [k for k in range(count) if not shard_done(out_dir, stage, k, count, inputs_hash)]


def read_shards(out_dir: Path, stage: str, count: int) -> list[dict]:
    rows: list[dict] = []
    for k in range(count):
        rows.extend(read_jsonl(shard_dir(out_dir, stage, k, count) / "part.jsonl"))
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
            done = sum(is_complete(p) for p in parts)
            hint = f" ({done} of the shard folders present are complete; run the missing shards)"
        raise FileNotFoundError(f"{needed_by} needs {path} with its marker {marker_path(out_dir, stage).name}: "
                                f"run `python -m evalsuite {stage}` first{hint}")
    return path


# ----------------------------------------------------------------------------- stage inputs
# judge and score shard K read generate's (and judge's) shard K part, so one array task can run
# generate -> judge -> score for its shard without waiting for the other shards.


def input_file(out_dir: Path, stage: str, index: int, count: int) -> Path | None:
    """The file a downstream stage reads: the merged output (count == 1) or shard ``index``'s part."""
    if count == 1:
        path = Path(out_dir) / STAGE_FILES[stage]
        return path if stage_done(out_dir, stage) and path.is_file() else None
    d = shard_dir(out_dir, stage, index, count)
    return d / "part.jsonl" if is_complete(d) else None


def input_hash(out_dir: Path, upstream: tuple[str, ...], index: int, count: int, extra: Any) -> str | None:
    """Identity of what shard ``index`` of a stage consumes (None while an input is missing)."""
    from tracecause.config import config_hash

    shas = []
    for stage in upstream:
        f = input_file(out_dir, stage, index, count)
        if f is None:
            return None
        shas.append(stage_info(out_dir, stage)["sha256"] if count == 1 else sha256_file(f))
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
