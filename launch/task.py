"""The callable every SLURM task (and every local process) runs: one stage task on this rank.

Preemption: the trainer installs its own USR2/SIGTERM handler (flag -> collective save ->
exit ``EXIT_REQUEUE``), which replaces submitit's; on that status rank 0 requeues the SAME
job (array task) with ``scontrol requeue``, so it resumes from its checkpoint and W&B run.
The other stages (datagen, merge, eval, analysis) run as a child process: the signal is forwarded
to it, it stops at once with its finished requests journaled (tracecause.preemption) and exits
``EXIT_REQUEUE``, and the task is requeued the same way, counted as a preemption (a signal between
two steps stops before the next). submitit's ``checkpoint()`` remains for a signal outside the steps.
A crash is requeued at most ``max_crash_retries`` times; preemptions are not counted.
"""
from __future__ import annotations

import atexit
import contextlib
import logging
import os
import socket
import subprocess
import sys
import time
import traceback
from dataclasses import asdict
from pathlib import Path

from submitit.helpers import Checkpointable

from tracecause.contracts import EXIT_REQUEUE
from tracecause.lease import EXIT_LEASE_HELD, Lease, LeaseHeld, current, describe, live_holder
from tracecause.preemption import PREEMPTION_SIGNALS, handling_preemption

from launch import records
from launch.graph import Task, done

MAX_TIMEOUT_REQUEUES = 20  # a task that times out this often without finishing makes no progress


def _port(job_id: str, restart: int) -> int:
    return 20000 + (int(job_id) * 7 + restart * 131) % 20000


def rank_env_from_slurm() -> dict:
    """torch.distributed env:// variables from SLURM's (one process per task, no torchrun)."""
    env = os.environ
    if "SLURM_PROCID" not in env or "SLURM_JOB_ID" not in env:
        return {}
    from submitit import JobEnvironment

    je = JobEnvironment()
    hosts = list(je.hostnames)
    out = {"RANK": str(je.global_rank), "LOCAL_RANK": str(je.local_rank), "WORLD_SIZE": str(je.num_tasks),
           "LOCAL_WORLD_SIZE": str(max(1, je.num_tasks // max(1, je.num_nodes))), "NODE_RANK": str(je.node),
           "MASTER_ADDR": env.get("MASTER_ADDR") or (hosts[0] if hosts else "127.0.0.1"),
           "MASTER_PORT": env.get("MASTER_PORT") or str(_port(env["SLURM_JOB_ID"], int(env.get("SLURM_RESTART_COUNT", 0))))}
    return out


# The child treats SIGTERM/SIGUSR2 as preemption from its first line (tracecause.preemption), so a
# signal during its imports is a requeue too, not a death by the signal's default action.
_STEP = ("import sys; from tracecause.preemption import run_preemptible as p; "
         "from launch.stages import run_stage_main as r; "
         "sys.exit(p(lambda: r(sys.argv[1], sys.argv[3:], sys.argv[2]), sys.argv[1]))")


def _forwarder(proc: subprocess.Popen, seen: list[int]):
    """While a step runs, a SIGTERM/SIGUSR2 to this process goes to the step (which stops at once,
    its finished work on disk, and exits EXIT_REQUEUE) instead of submitit's whole-task requeue."""
    def forward(signum, frame):
        seen.append(signum)
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signum)

    return forward


def run_step_process(stage: str, argv: list[str], module: str = "",
                     seen: list[int] | None = None) -> tuple[int, str]:
    """``<stage>.cli.main(argv)`` in a child process; its output passes through, its error tail is kept.
    Preemption signals received meanwhile are forwarded to it and appended to ``seen``."""
    cmd = [sys.executable, "-c", _STEP, stage, module, *argv]
    tail: list[str] = []
    seen = [] if seen is None else seen
    with subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, errors="replace") as proc, \
            handling_preemption(_forwarder(proc, seen)):
        for line in proc.stderr:
            sys.stderr.write(line)
            tail.append(line)
            del tail[:-60]
        proc.wait()
    sys.stderr.flush()
    if seen and proc.returncode in [-s for s in PREEMPTION_SIGNALS]:
        return EXIT_REQUEUE, ""  # the signal beat the child's handler: still a preemption, not a crash
    return proc.returncode, "".join(tail)[-4000:] if proc.returncode else ""


TASK_ENTRY_POINTS = ("submitit.core._submit", "launch.runtask", "launch.warm")


def leave_before_teardown() -> None:
    """After a finished in-process stage, exit with status 0 once the interpreter starts to exit,
    skipping the rest of its teardown.

    A training rank's native threads (gloo, DeepSpeed's communication ops) can abort the process while
    the interpreter tears down ("terminate called without an active exception"; seen on one rank of a
    2-rank rehearsal task, after its export was written and its record said done). SLURM then records
    the array task FAILED, so the evaluation that depends on it (aftercorr) can never start. Once the
    task's outputs and record are on disk, teardown can add nothing to them. Registered last, this
    handler runs first at exit (after submitit has written its result): it flushes logging and the
    standard streams and leaves, so no later handler or native destructor can fail a finished task.
    Only in a task's own process (submitit's job entry point or ``launch.runtask``): a host process
    that calls a task in-process keeps its own exit status.
    """
    main = getattr(sys.modules.get("__main__"), "__spec__", None)
    if getattr(main, "name", "") not in TASK_ENTRY_POINTS:
        return

    def leave() -> None:
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(0)

    atexit.register(leave)


class StageTask(Checkpointable):
    """Submitit-checkpointable: ``__call__`` runs the task; ``checkpoint`` resubmits it unchanged."""

    def __init__(self, task: Task, sweep_dir: str, scheduler: str = "slurm", max_crash_retries: int = 2,
                 time_min: int = 60, signal_lead_s: int = 120):
        self.task, self.sweep_dir, self.scheduler = task, str(sweep_dir), scheduler
        self.max_crash_retries, self.time_min, self.signal_lead_s = max_crash_retries, time_min, signal_lead_s

    # -------------------------------------------------------------- helpers
    @property
    def record(self) -> Path:
        return records.record_path(self.sweep_dir, self.task.stage, self.task.key)

    def _rank(self) -> int:
        return int(os.environ.get("RANK", os.environ.get("SLURM_PROCID", 0)))

    def _job_id(self) -> str:
        a, t = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
        return f"{a}_{t}" if a and t else os.environ.get("SLURM_JOB_ID", f"local-{os.getpid()}")

    def _requeue(self) -> bool:
        jid = os.environ.get("SLURM_JOB_ID")
        if self.scheduler != "slurm" or not jid:
            return False
        proc = subprocess.run(["scontrol", "requeue", jid], capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:  # e.g. SLURM itself requeues a partition-preempted job
            print(f"[launch] scontrol requeue {jid}: {proc.stderr.strip()}", file=sys.stderr, flush=True)
        return True

    # -------------------------------------------------------------- run
    def __call__(self) -> str:
        from launch.stages import run_stage_main

        os.environ.update({k: v for k, v in rank_env_from_slurm().items()})
        rank0 = self._rank() == 0
        if done(self.task):
            if rank0:
                records.update_record(self.record, state=records.DONE, done_dir=self.task.done_dir)
            return "done (already complete)"
        holder = live_holder(self.output_folder)
        if holder is not None:  # before this attempt announces itself: the holder's record stays as it is
            return self._refused(f"{self.output_folder} is being written by {describe(holder)}", rank0)
        started = time.time()
        before = records.read_record(self.record)
        if rank0:
            records.add_event(self.record, {"event": "start", "job_id": self._job_id(), "host": socket.gethostname(),
                                            "restart": int(os.environ.get("SLURM_RESTART_COUNT", 0))},
                              increment={"attempts": 1}, state=records.RUNNING, job_id=self._job_id(),
                              started_at=started, stage=self.task.stage, key=self.task.key, arm=self.task.arm,
                              done_dir=self.task.done_dir)
        rc, error = 0, ""
        try:
            if self.task.stage == "train":  # in-process: the trainer's USR2 handler must see the signal
                for argv in self.task.argvs:
                    rc = run_stage_main(self.task.stage, list(argv), self.task.module)
                    if rc != 0:
                        break
            else:
                rc, error = self._run_steps_under_lease(rank0)
        except Exception:  # a crash of the stage: classified and capped below
            rc, error = 1, traceback.format_exc()[-4000:]
        if rc == 0:
            if rank0:
                records.add_event(self.record, {"event": "done", "elapsed_s": time.time() - started},
                                  state=records.DONE, error="")
            if self.task.stage == "train":
                leave_before_teardown()
            return "done"
        if rc == EXIT_REQUEUE:
            return self._requeue_after_signal(started, rank0)
        if rc == EXIT_LEASE_HELD:  # the holder's job id and state go back where this attempt wrote its own
            if rank0:
                records.update_record(self.record, job_id=before.get("job_id", ""), state=before.get("state", ""))
            return self._refused(error or f"{self.output_folder} is being written by "
                                 f"{describe(current(self.output_folder))}", rank0)
        return self._crashed(rc, error, rank0)

    @property
    def output_folder(self) -> Path:
        """The folder the task's lease covers: the trainer's output.dir (the parent of its export; the
        trainer takes that lease itself and fences its own destructive steps), else ``done_dir``."""
        done_dir = Path(self.task.done_dir)
        return done_dir.parent if self.task.stage == "train" else done_dir

    def _run_steps_under_lease(self, rank0: bool) -> tuple[int, str]:
        """The steps of a non-training task while rank 0 holds the lease on its output folder."""
        if not rank0:
            return self._run_steps()
        try:
            lease = Lease(self.output_folder).acquire()
        except LeaseHeld as err:
            return EXIT_LEASE_HELD, str(err)
        try:
            return self._run_steps()
        finally:
            lease.release()

    def _run_steps(self) -> tuple[int, str]:
        """Each step in a fresh process (each vLLM engine's memory goes back with it). After a
        preemption signal (during a step that still finished, or between steps) no further step
        starts: a requeue, like a step stopped by it."""
        from launch.warm import WARM_ENV, run_step_forked

        run_step = run_step_forked if os.environ.get(WARM_ENV) else run_step_process  # a warm task forks its steps
        signals: list[int] = []
        rc, error = 0, ""
        with handling_preemption(lambda signum, frame: signals.append(signum)):
            for i, argv in enumerate(self.task.argvs):
                rc, error = run_step(self.task.stage, list(argv), self.task.module, seen=signals)
                if rc == 0 and signals and i + 1 < len(self.task.argvs):
                    rc = EXIT_REQUEUE
                if rc != 0:
                    break
        return rc, error

    def _requeue_after_signal(self, started: float, rank0: bool) -> str:
        limit = self.time_min * 60
        timed_out = time.time() - started >= limit - self.signal_lead_s - 30
        kind = records.TIMEOUT if timed_out else records.PREEMPTED
        if rank0:
            rec = records.add_event(self.record, {"event": kind}, state=kind,
                                    increment={"timeouts": int(timed_out), "preemptions": int(not timed_out)})
            if rec["timeouts"] > MAX_TIMEOUT_REQUEUES:
                records.update_record(self.record, state=records.FAILED, error=f"timed out {rec['timeouts']} times")
                raise RuntimeError(f"{self.task.uid}: timed out {rec['timeouts']} times without finishing")
            self._requeue()
        raise SystemExit(EXIT_REQUEUE)  # no submitit result pickle: the job is not over

    def _crashed(self, rc: int, error: str, rank0: bool) -> str:
        msg = error or f"{self.task.stage} exited with status {rc}"
        if rank0:
            def outcome(rec: dict) -> dict:
                return {"state": records.CRASHED if rec["crashes"] <= self.max_crash_retries else records.FAILED}

            rec = records.add_event(self.record, {"event": "crash", "rc": rc, "error": msg[-2000:]},
                                    increment={"crashes": 1}, derive=outcome, error=msg[-2000:])
            if rec["state"] == records.CRASHED and self._requeue():
                raise SystemExit(rc)
        raise RuntimeError(f"{self.task.uid} failed (status {rc}):\n{msg}")

    def _refused(self, error: str, rank0: bool) -> str:
        """Another live attempt holds the task's output folder (tracecause.lease): this attempt wrote
        nothing and ends without a requeue, so it can neither loop nor burn the crash retry cap. The
        record keeps the holder's state; the refusal is counted and named in its history."""
        msg = error or f"{self.task.stage}: another attempt holds the output folder's lease"
        if not rank0:  # ends with status 0: srun's --kill-on-bad-exit must not stop rank 0 before it records
            return f"refused ({msg.splitlines()[-1] if msg else 'lease held'}); rank 0 records it"
        records.add_event(self.record, {"event": "refused: another attempt holds the lease",
                                        "job_id": self._job_id(), "error": msg[-2000:]},
                          increment={"lease_refusals": 1})
        raise RuntimeError(f"{self.task.uid}: refused (status {EXIT_LEASE_HELD}), another attempt writes its "
                           f"output:\n{msg}")

    def checkpoint(self, *args, **kwargs):
        """submitit's USR2 path (stages without their own handler): requeue the task as it is."""
        from submitit.helpers import DelayedSubmission

        if self._rank() == 0:
            records.add_event(self.record, {"event": "preempted (submitit)"}, state=records.PREEMPTED)
        return DelayedSubmission(self, *args, **kwargs)

    def to_json(self) -> dict:
        return {"task": {**asdict(self.task)}, "sweep_dir": self.sweep_dir, "scheduler": self.scheduler,
                "max_crash_retries": self.max_crash_retries, "time_min": self.time_min,
                "signal_lead_s": self.signal_lead_s}

    @classmethod
    def from_json(cls, data: dict) -> "StageTask":
        t = data["task"]
        task = Task(**{**t, "argvs": tuple(tuple(a) for a in t["argvs"])})
        return cls(task, data["sweep_dir"], data["scheduler"], data["max_crash_retries"], data["time_min"],
                   data["signal_lead_s"])
