"""A finished training task leaves before interpreter teardown, so a native thread aborting there
cannot turn it into a failed SLURM task; any other process keeps its own exit."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from tests.conftest import ROOT

# Run as ``python -m probe_task``: a teardown that aborts the process (as gloo's threads did on one
# rank of a finished 2-rank task), then the task's success path, then output left unflushed.
PROBE = """
import atexit, os, sys
import launch.task as task
task.TASK_ENTRY_POINTS = ("probe_task",) if sys.argv[1] == "task" else ()
atexit.register(os.abort)
if sys.argv[2] == "done":
    task.leave_before_teardown()
sys.stdout.write("outputs written")
"""


def _run(tmp_path, role: str, outcome: str) -> subprocess.CompletedProcess:
    (tmp_path / "probe_task.py").write_text(PROBE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    return subprocess.run([sys.executable, "-m", "probe_task", role, outcome], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)


def test_a_finished_task_exits_0_with_its_output_flushed_though_teardown_would_abort(tmp_path):
    proc = _run(tmp_path, "task", "done")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "outputs written"


@pytest.mark.parametrize("role, outcome", [("task", "unfinished"), ("host", "done")])
def test_without_the_success_path_or_outside_a_task_process_teardown_runs(tmp_path, role, outcome):
    # the probe's abort is real: it kills the process unless a finished task's exit skips it
    assert _run(tmp_path, role, outcome).returncode == -signal.SIGABRT
