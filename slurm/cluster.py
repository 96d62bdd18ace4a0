"""Small typed wrappers over the SLURM client tools, plus discovery of the local cluster.

- ``local_cluster_env(state_dir)``: the environment (``SLURM_CONF``, ...) of a running
  ``slurm/local-cluster``, or None when it is not running.
- ``sacct_states(job_ids)``: state of thousands of jobs in ONE ``sacct`` call, array tasks expanded
  (pending ranges like ``123_[4-9%2]`` included), keyed ``"123"`` or ``"123_4"``.
- ``sinfo_nodes()``: per-node state, CPUs, memory and partitions.

Every function takes ``env``: extra environment for the client tools (e.g. the dict from
``local_cluster_env``); None means this process's environment as is.
"""
from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

LOCAL_CLUSTER = Path(__file__).resolve().parent / "local-cluster"
_REPO = Path(__file__).resolve().parents[1]
_DAEMONS = ("munged", "mariadbd", "slurmdbd", "slurmctld", "slurmd-node1", "slurmd-node2")
# The last run's states; anything else (PENDING, RUNNING, REQUEUED, ...) may still change.
FINAL_STATES = frozenset({
    "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL",
    "BOOT_FAIL", "DEADLINE", "PREEMPTED", "REVOKED",
})
_SACCT_FIELDS = ("JobID", "JobIDRaw", "State", "ExitCode", "Elapsed", "NodeList")


class SlurmError(RuntimeError):
    """A SLURM client command failed; the message carries the command and its stderr."""


@dataclass(frozen=True)
class JobState:
    job_id: str          # "123" for a plain job, "123_4" for an array task
    state: str           # first word of sacct's State: "CANCELLED by 0" -> "CANCELLED"
    exit_code: int       # process exit code; -1 while unknown
    signal: int          # signal that ended it, 0 if none
    elapsed_s: int
    nodes: tuple[str, ...]  # expanded ("node1", "node2"); empty while pending

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES


@dataclass(frozen=True)
class NodeInfo:
    name: str
    state: str           # sinfo's long state: "idle", "mixed", "allocated", "down*", ...
    cpus: int
    memory_mb: int
    partitions: tuple[str, ...]


def default_state_dir() -> Path:
    return Path(os.environ.get("TRACECAUSE_SLURM_STATE") or _REPO / ".state" / "slurm")


def _pid_alive(pidfile: Path) -> bool:
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return True


def local_cluster_env(state_dir: str | os.PathLike | None = None) -> dict[str, str] | None:
    """Env of the local cluster whose state lives in ``state_dir`` if all its daemons are alive.

    Reads the ``export K=V`` lines ``local-cluster start`` wrote to ``<state>/env``; checks the
    pidfiles only (cheap), not that the nodes are idle: ``local-cluster start`` does that.
    """
    state = Path(state_dir) if state_dir is not None else default_state_dir()
    env_file = state / "env"
    if not env_file.is_file():
        return None
    if not all(_pid_alive(state / "run" / f"{d}.pid") for d in _DAEMONS):
        return None
    env: dict[str, str] = {}
    for line in env_file.read_text().splitlines():
        if line.startswith("export ") and "=" in line:
            key, value = line[len("export "):].split("=", 1)
            env[key.strip()] = value.strip()
    return env or None


def _run(cmd: list[str], env: Mapping[str, str] | None, timeout: float) -> str:
    full_env = {**os.environ, **env} if env else None
    try:
        proc = subprocess.run(cmd, env=full_env, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError as e:
        raise SlurmError(f"{cmd[0]} not found: install the SLURM client (Debian: slurm-client)") from e
    except subprocess.TimeoutExpired as e:
        raise SlurmError(f"{' '.join(cmd[:3])} ... timed out after {timeout}s") from e
    if proc.returncode != 0:
        raise SlurmError(f"{' '.join(cmd[:3])} ... failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def expand_hostlist(spec: str) -> tuple[str, ...]:
    """``node[1-3,5],gpu7`` -> ("node1", "node2", "node3", "node5", "gpu7"); "None assigned" -> ()."""
    spec = spec.strip()
    if not spec or spec.startswith("None"):
        return ()
    out: list[str] = []
    for prefix, ranges, plain in re.findall(r"([^,\[]+)\[([^\]]+)\]|([^,\[\]]+)", spec):
        if plain:
            out.append(plain)
            continue
        for part in ranges.split(","):
            lo, _, hi = part.partition("-")
            width = len(lo)
            out.extend(f"{prefix}{i:0{width}d}" for i in range(int(lo), int(hi or lo) + 1))
    return tuple(out)


def _expand_array_ids(job_id: str) -> list[str]:
    """``123_[1-3,7%2]`` (a pending array remainder) -> ["123_1", "123_2", "123_3", "123_7"]."""
    m = re.fullmatch(r"(\d+)_\[([^\]]+)\]", job_id)
    if not m:
        return [job_id]
    base, spec = m.group(1), m.group(2).split("%")[0]
    ids: list[str] = []
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        step = 1
        if ":" in hi:
            hi, step_s = hi.split(":")
            step = int(step_s)
        ids.extend(f"{base}_{i}" for i in range(int(lo), int(hi or lo) + 1, step))
    return ids


def _seconds(elapsed: str) -> int:
    """sacct Elapsed: ``[D-]HH:MM:SS`` or ``MM:SS``."""
    days, _, clock = elapsed.rpartition("-")
    parts = [int(p) for p in clock.split(":")] if clock else [0]
    secs = 0
    for p in parts:
        secs = secs * 60 + p
    return secs + int(days or 0) * 86400


def sacct_states(
    job_ids: Iterable[str | int], env: Mapping[str, str] | None = None, timeout: float = 60.0
) -> dict[str, JobState]:
    """State of every job / array task under ``job_ids`` (``"123"``, ``"123_4"`` or ints), one sacct call.

    An array id returns all its tasks. Jobs sacct does not know (yet) are absent from the result.
    Only the latest run of a requeued job is reported (sacct's default).
    """
    ids = sorted({str(j) for j in job_ids})
    if not ids:
        return {}
    cmd = ["sacct", "--noheader", "--parsable2", "--allocations",
           f"--format={','.join(_SACCT_FIELDS)}", f"--jobs={','.join(ids)}"]
    states: dict[str, JobState] = {}
    for line in _run(cmd, env, timeout).splitlines():
        fields = line.split("|")
        if len(fields) != len(_SACCT_FIELDS):
            continue
        job_id, _raw, state, exit_code, elapsed, nodes = fields
        code, _, sig = exit_code.partition(":")
        word = state.split()[0] if state.strip() else "UNKNOWN"
        for jid in _expand_array_ids(job_id):
            states[jid] = JobState(
                job_id=jid,
                state=word,
                exit_code=int(code) if code.isdigit() and word in FINAL_STATES else -1,
                signal=int(sig) if sig.isdigit() else 0,
                elapsed_s=_seconds(elapsed) if elapsed else 0,
                nodes=expand_hostlist(nodes),
            )
    return states


def sinfo_nodes(env: Mapping[str, str] | None = None, timeout: float = 30.0) -> dict[str, NodeInfo]:
    """Every node once, with the partitions it belongs to (sinfo lists a node per partition)."""
    out = _run(["sinfo", "--noheader", "--Node", "--format=%N|%T|%c|%m|%P"], env, timeout)
    nodes: dict[str, NodeInfo] = {}
    for line in out.splitlines():
        name, state, cpus, mem, part = line.strip().split("|")
        part = part.rstrip("*")
        prev = nodes.get(name)
        parts = (prev.partitions if prev else ()) + (part,)
        nodes[name] = NodeInfo(name, state, int(cpus), int(mem.rstrip("+")), parts)
    return nodes
