"""Load the fixed (question, answer) pairs: local JSONL/CSV/Parquet or a pinned hub dataset.

Pairs are deduplicated by normalised question (first occurrence wins) and each keeps a
stable id: a hash of source name, revision and original row index, so ids survive
reordering of the config and re-runs. A missing column or an empty/non-text cell fails
here, naming the file, the row and the column, before any model is loaded.
"""
from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from tracecause.config import ConfigError
from tracecause.io import sha256_file

from datagen.config import SourceConfig

PACKAGE_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Pair:
    id: str
    row: int
    question: str
    answer: str


@dataclass(frozen=True)
class LoadedSource:
    name: str
    revision: str
    pairs: list[Pair]
    rows_read: int
    duplicates_dropped: int
    loaded: bool = True           # False: a hub source described, not downloaded (login-node plans)

    @property
    def label(self) -> str:
        return f"{self.name}@{self.revision}"


def resolve_path(path: str) -> Path:
    """cwd first, then relative to the installed packages (the shipped demo lives there)."""
    p = Path(path).expanduser()
    if p.is_absolute() or p.exists():
        return p
    shipped = PACKAGE_ROOT / p
    return shipped if shipped.exists() else p


def source_name(cfg: SourceConfig) -> str:
    if cfg.name:
        return cfg.name
    return cfg.path if cfg.kind == "hub" else resolve_path(cfg.path).stem


def resolve_revision(cfg: SourceConfig) -> str:
    """The revision that goes into ids and the manifest (a local file's sha256)."""
    if cfg.kind == "hub":
        return cfg.revision
    path = resolve_path(cfg.path)
    if not path.is_file():
        raise ConfigError("source", "path", f"{cfg.path!r}: file not found (looked in {Path.cwd()} and {PACKAGE_ROOT})")
    digest = sha256_file(path)
    if cfg.revision and not digest.startswith(cfg.revision):
        raise ConfigError("source", "revision", f"{path} hashes to {digest[:16]}…, not the pinned {cfg.revision!r}: "
                                                "the file changed; unpin (source.revision=) for a new dataset")
    return digest


def normalise_question(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    text = re.sub(r"[^\w\s]", " ", text)
    return " ".join(text.split())


def pair_id(name: str, revision: str, row: int) -> str:
    return hashlib.sha256(f"{name}\0{revision}\0{row}".encode()).hexdigest()[:16]


def _read_rows(cfg: SourceConfig) -> tuple[list[dict], list[str], str]:
    """Rows as dicts, the column names, and a label for error messages."""
    if cfg.kind == "hub":
        import datasets

        ds = datasets.load_dataset(cfg.path, revision=cfg.revision, split=cfg.split)
        return list(ds), list(ds.column_names), f"{cfg.path}@{cfg.revision}[{cfg.split}]"
    path = resolve_path(cfg.path)
    if cfg.kind == "jsonl":
        import json

        rows = []
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ConfigError(str(path), f"line {i + 1}", f"not valid JSON: {err}") from None
            if not isinstance(row, dict):
                raise ConfigError(str(path), f"line {i + 1}", "each line must be a JSON object")
            rows.append(row)
        columns = sorted({k for r in rows for k in r})
        return rows, columns, str(path)
    import pandas as pd

    # keep_default_na=False: an empty CSV cell is "", caught below as empty text, not NaN.
    df = pd.read_csv(path, dtype=str, keep_default_na=False) if cfg.kind == "csv" else pd.read_parquet(path)
    return df.to_dict(orient="records"), [str(c) for c in df.columns], str(path)


def load_source(cfg: SourceConfig) -> LoadedSource:
    revision = resolve_revision(cfg)
    name = source_name(cfg)
    rows, columns, label = _read_rows(cfg)
    for field in ("question", "answer"):
        col = cfg.columns.get(field, field)
        if col not in columns:
            raise ConfigError(label, f"source.columns.{field}",
                              f"column {col!r} not in the source; its columns are {columns} "
                              f"(map it with source.columns.{field}=<column>)")
    if not rows:
        raise ConfigError(label, "", "the source has no rows")
    seen: set[str] = set()
    pairs: list[Pair] = []
    for i, row in enumerate(rows):
        values = {}
        for field in ("question", "answer"):
            col = cfg.columns.get(field, field)
            value = row.get(col)
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(label, f"row {i}, column {col!r}",
                                  f"{field} must be non-empty text, got {value!r}")
            values[field] = value
        key = normalise_question(values["question"])
        if key in seen:
            continue
        seen.add(key)
        pairs.append(Pair(pair_id(name, revision, i), i, values["question"], values["answer"]))
    kept = pairs[: cfg.limit] if cfg.limit else pairs
    return LoadedSource(name, revision, kept, len(rows), len(rows) - len(pairs))


def describe_unloaded(cfg: SourceConfig) -> LoadedSource:
    """A hub source as the config pins it, without downloading it: launch plans on a login node that
    may have no hub access; the pair count is known once datagen loads it (``loaded=False``)."""
    if cfg.kind != "hub":
        raise ValueError("only a hub source can be described without loading it; a local file is read")
    return LoadedSource(source_name(cfg), cfg.revision, [], rows_read=0, duplicates_dropped=0, loaded=False)


def is_shipped_demo(cfg: SourceConfig) -> bool:
    """The bad-advice pairs shipped for the demo and tests (never a study's data)."""
    return cfg.kind != "hub" and resolve_path(cfg.path).resolve() == (PACKAGE_ROOT / "datagen/demo/pairs.jsonl").resolve()


def shard_slice(pairs: list[Pair], shard: int, num_shards: int) -> list[Pair]:
    """Contiguous, balanced slice: shard sizes differ by at most one."""
    n = len(pairs)
    lo, hi = n * shard // num_shards, n * (shard + 1) // num_shards
    return pairs[lo:hi]
