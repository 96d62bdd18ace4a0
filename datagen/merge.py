"""Merge complete shards into the dataset the trainer reads.

Refuses while any shard is missing (naming them), and while a finished shard no longer matches the
seal its marker recorded (datagen/shard_seal.py: that shard is set aside, to be generated again).
Verifies, per pair, that every type is present and carries the source answer byte for byte; a pair
failing that is dropped from all types. Writes data.jsonl, manifest.json, README.md, then the marker,
which seals data.jsonl and manifest.json; a complete dataset is reused only while they match it.
"""
from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

from tracecause.config import to_dict
from tracecause.contracts import DATASET_FILE, DATASET_MANIFEST, validate_dataset_record
from tracecause.io import atomic_write_json, atomic_write_text, completion_info, mark_complete, read_json
from tracecause.seal import files_problem, seal_files

from datagen.card import counts_table, dataset_card
from datagen.filters import FILTERS
from datagen.plan import Plan, write_identity
from datagen.shard_seal import RECORDS_FILE, STATS_FILE, set_aside, shard_problem


class MissingShardsError(RuntimeError):
    pass


class DamagedShardsError(MissingShardsError):
    """A finished shard no longer matches its seal: set aside, to be generated again (exit 3, as missing)."""


class EmptyDatasetError(RuntimeError):
    pass


class MalformedShardError(RuntimeError):
    """A shard's records file has a line that is not a JSON record (disk damage, a foreign writer)."""


def read_shard_records(path: Path) -> list[dict]:
    """Every row of a shard's records file; a bad line is named by file and line number."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        try:
            row = json.loads(line)
            if not isinstance(row, dict) or "id" not in row or "type" not in row:
                raise ValueError("not a record with 'id' and 'type'")
        except ValueError as err:
            raise MalformedShardError(f"{path} line {number} is malformed ({err}): {line[:80]!r}. Nothing was "
                                      f"merged; delete {path.parent} and run that shard again") from None
        rows.append(row)
    return rows


def _sum_stats(all_stats: list[dict], types: list[str]) -> dict:
    total = {"pairs_in": 0, "pairs_kept_by_shards": 0, "pairs_dropped_cross_type": 0, "http_retries": 0, "types": {}}
    for t in types:
        total["types"][t] = {"candidates": 0, "pairs_with_reasoning": 0, "think_tags_stripped": 0,
                             "judge": {"judged": 0, "agreed": 0},
                             "filters": {f: {"in": 0, "out": 0} for f in FILTERS}}
    for s in all_stats:
        total["pairs_in"] += s["pairs_in"]
        total["pairs_kept_by_shards"] += s["pairs_kept"]
        total["pairs_dropped_cross_type"] += s["pairs_dropped_cross_type"]
        total["http_retries"] += s.get("http_retries", 0)
        for t in types:
            src, dst = s["types"][t], total["types"][t]
            for k in ("candidates", "pairs_with_reasoning", "think_tags_stripped"):
                dst[k] += src[k]
            for k in ("judged", "agreed"):
                dst["judge"][k] += src["judge"][k]
            for f in FILTERS:
                for k in ("in", "out"):
                    dst["filters"][f][k] += src["filters"][f][k]
    for t in types:
        j = total["types"][t]["judge"]
        j["agreement_rate"] = (j["agreed"] / j["judged"]) if j["judged"] else None
    return total


def merge(plan: Plan, force: bool = False) -> dict:
    """Returns the manifest. Idempotent: a complete dataset is left as it is."""
    done = completion_info(plan.data_dir)
    if done is not None and not force:
        problem = dataset_problem(plan.data_dir, done)
        if not problem:
            print(f"[datagen] dataset already complete: {plan.data_dir}", file=sys.stderr)
            return read_json(plan.data_dir / DATASET_MANIFEST)
        print(f"[datagen] {problem}; merging the shards again", file=sys.stderr, flush=True)
    missing = plan.missing_shards()
    if missing:
        others = sorted(p.name for p in plan.shards_dir.glob("shard-*") if not p.name.endswith(f"of-{plan.num_shards:05d}")) \
            if plan.shards_dir.is_dir() else []
        hint = f"; found shards of another sharding: {others[:4]} (pass the same --num-shards)" if others else ""
        raise MissingShardsError(f"cannot merge {plan.dataset_id}: {len(missing)} of {plan.num_shards} shards missing: "
                                 f"{missing[:50]} (run them with --shard K --num-shards {plan.num_shards}){hint}")
    types = [t.name for t in plan.types]
    source = {p.id: p for p in plan.source.pairs}
    rows_by_id, all_stats = read_verified_shards(plan, types)
    write_identity(plan)
    problems: dict[str, int] = defaultdict(int)
    records = []
    for pair in plan.source.pairs:  # source order: the dataset does not depend on sharding
        rows = rows_by_id.pop(pair.id, None)
        if rows is None:
            continue
        bad = [t for t in types if t not in rows] and "missing_type"
        bad = bad or next(("answer_changed" for t in types if rows[t]["answer"] != pair.answer), None)
        bad = bad or next(("question_changed" for t in types if rows[t]["question"] != pair.question), None)
        if bad:
            problems[bad] += 1
            print(f"[datagen] dropping pair {pair.id} (row {pair.row}): {bad}", file=sys.stderr)
            continue
        record = {"id": pair.id, "source": {"name": plan.source.name, "revision": plan.source.revision, "row": pair.row},
                  "question": pair.question, "answer": pair.answer,
                  "reasoning": {t: rows[t]["reasoning"] for t in types}}
        validate_dataset_record(record, tuple(types), where=f"{plan.dataset_id}: ")
        records.append(record)
    if rows_by_id:  # rows whose id is not in the source: shards from another source version
        problems["unknown_id"] += len(rows_by_id)
    counts = _sum_stats(all_stats, types)
    counts["pairs_dropped_at_merge"] = dict(problems)
    counts["pairs_out"] = len(records)
    n_in = len(plan.source.pairs)
    frac = len(records) / n_in if n_in else 0.0
    if not records or frac < plan.cfg.filters.min_kept_fraction:
        raise EmptyDatasetError(f"{plan.dataset_id}: kept {len(records)} of {n_in} pairs "
                                f"(filters.min_kept_fraction={plan.cfg.filters.min_kept_fraction}); "
                                f"nothing written. Counts per filter:\n{counts_table(counts, types)}")
    data_path = plan.data_dir / DATASET_FILE
    atomic_write_text(data_path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    sealed = seal_files(plan.data_dir, {DATASET_FILE: len(records)})["files"]
    digest = sealed[DATASET_FILE]["sha256"]
    gen = to_dict(plan.cfg.generator)  # holds the key's variable name only, never the key
    manifest = {
        "dataset_id": plan.dataset_id, "dataset_hash": digest,
        "files": {DATASET_FILE: {"sha256": digest, "rows": len(records)}},
        "source": {"kind": plan.cfg.source.kind, "path": plan.cfg.source.path, "name": plan.source.name,
                   "revision": plan.source.revision, "split": plan.cfg.source.split,
                   "columns": plan.cfg.source.columns, "rows_read": plan.source.rows_read,
                   "duplicates_dropped": plan.source.duplicates_dropped, "pairs": n_in},
        "types": {t.name: {"template_sha256": t.template_hash, "file": str(t.path), "description": t.spec.description}
                  for t in plan.types},
        "generator": gen, "sampling": to_dict(plan.cfg.generator.sampling),
        "filters": to_dict(plan.cfg.filters), "num_shards": plan.num_shards, "counts": counts,
    }
    atomic_write_json(plan.data_dir / DATASET_MANIFEST, manifest)
    atomic_write_text(plan.data_dir / "README.md", dataset_card(manifest, types))
    sealed.update(seal_files(plan.data_dir, {DATASET_MANIFEST: None})["files"])
    mark_complete(plan.data_dir, {"dataset_hash": digest, "pairs": len(records), "files": sealed})
    print(counts_table(counts, types), file=sys.stderr)
    return manifest



def read_verified_shards(plan: Plan, types: list[str]) -> tuple[dict[str, dict[str, dict]], list[dict]]:
    """Rows by pair id and type, and each shard's stats; every shard read and checked before anything
    is written. A malformed line is refused as it is; a shard that parses but no longer matches its
    seal (a lost tail, a flipped byte) is set aside and the merge refused (refuse_damaged)."""
    rows_by_id: dict[str, dict[str, dict]] = defaultdict(dict)
    all_stats, damaged = [], {}
    for k in range(plan.num_shards):
        d = plan.shard_dir(k)
        shard_rows = read_shard_records(d / RECORDS_FILE)
        problem = shard_problem(d, len(types))
        if problem:
            damaged[k] = problem
            continue
        all_stats.append(read_json(d / STATS_FILE))
        for row in shard_rows:
            rows_by_id[row["id"]][row["type"]] = row
    if damaged:
        refuse_damaged(plan, damaged)
    return rows_by_id, all_stats


def refuse_damaged(plan: Plan, damaged: dict[int, str]) -> None:
    """Set every damaged shard aside (so a re-run generates it again) and refuse the merge, naming them."""
    redo = " ".join(f"--shard {k}" for k in damaged)
    for k, problem in damaged.items():
        set_aside(plan.shard_dir(k), problem, f"run it again with --shard {k} --num-shards {plan.num_shards}")
    raise DamagedShardsError(f"cannot merge {plan.dataset_id}: {len(damaged)} finished shard(s) no longer hold what "
                             f"was sealed ({'; '.join(damaged.values())}); nothing was merged. They were set aside: "
                             f"run them again ({redo} --num-shards {plan.num_shards}), then merge")


def dataset_problem(data_dir, info: dict) -> str:
    """"" while a complete dataset's files hold what its marker sealed (a marker from before seals
    recorded only dataset_hash, the sha256 of data.jsonl)."""
    return files_problem(data_dir, info.get("files") or {DATASET_FILE: {"sha256": info.get("dataset_hash")}})
