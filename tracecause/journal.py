"""Append-only, crash-safe journal of finished requests (key -> JSON value), shared by the stages.

Each process appends to its own JSONL file (``<dir>/<host>-<pid>-<rand>.jsonl``), one
``{"key": ..., "value": ...}`` line per finished request, flushed and fsynced before ``put_many``
returns. Readers merge every file; a torn last line (the process died mid-write) fails to parse and
is skipped, so a half-written row is never counted. Concurrent tasks never share a file, and a
preempted or crashed task keeps every request it finished. Used by the eval result cache
(generations, probes, judge calls) and by datagen's per-shard progress.

A journal given ``validate`` (value -> the reason it is unusable, or None) holds valid replies only:
``put_many`` refuses an invalid value, and a stored line that fails (written by an older version,
or damaged) is dropped on load and its key asked again; ``rejected`` maps each key that has no
valid line to why. A caller that validates more than ``validate`` can (a judge's rubric parse)
drops an entry with ``discard``. An invalid line never shadows a valid one, and files load oldest
first, so the latest answer to a key wins.
"""
from __future__ import annotations

import json
import os
import socket
import uuid
from pathlib import Path
from typing import Any, Callable, Iterable

Validate = Callable[[Any], "str | None"]


class ResultJournal:
    def __init__(self, directory: str | Path, validate: Validate | None = None):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.validate = validate
        self._entries: dict[str, Any] = {}
        self.rejected: dict[str, str] = {}   # key -> why its stored value(s) were dropped
        self._file = None
        self.torn_lines = 0
        self._load()

    def _load(self) -> None:
        def age(path: Path) -> tuple:
            try:
                return path.stat().st_mtime, path.name
            except FileNotFoundError:  # removed by another process meanwhile
                return 0.0, path.name

        for path in sorted(self.dir.glob("*.jsonl"), key=age):
            try:
                fh = open(path, "rb")
            except FileNotFoundError:
                continue
            with fh:
                for raw in fh:
                    try:
                        row = json.loads(raw)
                        key, value = row["key"], row["value"]
                    except (ValueError, KeyError, TypeError):
                        self.torn_lines += 1
                        continue
                    why = self.validate(value) if self.validate else None
                    if why:
                        if key not in self._entries:
                            self.rejected[key] = why
                        continue
                    self._entries[key] = value
                    self.rejected.pop(key, None)

    def discard(self, key: str, why: str) -> None:
        """Drop a stored value the caller found unusable: the key counts as missing (asked again)."""
        self._entries.pop(key, None)
        self.rejected[key] = why

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str, default: Any = None) -> Any:
        return self._entries.get(key, default)

    def items(self) -> Iterable[tuple[str, Any]]:
        return self._entries.items()

    def put_many(self, items: Iterable[tuple[str, Any]]) -> None:
        """Append and fsync a batch: after this returns, the batch survives a kill."""
        items = list(items)
        if not items:
            return
        for key, value in items:
            why = self.validate(value) if self.validate else None
            if why:
                raise ValueError(f"journal {self.dir}: refusing to store an invalid value for {key}: {why}")
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
            self.rejected.pop(k, None)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> "ResultJournal":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
