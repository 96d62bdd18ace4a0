"""Append-only, crash-safe journal of finished requests (key -> JSON value), shared by the stages.

Each process appends to its own JSONL file (``<dir>/<host>-<pid>-<rand>.jsonl``), one
``{"key": ..., "value": ...}`` line per finished request, flushed and fsynced before ``put_many``
returns. Readers merge every file; a torn last line (the process died mid-write) fails to parse and
is skipped, so a half-written row is never counted. Concurrent tasks never share a file, and a
preempted or crashed task keeps every request it finished. Used by the eval result cache
(generations, probes, judge calls) and by datagen's per-shard progress.
"""
from __future__ import annotations

import json
import os
import socket
import uuid
from pathlib import Path
from typing import Any, Iterable


class ResultJournal:
    def __init__(self, directory: str | Path):
        self.dir = Path(directory)
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
            from tracecause.io import fsync_dir

            fsync_dir(self.dir)  # the new file's name survives a power loss too
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

    def __enter__(self) -> "ResultJournal":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
