"""A task attempt whose output folder another live attempt holds (tracecause.lease) is refused by
launch's task wrapper: it names the holder, runs nothing, leaves the holder's record as it was
(no attempt, no crash counted, so the crash retry cap is never burnt) and is not requeued; once the
holder is gone, the next attempt runs and holds the lease while its steps run."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from launch import records
from launch.graph import Task
from launch.task import StageTask
from tracecause import lease

ROOT = Path(__file__).resolve().parents[1]
FAKE = "tests.test_launch_fake_stage"
HOLD = textwrap.dedent("""
    import sys, time
    from tracecause.lease import Lease
    held = Lease(sys.argv[1]).acquire()
    print("held", flush=True)
    time.sleep(120)
""")


def test_a_held_output_folder_is_refused_without_a_crash_then_runs_once_free(tmp_path):
    sweep, out = tmp_path / "sweep", tmp_path / "sweep" / "eval" / "arm" / "think"
    task = Task("eval", "arm.think.0", (("out=" + str(out), "steps=2", "sleep=0"),), str(out), arm="arm", module=FAKE)
    path = records.record_path(sweep, "eval", task.key)
    records.update_record(path, state="running", job_id="111_0", attempts=1)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RuntimeError, match=rf"(?s)refused \(status {lease.EXIT_LEASE_HELD}\).*pid {holder.pid}"):
            StageTask(task, str(sweep), scheduler="local", max_crash_retries=0)()
        rec = records.read_record(path)
        assert (rec["state"], rec["job_id"], rec["attempts"], rec.get("crashes")) == ("running", "111_0", 1, None)
        assert rec["lease_refusals"] == 1 and f"pid {holder.pid}" in rec["history"][-1]["error"]
        assert not out.exists()  # the step never ran
    finally:
        holder.kill()
        holder.wait()
    assert StageTask(task, str(sweep), scheduler="local", max_crash_retries=0)() == "done"
    rec = records.read_record(path)
    assert rec["state"] == "done" and rec["attempts"] == 2
    assert lease.current(out)["released"] and lease.current(out)["token"] == 2  # it held the lease meanwhile
