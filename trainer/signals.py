"""SIGUSR2/SIGTERM only raise a flag; the ranks agree on it at step boundaries.

A ZeRO-3 save is collective, so no rank may save alone from a signal handler. ``should_stop``
all-reduces the local flag (MAX): if any rank was signalled, every rank sees it at the same step,
they save together and the job exits with EXIT_REQUEUE.
"""
from __future__ import annotations

import logging
import signal

from . import distributed as dist

log = logging.getLogger("trainer")


class StopFlag:
    def __init__(self, signals=(signal.SIGUSR2, signal.SIGTERM)):
        self.received: str | None = None
        self._previous = {}
        for sig in signals:
            self._previous[sig] = signal.signal(sig, self._handler)

    def _handler(self, signum, frame):
        # async-signal context: only set state here, no I/O, no collectives
        self.received = signal.Signals(signum).name

    def should_stop(self, distributed: bool) -> bool:
        local = 1.0 if self.received else 0.0
        agreed = dist.all_reduce_max(local) if distributed else local
        return agreed > 0

    def restore(self) -> None:
        for sig, prev in self._previous.items():
            signal.signal(sig, prev)
