"""Crash-safe file output: atomic writes and completion markers.

A stage's output exists only once its marker exists. Everything before the marker
is written under a temporary name in the same directory and renamed into place,
so a crash never leaves a half-written file that a later stage could read.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

MARKER = "_COMPLETE"


def _umask() -> int:
    """The process umask, read without changing it (os.umask would race other threads)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs are shared (reports, other jobs)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def mark_complete(directory: str | Path, info: dict | None = None) -> Path:
    """Write the completion marker of ``directory`` (last step of any output)."""
    payload = {"completed_at": time.time(), **(info or {})}
    return atomic_write_json(Path(directory) / MARKER, payload)


def is_complete(directory: str | Path) -> bool:
    return (Path(directory) / MARKER).is_file()


def completion_info(directory: str | Path) -> dict | None:
    marker = Path(directory) / MARKER
    return read_json(marker) if marker.is_file() else None


@contextlib.contextmanager
def atomic_dir(final: str | Path, info: dict | None = None, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling directory; on success rename it to ``final`` and mark it.

    On an exception the temporary directory is removed and ``final`` is untouched. An existing
    ``final`` without ``overwrite`` raises FileExistsError before the body runs.
    """
    final = Path(final)
    if final.exists() and not overwrite:  # before any work, not after it
        raise FileExistsError(f"{final} already exists; refusing to overwrite it")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
    try:
        yield tmp
        mark_complete(tmp, info)
        if final.exists() and not overwrite:
            raise FileExistsError(f"{final} already exists; refusing to overwrite it")
        swap_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def swap_dir(tmp: str | Path, final: str | Path, trash: str | Path | None = None) -> None:
    """Rename the finished folder ``tmp`` (a sibling of ``final``) to ``final``, so that ``final`` is
    always whole: an existing one is first renamed aside to ``trash`` (default: a hidden sibling) and
    removed only after the new one is in place. The parent is fsynced: the rename survives a power loss."""
    tmp, final = Path(tmp), Path(final)
    if final.exists():
        trash = Path(trash) if trash else final.with_name(f".{final.name}.old.{uuid.uuid4().hex[:12]}")
        os.replace(final, trash)
        os.replace(tmp, final)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(tmp, final)
    fsync_dir(final.parent)


def fsync_dir(directory: str | Path) -> None:
    """Make a rename or a new entry in ``directory`` durable (a file's fsync does not cover its name)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: str | Path) -> None:
    """fsync every file and folder under ``root`` (writers such as torch.save and save_pretrained
    do not): a completion marker written after this never points at data still in the page cache."""
    root = Path(root)
    for folder, _, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(folder)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@contextlib.contextmanager
def locked(path: str | Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) for the body: read-modify-write of a
    shared file by several processes (on NFS, Linux maps flock to POSIX locks). Where the filesystem
    has no locks at all the body runs unlocked rather than not at all."""
    import errno
    import fcntl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as err:
            if err.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                raise
        yield
    finally:
        os.close(fd)
