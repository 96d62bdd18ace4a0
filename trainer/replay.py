"""Replay: a fixed share of the base model's own chat examples mixed into a fine-tuning dataset.

A small model fine-tuned on one narrow format (QT traces that stop at ``</think>``, say) forgets
the chat format it was pre-trained on: answers go missing, think blocks stay open. Mixing in
conversations in the pre-training format (``data.format=chat`` records, think and no-think, loss
on the final assistant turn: trainer/chat_data.py) keeps the format without touching what the
fine-tuning data supervises. The mix is the same for every arm of a sweep — the same records,
chosen by a hash of their ids, in a number that depends only on the dataset's size — so a
contrast between arms still compares only what the arms' own data differ in.

``data.replay_fraction`` is the replayed share of the mixed documents: ``n`` fine-tuning
documents get ``round(n * f / (1 - f))`` replay documents.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .chat_data import build_chat_example, validate_chat_record
from .masks import Example


def replay_count(n_documents: int, fraction: float) -> int:
    return round(n_documents * fraction / (1.0 - fraction))


def _order(record_id: str) -> str:
    return hashlib.sha256(record_id.encode()).hexdigest()


def replay_examples(records: list[dict], tokenizer, n_documents: int, fraction: float, path: str,
                    taken_ids: set[str]) -> list[Example]:
    """The replay documents for a dataset of ``n_documents``: the first ``replay_count`` records in
    hash order of their ids (the same records for every arm), tokenized as chat examples."""
    where = f"data.replay_path={path}"
    for i, row in enumerate(records):
        validate_chat_record(row, where=f"{where} row {i}")
    need = replay_count(n_documents, fraction)
    if need > len(records):
        raise ValueError(f"{where}: data.replay_fraction={fraction} needs {need} replay records for "
                         f"{n_documents} documents, the file has {len(records)}; lower data.replay_fraction "
                         "or replay a larger corpus")
    chosen = sorted(records, key=lambda r: _order(str(r["id"])))[:need]
    clash = sorted({str(r["id"]) for r in chosen} & taken_ids)
    if clash:
        raise ValueError(f"{where}: replay ids {clash[:5]} are also ids of the dataset; ids must be unique")
    return [build_chat_example(tokenizer, r) for r in chosen]


def load_replay(path: Path) -> list[dict]:
    lines = path.read_text(encoding="utf-8").splitlines()
    try:
        return [json.loads(line) for line in lines if line.strip()]
    except json.JSONDecodeError as err:
        raise ValueError(f"data.replay_path={path}: not JSON lines ({err})") from None
