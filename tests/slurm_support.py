"""Test access to the real local SLURM cluster (slurm/local-cluster).

``ensure_cluster()`` returns the cluster's env (starting it when this process may), and puts it in
``os.environ``: submitit runs ``sbatch``/``sacct`` through subprocesses that inherit it.
Tests must name the cluster explicitly (``submitit_slurm_executor``) and use one submitit folder
each (``unique_submitit_folder``): job ids from a wiped cluster must never hit cached results.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
import warnings
from pathlib import Path
from typing import Any, Mapping

from slurm.cluster import LOCAL_CLUSTER, local_cluster_env

_START_TIMEOUT_S = 240  # a fresh machine may first apt-get install the packages


def _parse_exports(text: str) -> dict[str, str]:
    env = {}
    for line in text.splitlines():
        if line.startswith("export ") and "=" in line:
            key, value = line[len("export "):].split("=", 1)
            env[key] = value
    return env


def ensure_cluster() -> dict[str, str] | None:
    """Env dict of a running local cluster; starts it if needed and possible, else None (reason warned)."""
    env = local_cluster_env()
    if env is None:
        if shutil.which("sbatch") is None and os.geteuid() != 0:
            warnings.warn("no SLURM client and not root: cannot install or start the local cluster")
            return None
        try:
            proc = subprocess.run([str(LOCAL_CLUSTER), "start", "--print-env"], capture_output=True,
                                  text=True, timeout=_START_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as e:
            warnings.warn(f"slurm/local-cluster start failed: {e}")
            return None
        if proc.returncode != 0:
            warnings.warn(f"slurm/local-cluster start failed:\n{proc.stderr[-3000:]}")
            sys.stderr.write(proc.stderr[-3000:])
            return None
        env = _parse_exports(proc.stdout)
    os.environ.update(env)
    return env


def unique_submitit_folder(base: Path, name: str = "submitit") -> Path:
    """A fresh folder under ``base`` for one test's submitit logs and pickles (never reused)."""
    folder = Path(base) / f"{name}-{uuid.uuid4().hex[:10]}"
    folder.mkdir(parents=True)
    return folder


def submitit_slurm_executor(folder: Path, env: Mapping[str, str], **params: Any):
    """``submitit.AutoExecutor(cluster="slurm")`` on the local cluster; ``params`` go to update_parameters.

    Generic keys (``timeout_min``, ``cpus_per_task``, ``nodes``, ...) and ``slurm_*`` keys are both
    accepted. The job's log folder is ``folder/%j``.
    """
    import submitit

    os.environ.update(env)  # submitit's sbatch/sacct subprocesses read SLURM_CONF from here
    executor = submitit.AutoExecutor(folder=Path(folder) / "%j", cluster="slurm")
    params.setdefault("timeout_min", 10)
    executor.update_parameters(**params)
    return executor
