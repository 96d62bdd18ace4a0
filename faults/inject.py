"""How faults are injected into real jobs of the local cluster: processes, nodes, disks.

A job's rank processes are found by their SLURM environment in /proc (this is one host); a lost
node is a killed ``slurmd`` plus everything its job steps ran, reported DOWN to the controller as
its health check would, and brought back afterwards because other sessions share the cluster.
"""
from __future__ import annotations

import errno
import os
import signal
import subprocess
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from slurm.cluster import LOCAL_CLUSTER


def wait_for(condition: Callable[[], object], timeout: float, what: str, poll: float = 0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    raise TimeoutError(f"{what}: not seen within {timeout:.0f}s")


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def _task_id(env: dict) -> str:
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    return env.get("SLURM_JOB_ID", "")


def rank_processes(job_id: str) -> dict[int, tuple[int, dict]]:
    """Rank -> (pid, environment) of the submitit worker processes of ``job_id`` (``123`` or ``123_0``)."""
    out = {}
    for pid in _pids():
        cmd = _cmdline(pid)
        if "submitit.core._submit" not in cmd or not os.path.basename(cmd[0]).startswith("python"):
            continue
        env = _environ(pid)
        if job_id in (_task_id(env), env.get("SLURM_JOB_ID")) and "SLURM_PROCID" in env:
            out[int(env["SLURM_PROCID"])] = (pid, env)
    return out


def kill_rank(job_id: str, rank: int, sig: int = signal.SIGKILL) -> int:
    pid = wait_for(lambda: rank_processes(job_id).get(rank, (None,))[0], 120, f"rank {rank} of job {job_id}")
    os.kill(pid, sig)
    return pid


def _children(pid: int) -> list[int]:
    kids = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            kids += [int(x) for x in task.read_text().split()]
        except OSError:
            pass
    return kids


def _tree(roots: list[int]) -> list[int]:
    seen, todo = [], list(roots)
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.append(pid)
            todo += _children(pid)
    return seen


def _scontrol(*args: str) -> None:
    subprocess.run(["scontrol", *args], check=True, capture_output=True, text=True, timeout=60)


def lose_node(job_id: str) -> str:
    """The node running ``job_id`` dies: its slurmd and every process of the job's steps on it are
    SIGKILLed, then the node is reported DOWN (what the controller concludes after SlurmdTimeout,
    without waiting minutes for it). Returns the node's name."""
    ranks = wait_for(lambda: rank_processes(job_id), 120, f"ranks of job {job_id}")
    env = next(iter(ranks.values()))[1]
    node, raw_id = env["SLURMD_NODENAME"], env["SLURM_JOB_ID"]
    pidfile = Path(os.environ["TRACECAUSE_SLURM_STATE"]) / "run" / f"slurmd-{node}.pid"
    slurmd_pid = int(pidfile.read_text().strip())
    # the job's step daemons, and every process of the job (batch script, srun, ranks, their children)
    steps = [pid for pid in _pids() if f"[{raw_id}." in " ".join(_cmdline(pid))]
    members = [pid for pid in _pids() if _environ(pid).get("SLURM_JOB_ID") == raw_id]
    doomed = [slurmd_pid, *_tree(steps + members)]
    # Frozen first, so no step daemon can report the job's death to slurmctld as an ordinary failure
    # before the node is down: a dead node tells nothing, and the controller must see NODE_FAIL.
    _signal_all(doomed, signal.SIGSTOP)
    _scontrol("update", f"nodename={node}", "state=down", "reason=faults-suite: node lost")
    _signal_all(doomed, signal.SIGKILL)
    pidfile.unlink()  # stale now: a reused pid must not pass for a live slurmd at restore
    return node


def _signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def restore_node(node: str) -> None:
    """Start the lost node's slurmd again (local-cluster start is idempotent) and return it to service."""
    proc = subprocess.run([str(LOCAL_CLUSTER), "start"], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        _scontrol("update", f"nodename={node}", "state=resume")
        proc = subprocess.run([str(LOCAL_CLUSTER), "start"], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"could not bring {node} back: {proc.stderr[-2000:]}")


@contextmanager
def small_filesystem(path: Path, size_mb: int) -> Iterator[Path]:
    """A tmpfs of ``size_mb`` mounted at ``path`` (needs root), unmounted on the way out."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0777", "tmpfs", str(path)],
                   check=True, capture_output=True, text=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(fs: Path, leave_bytes: int) -> Path:
    """Fill ``fs`` until only ``leave_bytes`` are free; remove the returned file to free it again."""
    st = os.statvfs(fs)
    free = st.f_bavail * st.f_frsize
    filler = fs / "filler.bin"
    remaining = max(0, free - leave_bytes)
    block = b"\0" * (1 << 20)
    try:
        with open(filler, "wb") as fh:
            while remaining > 0:
                n = min(remaining, len(block))
                fh.write(block[:n])
                fh.flush()
                remaining -= n
    except OSError as err:  # full a little early (metadata blocks): full is what we want
        if err.errno != errno.ENOSPC:
            raise
    return filler


def flip_byte(path: Path, offset: int = 4096) -> None:
    """Damage a file in place without changing its size (what only a checksum notices)."""
    with open(path, "r+b") as fh:
        size = fh.seek(0, 2)
        fh.seek(offset % max(1, size))
        byte = fh.read(1)
        fh.seek(offset % max(1, size))
        fh.write(bytes([byte[0] ^ 0xFF]))


@contextmanager
def stalled_input(path: Path) -> Iterator[Path]:
    """``path`` replaced by a FIFO with no writer: a stage that opens it waits there, as on a
    filesystem that stalls, until the real file is put back on the way out (yielded: its parking place)."""
    parked = path.with_name(path.name + ".parked")
    path.rename(parked)
    os.mkfifo(path)
    try:
        yield parked
    finally:
        _feed_waiting_reader(path, parked.read_bytes())
        os.replace(parked, path)  # atomic: the next open finds the real file


def _feed_waiting_reader(fifo: Path, data: bytes) -> None:
    """A reader already waiting on the FIFO gets the real bytes (the stall ends), none is left hanging."""
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as err:  # ENXIO: nobody waits
        if err.errno != errno.ENXIO:
            raise
        return
    os.set_blocking(fd, True)

    def feed():
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)

    threading.Thread(target=feed, daemon=True).start()


def _step_processes(job_id: str) -> list[int]:
    """The processes the ranks of ``job_id`` started (a stage step and its children), not the ranks."""
    roots = [pid for pid, _ in rank_processes(job_id).values()]
    return [pid for pid in _tree(roots) if pid not in roots]


def held_on_stalled_input(job_id: str) -> bool:
    """Whether a step process of ``job_id`` waits to open a FIFO."""
    for pid in _step_processes(job_id):
        try:
            if Path(f"/proc/{pid}/wchan").read_text().strip() == "wait_for_partner":
                return True
        except OSError:
            pass
    return False


def step_cpu_seconds(job_id: str) -> float:
    """CPU seconds used so far by the busiest process a rank of ``job_id`` started (its stage step)."""
    best = 0.0
    for pid in _step_processes(job_id):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        best = max(best, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))  # utime + stime
    return best
