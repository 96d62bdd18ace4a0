"""Task records are read-modify-written under a lock: concurrent updates from real processes (a
requeued attempt racing a zombie, several ranks) never lose a counter or an event."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from launch import records

ROOT = Path(__file__).resolve().parents[1]
WRITER = textwrap.dedent("""
    import sys
    from launch import records
    path, who = sys.argv[1], sys.argv[2]
    for i in range(40):
        records.add_event(path, {"event": "crash", "who": who, "i": i}, increment={"crashes": 1, "attempts": 1},
                          state="crashed")
""")


def test_concurrent_counter_updates_from_processes_are_never_lost(tmp_path):
    path = records.record_path(tmp_path / "sweep", "train", "arm")
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(n)], cwd=ROOT) for n in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    rec = records.read_record(path)
    assert rec["crashes"] == 160 and rec["attempts"] == 160 and len(rec["history"]) == 50
    assert records.all_records(tmp_path / "sweep") == {"train/arm": rec}  # the lock file is not a record


def test_derive_sees_the_counters_after_they_moved(tmp_path):
    path = records.record_path(tmp_path / "sweep", "train", "arm")
    records.update_record(path, crashes=2)
    rec = records.add_event(path, {"event": "crash"}, increment={"crashes": 1},
                            derive=lambda r: {"state": "failed" if r["crashes"] > 2 else "crashed"})
    assert rec["crashes"] == 3 and rec["state"] == "failed"
