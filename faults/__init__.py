"""The fault-injection suite: ``python -m faults`` (``bash dev.sh faults``); see faults/README.md.

A test harness users run, not a SLURM helper: it drives the launcher (``launch.*``) and the stages
through real jobs on the local SLURM cluster, so it sits above ``launch`` (tests/test_house_layers.py).
It injects each fault and prints a scoreboard; the last line reads ``faults survived: N of M;
completed work lost: K``. Exit status 0 iff every fault was survived (or refused with a clear error)
and nothing completed was lost.
"""
