"""One writer per task output folder: a lease with a fencing token, safe on a shared filesystem.

A task attempt (one training run, one stage task) takes the lease on its output folder before it
writes there and holds it for its lifetime. The lease lives beside the folder, in
``.<name>.lease/``, so the folder's own atomic renames never see it:

- ``token-<N>.json``, one per attempt that ever held the lease, created exclusively (a hard link
  of a finished file: it appears whole or not at all, and two attempts can never create the same
  N). The highest N is the holder; N only grows (the highest file is never deleted), so it is a
  **fencing token**: before every destructive step (deleting partial checkpoints, rotating
  checkpoints, truncating metrics, exporting) the holder checks that no higher token exists.
- the file carries who holds it (job id, array index, restart count, host, pid) and a heartbeat
  counter a daemon thread advances every ``ttl_s / 4`` seconds while the process lives.
- ``lock``: an ``flock`` held for the holder's lifetime where the filesystem honours it (a killed
  process loses it at once; a live one on this host, or on an NFS client with working locks, keeps
  it and makes any second attempt refuse).

A second attempt refuses, naming the holder, while the holder is live. It takes over only a lease
that is released, or whose holder is provably dead (same host, process gone, lock free), or whose
heartbeat did not move for a whole ``ttl_s`` measured on the taker's own clock (no clock-skew
assumption between hosts). The takeover creates token N+1 exclusively, so of two takers only one
wins; the old holder, if it still runs (a node declared dead while its processes live on), fails
its next fencing check and stops before it destroys anything.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import socket
import tempfile
import threading
import time
from pathlib import Path

from tracecause.io import atomic_write_json

EXIT_LEASE_HELD = 73  # sysexits EX_CANTCREAT: another attempt holds the output folder
DEFAULT_TTL_S = float(os.environ.get("TRACECAUSE_LEASE_TTL_S", 60))
# "0" where the filesystem's locks do not coordinate across nodes (Lustre mounted with localflock):
# the heartbeat rule alone decides then, as it does wherever a lock cannot be taken at all
USE_LOCKS = os.environ.get("TRACECAUSE_LEASE_LOCKS", "1") != "0"
TOKEN_RE = re.compile(r"^token-(\d{12})\.json$")


class LeaseHeld(RuntimeError):
    """Another live attempt writes this folder: this attempt must not write at all."""


class LeaseLost(RuntimeError):
    """A newer attempt took the lease over: this (stale) attempt must stop before it destroys anything."""


def attempt_identity(environ: dict | None = None) -> dict:
    """Who is asking: SLURM job id, array index and restart count where SLURM runs it, host, pid."""
    env = os.environ if environ is None else environ
    return {"job_id": env.get("SLURM_ARRAY_JOB_ID") or env.get("SLURM_JOB_ID") or "",
            "array_index": env.get("SLURM_ARRAY_TASK_ID", ""), "restart": int(env.get("SLURM_RESTART_COUNT", 0) or 0),
            "host": socket.gethostname(), "boot_id": _boot_id(), "pid": os.getpid()}


def _boot_id() -> str:
    """Same host name AND same boot id: the same kernel, where a pid says whether a process lives."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def describe(holder: dict | None) -> str:
    if not holder:
        return "an attempt whose lease file is unreadable"
    job = f"job {holder['job_id']}" if holder.get("job_id") else "a process outside SLURM"
    index = f", array index {holder['array_index']}" if holder.get("array_index") not in (None, "") else ""
    age = time.time() - float(holder.get("heartbeat_at", 0) or 0)
    return (f"{job}{index} (restart {holder.get('restart', 0)}) on host {holder.get('host')}, pid "
            f"{holder.get('pid')}, token {holder.get('token')}, last heartbeat {age:.0f} s ago by its clock")


def state_dir(folder: str | Path) -> Path:
    folder = Path(folder).absolute()
    return folder.parent / f".{folder.name}.lease"


def _tokens(sdir: Path) -> list[int]:
    try:
        names = os.listdir(sdir)
    except FileNotFoundError:
        return []
    return sorted(int(m.group(1)) for n in names if (m := TOKEN_RE.match(n)))


def _token_path(sdir: Path, token: int) -> Path:
    return sdir / f"token-{token:012d}.json"


def current(folder: str | Path) -> dict | None:
    """The newest holder's record (with its ``token``), or None when nobody ever held the lease."""
    sdir = state_dir(folder)
    tokens = _tokens(sdir)
    if not tokens:
        return None
    path = _token_path(sdir, tokens[-1])
    for _ in range(20):  # a heartbeat replaces the file atomically; only a vanished folder fails for long
        with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
            return {**json.loads(path.read_text()), "token": tokens[-1]}
        time.sleep(0.05)
    return {"token": tokens[-1]}


def record_of(folder: str | Path, token: int) -> dict | None:
    """What token ``token``'s holder last wrote (None once pruned: only the newest few are kept)."""
    with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
        return {**json.loads(_token_path(state_dir(folder), token).read_text()), "token": token}
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _try_lock(fd: int) -> bool | None:
    """True: locked; False: another process holds it; None: this filesystem does not do flock."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as err:
        if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        return None


class Lease:
    """``with Lease(folder).acquire(): ...`` — or ``acquire()`` / ``check(what)`` / ``release()``."""

    def __init__(self, folder: str | Path, ttl_s: float | None = None, identity: dict | None = None,
                 locks: bool | None = None):
        self.folder, self.ttl_s = Path(folder), float(DEFAULT_TTL_S if ttl_s is None else ttl_s)
        self.locks = USE_LOCKS if locks is None else locks
        self.dir = state_dir(folder)
        self.identity = identity or attempt_identity()
        self.token: int | None = None
        self._acquired_at = time.time()
        self._fd: int | None = None
        self._beats = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ acquire
    def acquire(self) -> "Lease":
        """Take the lease or raise LeaseHeld naming the live holder."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.dir / "lock", os.O_RDWR | os.O_CREAT, 0o666)
        try:
            locked = _try_lock(self._fd) if self.locks else None
            while True:
                holder = current(self.folder)
                if holder is not None and not holder.get("released"):
                    self._refuse_unless_stale(holder, locked)
                token = (holder or {}).get("token", 0) + 1
                if self._create(token):
                    break  # another taker won ``token`` meanwhile: look again (it is live now)
        except BaseException:
            self._close()
            raise
        self.token = token
        for old in _tokens(self.dir)[:-2]:  # history is kept short; the highest never goes
            with contextlib.suppress(FileNotFoundError):
                _token_path(self.dir, old).unlink()
        self._thread = threading.Thread(target=self._heartbeat, name="lease-heartbeat", daemon=True)
        self._thread.start()
        return self

    def _refuse_unless_stale(self, holder: dict, locked: bool | None) -> None:
        if locked is False:
            self._held(holder, "it holds the folder's lock")
        pid = int(holder.get("pid") or 0)
        if pid and holder.get("host") == self.identity["host"] and holder.get("boot_id") == self.identity["boot_id"]:
            if pid == os.getpid() and locked:
                return  # an earlier attempt in this very process that raised before releasing
            if pid != os.getpid() and not _pid_alive(pid):
                return  # its process is gone from this machine: dead (its lock went with it)
        # another host, or locks not honoured here: stale only once its heartbeat stood still for a
        # whole ttl measured on OUR clock (no assumption about the two hosts' clocks)
        seen = holder.get("heartbeat")
        deadline = time.monotonic() + float(holder.get("ttl_s", self.ttl_s))
        while time.monotonic() < deadline:
            time.sleep(min(1.0, self.ttl_s / 8))
            now = current(self.folder)
            if now is None or now.get("token") != holder.get("token") or now.get("released"):
                return  # released, or taken by someone else: the caller looks again
            if now.get("heartbeat") != seen:
                self._held(now, "its heartbeat is advancing")

    def _held(self, holder: dict, why: str) -> None:
        raise LeaseHeld(f"{self.folder} is being written by another attempt: {describe(holder)} ({why}). This "
                        "attempt refuses to write there. If that attempt is really gone, its lease goes stale "
                        f"{holder.get('ttl_s', self.ttl_s):.0f} s after its last heartbeat and the next attempt takes "
                        f"over; the lease is in {self.dir}")

    def _record(self, token: int) -> dict:
        return {**self.identity, "token": token, "heartbeat": self._beats, "heartbeat_at": time.time(),
                "acquired_at": self._acquired_at, "ttl_s": self.ttl_s, "released": False}

    def _create(self, token: int) -> bool:
        """Exclusively create token file ``token``, whole (a hard link to a finished file)."""
        fd, tmp = tempfile.mkstemp(prefix=".new-token.", dir=self.dir)
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(self._record(token), fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.link(tmp, _token_path(self.dir, token))
            return True
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp)

    # ------------------------------------------------------------------ hold
    def _heartbeat(self) -> None:
        path = _token_path(self.dir, self.token)
        while not self._stop.wait(self.ttl_s / 4):
            if self.lost():
                return
            self._beats += 1
            with contextlib.suppress(OSError):  # a missed beat is retried; ttl allows several
                atomic_write_json(path, self._record(self.token))

    def lost(self) -> dict | None:
        """The newer holder when this lease was taken over (or its folder vanished), else None."""
        tokens = _tokens(self.dir)
        if tokens and tokens[-1] == self.token:
            return None
        return current(self.folder) or {"token": None}

    def check(self, what: str) -> None:
        """Fencing: raise LeaseLost unless this attempt still holds the newest token."""
        if self.token is None:
            raise LeaseLost(f"{what} in {self.folder}: refused, this attempt holds no lease on it")
        newer = self.lost()
        if newer is not None:
            raise LeaseLost(f"{what} in {self.folder}: refused, this attempt's lease (token {self.token}) was taken "
                            f"over by {describe(newer)}; this attempt stops without touching the folder")

    # ------------------------------------------------------------------ release
    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.token is not None and self.lost() is None:
            atomic_write_json(_token_path(self.dir, self.token), {**self._record(self.token), "released": True})
        self._close()

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # the flock goes with it
            self._fd = None

    def __enter__(self) -> "Lease":
        return self if self.token is not None else self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def live_holder(folder: str | Path) -> dict | None:
    """Read-only look before an attempt announces itself: the holder when it is certainly live (it
    holds the lock, or its process runs on this machine), else None. Cases it cannot decide at once
    (a holder on another host without working locks) are left to ``Lease.acquire``, which decides."""
    holder = current(folder)
    if holder is None or holder.get("released"):
        return None
    me = attempt_identity()
    pid = int(holder.get("pid") or 0)
    if pid and pid != me["pid"] and (holder.get("host"), holder.get("boot_id")) == (me["host"], me["boot_id"]):
        return holder if _pid_alive(pid) else None
    if not USE_LOCKS:
        return None
    try:
        fd = os.open(state_dir(folder) / "lock", os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # shared: two such looks never block each other
        return None
    except OSError as err:
        return holder if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES) else None
    finally:
        os.close(fd)
