"""Append-only, crash-safe result cache (generations, logprob probes, judge calls).

Each process appends to its own JSONL file (``<cache>/<kind>/<host>-<pid>-<rand>.jsonl``), one
``{"key": ..., "value": ...}`` line per finished request, flushed and fsynced per chunk. Readers
merge every file of the kind; a torn last line (the process died mid-write) fails to parse and is
skipped, so a half-written row is never counted. Concurrent SLURM tasks never share a file.
"""
from __future__ import annotations

import hashlib
import json
import os
import socket
import uuid
from pathlib import Path
from typing import Any, Iterable


def cache_key(**parts: Any) -> str:
    """Stable key of a request: sha256 of its canonical JSON parts."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ResultCache:
    def __init__(self, root: str | Path, kind: str):
        self.dir = Path(root) / kind
        self.dir.mkdir(parents=True, exist_ok=True)
        self._entries: dict[str, Any] = {}
        self._file = None
        self.torn_lines = 0
        self._load()

    def _load(self) -> None:
        for path in sorted(self.dir.glob("*.jsonl")):
            with open(path, "rb") as fh:
                for raw in fh:
                    try:
                        row = json.loads(raw)
                        self._entries[row["key"]] = row["value"]
                    except (ValueError, KeyError, TypeError):
                        self.torn_lines += 1

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str, default: Any = None) -> Any:
        return self._entries.get(key, default)

    def put_many(self, items: Iterable[tuple[str, Any]]) -> None:
        """Append and fsync a batch: after this returns, the batch survives a kill."""
        items = list(items)
        if not items:
            return
        if self._file is None:
            name = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
            self._file = open(self.dir / name, "ab")
        data = b"".join(json.dumps({"key": k, "value": v}, ensure_ascii=False).encode("utf-8") + b"\n" for k, v in items)
        self._file.write(data)
        self._file.flush()
        os.fsync(self._file.fileno())
        for k, v in items:
            self._entries[k] = v

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> "ResultCache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
