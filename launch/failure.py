"""Why a task failed, in words a person can act on: SLURM's verdict, the task's counts, its last log lines."""
from __future__ import annotations

from pathlib import Path

from tracecause.contracts import SweepLayout

# sacct's final states that are not a clean finish -> what to tell the person looking at status
SLURM_REASONS = {
    "OUT_OF_MEMORY": "out of memory (SLURM OUT_OF_MEMORY): raise the stage's mem_gb or lower its batch",
    "NODE_FAIL": "node failure (SLURM NODE_FAIL): resume reruns it elsewhere",
    "TIMEOUT": "time limit reached (SLURM TIMEOUT): raise the stage's time_min",
    "PREEMPTED": "preempted and not requeued (SLURM PREEMPTED): resume resubmits it",
    "CANCELLED": "cancelled (scancel, or a dependency that can never be met)",
    "BOOT_FAIL": "node failed to boot (SLURM BOOT_FAIL)",
    "DEADLINE": "missed its deadline (SLURM DEADLINE)",
    "REVOKED": "revoked by SLURM (federation)",
}
LOG_TAIL_LINES = 3


def slurm_reason(state: str, exit_code: int = -1, signal: int = 0) -> str:
    """Text for sacct's final ``state`` (and exit code / signal of a FAILED one); "" for COMPLETED."""
    if state == "COMPLETED":
        return ""
    if state in SLURM_REASONS:
        return SLURM_REASONS[state]
    if signal == 9 or exit_code in (9, 137):  # srun reports a task killed by signal N as exit code N
        return (f"killed by SIGKILL (exit {exit_code}:{signal}); without SLURM memory enforcement this is "
                "usually the kernel's OOM killer: raise the stage's mem_gb")
    if signal:
        return f"killed by signal {signal}"
    if exit_code > 128:
        return f"killed by signal {exit_code - 128} (exit {exit_code})"
    return f"exited with status {exit_code}" if exit_code > 0 else state.lower()


def counts(rec: dict) -> str:
    """"preempted 2 times, crashed once" (empty when neither happened)."""
    def times(n: int) -> str:
        return "once" if n == 1 else f"{n} times"

    parts = [f"{what} {times(int(rec.get(key) or 0))}" for what, key in
             (("preempted", "preemptions"), ("timed out", "timeouts"), ("crashed", "crashes")) if rec.get(key)]
    return ", ".join(parts)


def error_log(sweep_dir: Path, stage: str, job_id: str) -> Path | None:
    """submitit's stderr file of rank 0 of ``job_id`` (``123`` or ``123_4``) in this sweep, if any."""
    if not job_id or job_id.startswith("local"):
        return None
    folder = SweepLayout(Path(sweep_dir)).jobs(stage) / "submitit" / job_id
    path = folder / f"{job_id}_0_log.err"
    return path if path.is_file() else None


def tail(text: str, lines: int = LOG_TAIL_LINES) -> list[str]:
    kept = [line.rstrip() for line in text.splitlines() if line.strip()]
    return kept[-lines:]


def log_tail(path: Path | None, lines: int = LOG_TAIL_LINES) -> list[str]:
    if path is None:
        return []
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        fh.seek(max(0, fh.tell() - 16384))
        return tail(fh.read().decode(errors="replace"), lines)
