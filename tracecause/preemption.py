"""SIGTERM / SIGUSR2 as preemption for the stages that keep their progress in files
(datagen, merge, eval, analysis): stop now, exit ``EXIT_REQUEUE``, resume from what is on disk.

These stages need no save step: every finished request is already fsynced in a journal and every
output is written under a temporary name and renamed, so the handler raises ``Preempted`` at once
and the stack unwinds (temporary folders are removed on the way). The trainer is different — its
save is collective — and keeps its own flag (trainer/signals.py).
"""
from __future__ import annotations

import contextlib
import signal
import sys
import threading
from typing import Callable, Iterator

from tracecause.contracts import EXIT_REQUEUE

PREEMPTION_SIGNALS = (signal.SIGUSR2, signal.SIGTERM)


class Preempted(KeyboardInterrupt):
    """Raised in the main thread by a preemption signal. A BaseException: ``except Exception``
    blocks that turn errors into failures must not swallow a preemption. A KeyboardInterrupt in
    particular: asyncio's event loop logs and drops any other BaseException raised in a callback
    ("Exception in callback ..."), so a signal landing while a callback runs (the HTTP clients'
    socket writes) was swallowed and the task ran on to completion instead of requeueing (seen in
    the faults suite's datagen SIGTERM row); KeyboardInterrupt is the one it re-raises."""

    def __init__(self, signal_name: str):
        super().__init__(f"preempted by {signal_name}")
        self.signal_name = signal_name


@contextlib.contextmanager
def handling_preemption(handler: Callable[[int, object], None]) -> Iterator[None]:
    """``handler`` for SIGTERM/SIGUSR2 within the block, the previous handlers after it.
    No-op off the main thread (Python delivers signals to the main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in PREEMPTION_SIGNALS}
    try:
        yield
    finally:
        for sig, prev in previous.items():
            signal.signal(sig, prev)


@contextlib.contextmanager
def preemptible() -> Iterator[None]:
    """Within the block, the first SIGTERM/SIGUSR2 raises ``Preempted``; later ones are ignored
    while the stack unwinds."""
    fired = []

    def handler(signum, frame):
        if fired:
            return
        fired.append(signum)
        raise Preempted(signal.Signals(signum).name)

    with handling_preemption(handler):
        yield


def run_preemptible(fn: Callable[[], int], stage: str) -> int:
    """``fn()``'s status, or ``EXIT_REQUEUE`` when a preemption signal stopped it."""
    try:
        with preemptible():
            return fn()
    except Preempted as stop:
        print(f"[{stage}] {stop}: finished work is kept; exiting {EXIT_REQUEUE} for requeue",
              file=sys.stderr, flush=True)
        return EXIT_REQUEUE
