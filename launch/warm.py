"""Warm starts for the local executor: each task forked from one interpreter that has already
imported the stages' heavy libraries, instead of a fresh ``python -m launch.runtask``.

Why: on the known-answer world's 1M-parameter arms, importing torch, transformers, DeepSpeed and
datasets is ~5 s of a ~20 s training task and of a ~13 s evaluation (bench/warm_start.py measures
both ways side by side); a sweep of 71 small tasks pays it 71 times, plus once per evaluation step.

The shape: ``WarmStarter`` (in the executor) starts ``python -m launch.warm REQ RESP`` once per
local run, with the run's environment; that process (the zygote) imports ``PRELOAD``, then forks
one child per task request read from REQ and reports each child's pid and exit status on RESP.
A child is a task's own process, as ``python -m launch.runtask TASK.json`` would be: it takes the
request's environment, working directory and output file, reseeds what a fresh interpreter seeds
from the OS, runs ``launch.runtask.main`` and exits with its status after the exit handlers ran.
Inside it, each step of a non-training task (generate, judge, score, ...) is forked the same way
(``run_step_forked``), the step's stderr tail kept for the task's record as with a subprocess.

The zygote never computes (no OpenMP pool exists to be copied into a child) and holds no thread, so
each task is forked from a single-threaded process. A step is forked while its task holds the output
folder's lease, whose heartbeat thread is the only other thread then: the step never touches the
lease (only its task writes the lease's files), and the lock's file descriptor it inherits keeps the
folder locked while the step writes there, as the task's own lock does. Multi-process training (torchrun) and a stage with its
own interpreter (``python:`` in the profile) start cold, as before.
"""
from __future__ import annotations

import atexit
import importlib
import json
import os
import select
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

# What the stages import before their first useful line; a module missing here only starts cold.
# vLLM is left out on purpose: its import sets up platform state a child may not want.
PRELOAD = ("numpy", "pandas", "pyarrow", "torch", "datasets", "transformers", "transformers.modeling_utils",
           "transformers.models.qwen3.modeling_qwen3", "deepspeed", "deepspeed.runtime.engine",
           "deepspeed.runtime.zero.stage3", "trainer.cli", "trainer.loop", "evalsuite.cli", "launch.runtask",
           "launch.stages")
WARM_ENV = "TRACECAUSE_WARM_CHILD"  # set in a warm task's environment: its steps are forked too


def preload() -> list[str]:
    """Import ``PRELOAD``; the names that could not be imported (they start cold in the child)."""
    missing = []
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception:  # an optional stage library absent here, or broken: the child reports it
            missing.append(name)
    return missing


def fresh_process_state(env: dict[str, str]) -> None:
    """What a fresh interpreter would not share with its siblings: the OS-seeded random states,
    and the OpenMP thread count its environment asks for (torch read it when the zygote imported it)."""
    import random

    random.seed()
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()
    if "torch" in sys.modules and env.get("OMP_NUM_THREADS", "").isdigit():
        sys.modules["torch"].set_num_threads(int(env["OMP_NUM_THREADS"]))


def _exit_after_handlers(rc: int) -> None:
    """Flush, run the exit handlers as an interpreter's exit would, and leave with ``rc``."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    atexit._run_exitfuncs()  # noqa: SLF001 (a handler may leave earlier: launch.task.leave_before_teardown)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(rc)


def _task_child(req: dict) -> None:
    """The forked task process (never returns)."""
    from launch.stages import exit_status

    rc = 1
    try:
        if req.get("log"):
            fd = os.open(req["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.close(fd)
        os.chdir(req["cwd"])
        os.environ.clear()
        os.environ.update({**req["env"], WARM_ENV: "1"})
        fresh_process_state(req["env"])
        sys.argv = ["launch.runtask", req["spec"]]
        from launch.runtask import main

        rc = main([req["spec"]])
    except SystemExit as exit_:
        rc = exit_status(exit_.code)
    except BaseException:  # noqa: BLE001 (a fresh process would print it and exit 1)
        traceback.print_exc()
    _exit_after_handlers(rc)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]


def _send(fd: int, message: dict) -> None:
    _write_all(fd, (json.dumps(message) + "\n").encode())


def serve(req_fd: int, resp_fd: int) -> None:
    """The zygote's loop: fork a child per request line, report ``{id, pid}`` then ``{id, rc}``;
    return once the requests are closed and every child is reaped."""
    missing = preload()
    if missing:
        print(f"[warm] not preloaded (imported by the task itself): {', '.join(missing)}", file=sys.stderr, flush=True)
    buf, running, closed = b"", {}, False
    while not (closed and not running):
        if not closed and select.select([req_fd], [], [], 0.05 if running else 1.0)[0]:
            chunk = os.read(req_fd, 65536)
            closed = not chunk
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                req = json.loads(line)
                pid = os.fork()
                if pid == 0:
                    os.close(req_fd)
                    os.close(resp_fd)
                    _task_child(req)
                running[pid] = req["id"]
                _send(resp_fd, {"id": req["id"], "pid": pid})
        elif closed:
            time.sleep(0.05)
        while running:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            rid = running.pop(pid, None)
            if rid is not None:
                _send(resp_fd, {"id": rid, "rc": os.waitstatus_to_exitcode(status)})


class WarmStarter:
    """The executor's side: one zygote for a local run; ``run`` is thread-safe (one call per task)."""

    def __init__(self, env: dict[str, str], python: str = sys.executable):
        self.env, self.python = dict(env), python
        self._lock = threading.Lock()
        self._next = 0
        self._results: dict[int, dict] = {}
        self._arrived = threading.Condition(self._lock)
        self._dead = False
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "WarmStarter":
        return self

    def _start(self) -> None:
        """The zygote, at the first warm task (a run of torchrun tasks only never starts one)."""
        req_r, self._req = os.pipe()
        resp_r, resp_w = os.pipe()
        self.proc = subprocess.Popen([self.python, "-m", "launch.warm", str(req_r), str(resp_w)],
                                     pass_fds=(req_r, resp_w), env=self.env)
        os.close(req_r)
        os.close(resp_w)
        self._reader = threading.Thread(target=self._read, args=(resp_r,), daemon=True)
        self._reader.start()

    def __exit__(self, *exc) -> None:
        if self.proc is None:
            return
        os.close(self._req)  # the zygote leaves once its children are reaped
        self.proc.wait()
        self._reader.join()

    def _read(self, fd: int) -> None:
        with os.fdopen(fd, "r") as resp:
            for line in resp:
                message = json.loads(line)
                with self._arrived:
                    self._results.setdefault(message["id"], {}).update(message)
                    self._arrived.notify_all()
        with self._arrived:
            self._dead = True
            self._arrived.notify_all()

    def run(self, spec: Path, env: dict[str, str], log: Path | None = None) -> int:
        """The task's exit status, as ``python -m launch.runtask spec`` would return it. With ``log``,
        the task writes there (appending) and its lines are echoed here as they come."""
        offset = log.stat().st_size if log is not None and log.exists() else 0
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:  # one writer at a time: a request can be longer than the pipe's atomic write
            if self.proc is None:
                self._start()
            rid, self._next = self._next, self._next + 1
            request = {"id": rid, "spec": str(spec), "env": env, "cwd": os.getcwd(), "log": str(log) if log else None}
            _write_all(self._req, (json.dumps(request) + "\n").encode())
        while True:
            with self._arrived:
                self._arrived.wait_for(lambda: "rc" in self._results.get(rid, {}) or self._dead, timeout=0.5)
                result = self._results.get(rid, {})
            if log is not None:
                offset = _echo(log, offset)
            if "rc" in result:
                return int(result["rc"])
            if self._dead:
                print(f"[warm] the warm-start process exited (status {self.proc.poll()}) before task {spec} "
                      "finished; see its output above", file=sys.stderr, flush=True)
                return 1


def _echo(log: Path, offset: int) -> int:
    """Write what the task added to ``log`` since ``offset`` to this process's stdout."""
    if not log.exists():  # the child has not opened it yet
        return offset
    with open(log, "rb") as fh:
        fh.seek(offset)
        chunk = fh.read()
    if chunk:
        sys.stdout.write(chunk.decode("utf-8", "replace"))
        sys.stdout.flush()
    return offset + len(chunk)


class _Forked:
    """A forked step as the signal forwarder sees a subprocess."""

    def __init__(self, pid: int):
        self.pid = pid

    def send_signal(self, signum: int) -> None:
        os.kill(self.pid, signum)


def run_step_forked(stage: str, argv: list[str], module: str, seen: list[int]) -> tuple[int, str]:
    """``launch.task.run_step_process`` for a warm task: the step in a forked child of this process
    (its libraries already imported) instead of a fresh interpreter; stderr passes through and its
    tail is kept; preemption signals are forwarded."""
    from tracecause.preemption import PREEMPTION_SIGNALS, handling_preemption, run_preemptible

    from launch.stages import exit_status, run_stage_main
    from launch.task import _forwarder

    read_fd, write_fd = os.pipe()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        os.dup2(write_fd, 2)
        os.close(write_fd)
        rc = 1
        try:
            rc = run_preemptible(lambda: run_stage_main(stage, argv, module), stage)
        except SystemExit as exit_:
            rc = exit_status(exit_.code)
        except BaseException:  # noqa: BLE001
            traceback.print_exc()
        _exit_after_handlers(rc)
    os.close(write_fd)
    tail: list[str] = []
    with handling_preemption(_forwarder(_Forked(pid), seen)), \
            os.fdopen(read_fd, "r", errors="replace") as err:
        for line in err:
            sys.stderr.write(line)
            tail.append(line)
            del tail[:-60]
        rc = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    sys.stderr.flush()
    if seen and rc in [-s for s in PREEMPTION_SIGNALS]:
        from tracecause.contracts import EXIT_REQUEUE

        return EXIT_REQUEUE, ""
    return rc, "".join(tail)[-4000:] if rc else ""


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]))
