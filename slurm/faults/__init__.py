"""The fault-injection suite: ``python -m slurm.faults`` (``bash dev.sh faults``).

Injects each fault into real runs on the local SLURM cluster and prints a scoreboard; the last
line reads ``faults survived: N of M; completed work lost: K``. Exit status 0 iff every fault was
survived (or refused with a clear error) and nothing completed was lost.
"""
