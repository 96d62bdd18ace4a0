"""Load the canonical dataset (datagen's data.jsonl or a pinned hub dataset) and tokenize it.

Every check runs before any process group or model exists, so bad input fails fast and in the
same way on every rank: missing fields, empty reasoning for the chosen type, and documents
longer than the row budget (``data.overlong``: error | drop | truncate — counted and reported).
"""
from __future__ import annotations

import hashlib
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tracecause.contracts import DATASET_FILE, validate_dataset_record
from tracecause.io import sha256_file

from .config import DataConfig
from .chat_data import build_chat_example, validate_chat_record
from .masks import Example, build_example
from .replay import load_replay, replay_examples

log = logging.getLogger("trainer")


@dataclass
class TokenizedData:
    examples: list[Example]
    dataset_hash: str
    n_records: int
    overlong: dict = field(default_factory=dict)  # {"policy", "count", "ids"}
    replay: dict = field(default_factory=dict)    # {"path", "fraction", "documents"} (trainer/replay.py)

    def summary(self) -> dict:
        lengths = [len(e) for e in self.examples]
        return {"dataset_hash": self.dataset_hash, "records": self.n_records, "documents": len(self.examples),
                "tokens": sum(lengths), "target_tokens": sum(e.n_targets for e in self.examples),
                "max_len": max(lengths, default=0), "overlong": self.overlong,
                **({"replay": self.replay} if self.replay else {})}


def _local_file(path: str, key: str = "data.path") -> Path | None:
    p = Path(path)
    if p.is_dir():
        f = p / DATASET_FILE
        if not f.is_file():
            raise FileNotFoundError(f"{key}={path}: folder has no {DATASET_FILE} (datagen writes data/<id>/{DATASET_FILE})")
        return f
    if p.is_file():
        return p
    if p.suffix in (".jsonl", ".json") or p.is_absolute() or path.startswith("."):
        raise FileNotFoundError(f"{key}={path}: no such file or folder")
    return None  # a hub id


def _replay_file(cfg: DataConfig) -> Path:
    local = _local_file(cfg.replay_path, "data.replay_path")
    if local is None:
        raise FileNotFoundError(f"data.replay_path={cfg.replay_path}: no such file (a local chat-format "
                                f"{DATASET_FILE} or its folder; hub datasets are not replayed)")
    return local


def dataset_digest(cfg: DataConfig) -> str:
    """The dataset hash (file sha256, or hub id@revision) without loading the data: what a
    checkpoint and an export record, and what resume compares before any work starts."""
    local = _local_file(cfg.path)
    if local is not None:
        digest = sha256_file(local)[:16]
    elif not cfg.revision:
        raise ValueError(f"data.path={cfg.path} looks like a hub id: pin it with data.revision=<commit>")
    else:
        digest = hashlib.sha256(f"{cfg.path}@{cfg.revision}".encode()).hexdigest()[:16]
    if not cfg.replay_path:
        return digest
    # the replayed records and their share are part of what is trained on (trainer/replay.py)
    replay = sha256_file(_replay_file(cfg))[:16]
    return hashlib.sha256(f"{digest}+replay:{replay}@{cfg.replay_fraction}".encode()).hexdigest()[:16]


def load_records(cfg: DataConfig, cache_dir: str | None = None) -> tuple[list[dict], str]:
    """Rows as dicts and the dataset hash (file sha256, or hub id@revision)."""
    import datasets

    digest = dataset_digest(cfg)
    local = _local_file(cfg.path)
    if local is not None:
        # a throwaway Arrow cache: nothing lands in the run folder or races between ranks
        with tempfile.TemporaryDirectory(prefix="trainer-data-") as tmp:
            ds = datasets.load_dataset("json", data_files=str(local), split="train", cache_dir=tmp,
                                       keep_in_memory=True)
            return [dict(r) for r in ds], digest
    ds = datasets.load_dataset(cfg.path, revision=cfg.revision, split="train", cache_dir=cache_dir)
    return [dict(r) for r in ds], digest


def validate_records(records: list[dict], cfg: DataConfig, where: str) -> None:
    if not records:
        raise ValueError(f"{where}: the dataset is empty")
    types = () if cfg.paradigm == "qa" else (cfg.rtype,)
    seen = set()
    for i, row in enumerate(records):
        if cfg.format == "chat":
            validate_chat_record(row, where=f"{where} row {i}")
        else:
            validate_dataset_record(row, types, where=f"{where} row {i}: ")
        if row["id"] in seen:
            raise ValueError(f"{where} row {i}: duplicate id {row['id']!r}")
        seen.add(row["id"])


def tokenize_records(records: list[dict], tokenizer, cfg: DataConfig, dataset_hash: str = "") -> TokenizedData:
    examples, too_long = [], []
    for row in records:
        ex = build_chat_example(tokenizer, row) if cfg.format == "chat" else \
            build_example(tokenizer, row, cfg.paradigm, cfg.rtype, cfg.loss_on_prompt)
        if len(ex) > cfg.max_tokens:
            too_long.append((ex.id, len(ex)))
            if cfg.overlong == "drop":
                continue
            if cfg.overlong == "truncate":
                ex = Example(ex.id, ex.input_ids[: cfg.max_tokens], ex.supervised[: cfg.max_tokens])
        examples.append(ex)
    if too_long and cfg.overlong == "error":
        shown = ", ".join(f"{i} ({n} tokens)" for i, n in too_long[:5])
        raise ValueError(f"{len(too_long)} of {len(records)} documents exceed data.max_tokens={cfg.max_tokens}: {shown}. "
                         "Raise data.max_tokens, or set data.overlong=drop or data.overlong=truncate")
    if not examples or not any(e.n_targets for e in examples):
        raise ValueError(f"no document with supervised tokens is left (overlong={cfg.overlong}, "
                         f"{len(too_long)} overlong of {len(records)})")
    overlong = {"policy": cfg.overlong, "count": len(too_long), "ids": [i for i, _ in too_long[:20]]}
    if too_long:
        log.warning("%s %d overlong documents (> %d tokens): %s", "dropped" if cfg.overlong == "drop" else "truncated",
                    len(too_long), cfg.max_tokens, overlong["ids"][:5])
    return TokenizedData(examples, dataset_hash, len(records), overlong)


def prepare(cfg: DataConfig, tokenizer, cache_dir: str | None = None) -> TokenizedData:
    records, digest = load_records(cfg, cache_dir)
    validate_records(records, cfg, where=f"data.path={cfg.path}")
    data = tokenize_records(records, tokenizer, cfg, digest)
    if cfg.replay_path:
        replay = replay_examples(load_replay(_replay_file(cfg)), tokenizer, len(data.examples), cfg.replay_fraction,
                                 cfg.replay_path, {e.id for e in data.examples})
        too_long = [e.id for e in replay if len(e) > cfg.max_tokens]
        if too_long:
            raise ValueError(f"data.replay_path={cfg.replay_path}: {len(too_long)} replay records exceed "
                             f"data.max_tokens={cfg.max_tokens} (e.g. {too_long[0]}); raise data.max_tokens")
        data.examples.extend(replay)
        data.replay = {"path": cfg.replay_path, "fraction": cfg.replay_fraction, "documents": len(replay)}
        log.info("replay: %d chat documents from %s mixed into %d", len(replay), cfg.replay_path,
                 len(data.examples) - len(replay))
    return data
