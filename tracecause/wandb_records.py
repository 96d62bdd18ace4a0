"""Read W&B offline run files (``.wandb``) back: history rows, config, summary, run identity.

wandb 0.31 writes offline runs with its Go core and ships no Python reader, so tests and
reports that check what was logged read the file themselves. The layout is LevelDB's log
format, as wandb uses it:

* a 7-byte header: ``b":W&B"``, a little-endian uint16 magic ``0xBEE1``, a version byte (0);
* 32 KiB blocks; each chunk has a 7-byte header ``crc32 (LE u32), length (LE u16), type (u8)``
  with ``crc32 = zlib.crc32(data, zlib.crc32(bytes([type])))`` (IEEE, seeded by the type byte);
* chunk types FULL=1, FIRST=2, MIDDLE=3, LAST=4 (a record too large for the rest of a block is
  split); fewer than 7 bytes left in a block are zero padding;
* each record is a serialised ``wandb.proto.wandb_internal_pb2.Record``.

A process writes its own ``offline-run-<YYYYmmdd_HHMMSS>-<id>`` folder even when it reuses a run
id (e.g. a requeued job), so a run's data is the union of its fragments in start order:
``history`` concatenates them; ``config``/``summary`` apply later fragments' updates on top.
"""
from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from typing import Any, Iterator

MAGIC = b":W&B"
HEADER = struct.Struct("<4sHB")  # ident, magic 0xBEE1, version
CHUNK = struct.Struct("<IHB")    # crc32, length, type
BLOCK_SIZE = 32 * 1024
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
_TYPE_CRC = {t: zlib.crc32(bytes([t])) for t in (FULL, FIRST, MIDDLE, LAST)}


class WandbFileError(ValueError):
    """A ``.wandb`` file is not in the expected format or is corrupt."""


def _chunks(data: bytes, path: Path) -> Iterator[tuple[int, int, bytes]]:
    """(offset, type, payload) for every chunk; a torn final chunk (crashed writer) ends the scan."""
    if len(data) < HEADER.size:
        raise WandbFileError(f"{path}: too short to be a .wandb file ({len(data)} bytes)")
    ident, magic, version = HEADER.unpack_from(data, 0)
    if ident != MAGIC or magic != 0xBEE1 or version != 0:
        raise WandbFileError(f"{path}: bad header {data[:HEADER.size]!r}; expected b':W&B' magic 0xBEE1 version 0")
    pos = HEADER.size
    while pos < len(data):
        left_in_block = BLOCK_SIZE - pos % BLOCK_SIZE
        if left_in_block < CHUNK.size:
            pos += left_in_block  # block trailer padding
            continue
        if pos + CHUNK.size > len(data):
            return
        crc, length, kind = CHUNK.unpack_from(data, pos)
        if crc == 0 and length == 0 and kind == 0:  # zero-filled rest of block
            pos += left_in_block
            continue
        if kind not in _TYPE_CRC or CHUNK.size + length > left_in_block:
            raise WandbFileError(f"{path}: bad chunk header at byte {pos} (type {kind}, length {length})")
        start = pos + CHUNK.size
        payload = data[start:start + length]
        if len(payload) < length:
            return  # torn write at the end of the file
        if zlib.crc32(payload, _TYPE_CRC[kind]) != crc:
            raise WandbFileError(f"{path}: CRC mismatch in chunk at byte {pos}")
        yield pos, kind, payload
        pos = start + length


def read_records(path: str | Path) -> Iterator[Any]:
    """Every ``Record`` in one ``.wandb`` file, in write order."""
    from wandb.proto import wandb_internal_pb2 as pb

    path = Path(path)
    parts: list[bytes] | None = None
    for pos, kind, payload in _chunks(path.read_bytes(), path):
        if kind == FULL:
            if parts is not None:
                raise WandbFileError(f"{path}: FULL chunk at byte {pos} inside a split record")
            blob = payload
        elif kind == FIRST:
            if parts is not None:
                raise WandbFileError(f"{path}: FIRST chunk at byte {pos} inside a split record")
            parts = [payload]
            continue
        else:
            if parts is None:
                raise WandbFileError(f"{path}: {'MIDDLE' if kind == MIDDLE else 'LAST'} chunk at byte {pos} "
                                     "without a FIRST")
            parts.append(payload)
            if kind == MIDDLE:
                continue
            blob, parts = b"".join(parts), None
        record = pb.Record()
        record.ParseFromString(blob)
        yield record


# ----------------------------------------------------------------------------- locating runs


def _run_record(path: Path):
    for record in read_records(path):
        if record.WhichOneof("record_type") == "run":
            return record.run
    return None


def find_run_files(wandb_dir: str | Path, run_id: str | None = None) -> list[Path]:
    """The ``.wandb`` files of every ``offline-run-*`` folder under ``wandb_dir``, oldest first.

    ``wandb_dir`` may be a single offline-run folder or any folder above them: the one passed
    as ``wandb.init(dir=...)``, its ``wandb/`` child, or a whole sweep (searched recursively,
    since each stage keeps its runs next to its own outputs). ``run_id`` keeps that run's fragments.
    """
    root = Path(wandb_dir)
    if root.name.startswith("offline-run-") and root.is_dir():
        folders = [root]
    else:
        folders = sorted({p.resolve() for p in root.rglob("offline-run-*") if p.is_dir()})
    # Match on the file name, not the folder: wandb names a same-second second folder "<id>-1".
    pattern = f"run-{run_id}.wandb" if run_id is not None else "run-*.wandb"
    files = [f for folder in folders for f in folder.glob(pattern)]

    return sorted(files, key=_start_order)


def _start_order(path: Path) -> tuple:
    """By the start time in the folder name first: a fragment killed before its first flush has no
    run record, but its folder still says when it started (offline-run-YYYYmmdd_HHMMSS-<id>)."""
    stamp = path.parent.name[len("offline-run-"):][:15]
    run = _run_record(path)
    started = (run.start_time.seconds, run.start_time.nanos) if run is not None else (float("inf"), 0)
    return stamp, started, path.parent.name


def _files(path_or_dir: str | Path, run_id: str | None) -> list[Path]:
    path = Path(path_or_dir)
    files = [path] if path.is_file() else find_run_files(path, run_id)
    if not files:
        which = f" for run id {run_id!r}" if run_id else ""
        raise FileNotFoundError(f"no offline W&B run files{which} under {path}")
    return files


# ----------------------------------------------------------------------------- decoding


def _item_value(item) -> Any:
    if item.value_json:
        return json.loads(item.value_json)
    which = item.WhichOneof("value") if item.DESCRIPTOR.oneofs_by_name.get("value") else None
    if which is None or which == "none":
        return None
    if which == "json":
        return json.loads(item.json)
    return getattr(item, which)


def _key_path(item) -> list[str]:
    return [item.key] if item.key else list(item.nested_key)


def _set_nested(target: dict, keys: list[str], value: Any) -> None:
    for k in keys[:-1]:
        child = target.get(k)
        if not isinstance(child, dict):
            child = target[k] = {}
        target = child
    target[keys[-1]] = value


def _remove_nested(target: dict, keys: list[str]) -> None:
    for k in keys[:-1]:
        target = target.get(k)
        if not isinstance(target, dict):
            return
    target.pop(keys[-1], None)


def history(path_or_dir: str | Path, run_id: str | None = None) -> list[dict]:
    """Logged rows (one per committed ``run.log`` step) across all fragments, in order.

    Nested keys are joined with ``"."`` (``log({"a": {"b": 1}})`` gives column ``"a.b"``), as
    W&B shows them. W&B's own ``_step``/``_timestamp``/``_runtime`` columns are kept; note that
    an offline fragment resumed under the same id restarts ``_step`` at 0.
    """
    rows = []
    for path in _files(path_or_dir, run_id):
        for record in read_records(path):
            if record.WhichOneof("record_type") == "history":
                rows.append({".".join(_key_path(item)): _item_value(item) for item in record.history.item})
    return rows


def _apply_updates(state: dict, rec) -> None:
    for item in rec.update:
        _set_nested(state, _key_path(item), json.loads(item.value_json) if item.value_json else None)
    for item in rec.remove:
        _remove_nested(state, _key_path(item))


def _fold_updates(path_or_dir: str | Path, run_id: str | None, field: str) -> dict:
    """Apply the run record's ``field`` and every later ``field`` record, in file order."""
    state: dict = {}
    for path in _files(path_or_dir, run_id):
        for record in read_records(path):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                _apply_updates(state, getattr(record.run, field))
            elif kind == field:
                _apply_updates(state, getattr(record, field))
    return state


def config(path_or_dir: str | Path, run_id: str | None = None, *, keep_internal: bool = False) -> dict:
    """The run's config (``wandb.init(config=...)`` plus later updates); ``_wandb`` dropped by default."""
    state = _fold_updates(path_or_dir, run_id, "config")
    if not keep_internal:
        state.pop("_wandb", None)
    return state


def summary(path_or_dir: str | Path, run_id: str | None = None, *, keep_internal: bool = False) -> dict:
    """The run's final summary (last logged values plus explicit ``run.summary`` writes)."""
    state = _fold_updates(path_or_dir, run_id, "summary")
    if not keep_internal:
        state = {k: v for k, v in state.items() if not k.startswith("_")}
    return state


def run_info(path_or_dir: str | Path, run_id: str | None = None) -> dict:
    """Identity of the run: id, group, job_type, name, project, tags, and its fragment files.

    A fragment whose process died before its first flush holds no run record; the id then comes
    from its file name (``run-<id>.wandb``) and the other fields are empty.
    """
    files = _files(path_or_dir, run_id)
    runs = [r for r in (_run_record(p) for p in files) if r is not None]
    ids = {r.run_id for r in runs} | {p.stem[len("run-"):] for p in files if p.stem.startswith("run-")}
    if len(ids) > 1:
        raise WandbFileError(f"{path_or_dir}: several run ids {sorted(ids)}; pass run_id=")
    if not ids:
        raise WandbFileError(f"no run record or run-<id>.wandb name in {[str(p) for p in files]}")
    info = {"id": ids.pop(), "group": "", "job_type": "", "name": "", "project": "", "entity": "",
            "tags": [], "notes": "", "start_time": None}
    if runs:
        first = runs[0]
        info.update(group=first.run_group, job_type=first.job_type, name=first.display_name,
                    project=first.project, entity=first.entity, tags=list(first.tags), notes=first.notes,
                    start_time=first.start_time.seconds + first.start_time.nanos / 1e9)
    info.update(exited=[_exit_code(p) for p in files], files=[str(p) for p in files])
    return info


def _exit_code(path: Path) -> int | None:
    """The exit code a fragment recorded at ``run.finish``; None if its process died first."""
    code = None
    for record in read_records(path):
        if record.WhichOneof("record_type") == "exit":
            code = record.exit.exit_code
    return code


def wait_until_closed(path_or_dir: str | Path, run_id: str | None = None, timeout: float = 60.0) -> list[Path]:
    """Wait until every fragment holds its exit record; returns the files.

    ``run.finish()`` returns before wandb's writer has flushed the file (its service finishes on its
    own): a reader right after it can see a run with no history yet. The exit record comes last.
    """
    import time

    deadline = time.time() + timeout
    while True:
        files = _files(path_or_dir, run_id)
        open_ = [p for p in files if _exit_code(p) is None]
        if not open_:
            return files
        if time.time() > deadline:
            raise TimeoutError(f"W&B fragments still without an exit record after {timeout}s: {open_}")
        time.sleep(0.1)


def wait_settled(path: str | Path, quiet_s: float = 2.0, timeout: float = 30.0) -> None:
    """Until one fragment holds its exit record or stops growing for ``quiet_s`` (its process was
    killed): what a resumed run waits for before reading what a predecessor logged."""
    import time

    path = Path(path)
    deadline, size, since = time.time() + timeout, -1, time.time()
    while time.time() < deadline and _exit_code(path) is None:
        now = path.stat().st_size
        if now != size:
            size, since = now, time.time()
        elif time.time() - since >= quiet_s:
            return
        time.sleep(0.2)
