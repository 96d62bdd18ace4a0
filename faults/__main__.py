"""``python -m faults [--work DIR] [--only GROUP ...]``: run the fault groups, print the scoreboard."""
from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

from faults.scoreboard import Outcome, Scoreboard

# group -> module with run(work, board); each group shares its real runs between its faults
GROUPS = {"train": "faults.train", "data": "faults.data", "eval": "faults.evaluation",
          "analysis": "faults.analysis", "replies": "faults.replies"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m faults", description=__doc__)
    ap.add_argument("--work", type=Path, help="folder for the runs (default: a fresh temporary folder)")
    ap.add_argument("--only", nargs="*", choices=sorted(GROUPS), help="run only these groups")
    ns = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("faults: the suite mounts a small tmpfs (disk-full faults) and restarts a slurmd: run it as root",
              file=sys.stderr)
        return 2
    from slurm.cluster import LOCAL_CLUSTER, local_cluster_env

    if local_cluster_env() is None:
        subprocess.run([str(LOCAL_CLUSTER), "start"], timeout=300)
    env = local_cluster_env()
    if env is None:
        print("faults: the local SLURM cluster is not running and could not be started (slurm/local-cluster start)",
              file=sys.stderr)
        return 2
    os.environ.update(env)  # sbatch/sacct/scontrol subprocesses read SLURM_CONF
    work = ns.work or Path(tempfile.mkdtemp(prefix="tracecause-faults-"))
    work.mkdir(parents=True, exist_ok=True)
    board = Scoreboard()
    for group in ns.only or list(GROUPS):
        try:
            importlib.import_module(GROUPS[group]).run(work / group, board)
        except Exception:  # a harness failure is a fault not survived, never a silent gap in the table
            board.add(Outcome(f"{group} group aborted", group, False, 0, "", traceback.format_exc()[-1500:]))
    board.write(work / "scoreboard.json")
    print(board.table(), flush=True)
    return 0 if board.survived == len(board.rows) and board.lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
