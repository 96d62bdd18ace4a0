"""The repo's ``slurm`` helpers (one sacct call for many jobs), importable from the console script too.

``slurm/`` sits next to ``launch/`` in the repository but is not an installed package: when
``tracecause`` runs from another folder, put the repository root on the path once.
"""
from __future__ import annotations

import sys
from pathlib import Path

try:
    from slurm.cluster import FINAL_STATES, SlurmError, sacct_states  # noqa: F401
except ModuleNotFoundError:
    sys.path.append(str(Path(__file__).resolve().parents[1]))
    from slurm.cluster import FINAL_STATES, SlurmError, sacct_states  # noqa: F401
