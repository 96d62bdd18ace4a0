"""One writer per output folder (tracecause.lease), with real processes: a live holder makes a second
attempt refuse and name it; a dead holder's lease is taken over at once, a silent one on another host
after a whole ttl; of two takers only one wins; a taken-over holder fails its fencing check."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tracecause import lease as L

ROOT = Path(__file__).resolve().parents[1]

# A holder in its own process: takes the lease, says so, then checks its fence every 50 ms and
# reports (on stdout) when it lost the lease. argv: folder ttl host locks
HOLDER = textwrap.dedent("""
    import sys, time
    from tracecause import lease as L
    folder, ttl, host, locks = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4] == "1"
    ident = {**L.attempt_identity(), "job_id": "4242", "array_index": "3", "restart": 1}
    if host != "-":
        ident.update(host=host, boot_id="other")
    held = L.Lease(folder, ttl_s=ttl, identity=ident, locks=locks).acquire()
    print("held", held.token, flush=True)
    while True:
        try:
            held.check("rotating checkpoints")
        except L.LeaseLost as err:
            print("lost:", err, flush=True)
            sys.exit(0)
        time.sleep(0.05)
""")


def start_holder(folder: Path, ttl: float = 1.0, host: str = "-", locks: bool = True) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder), str(ttl), host, "1" if locks else "0"],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.startswith("held"), line
    return proc


@pytest.fixture
def folder(tmp_path) -> Path:
    return tmp_path / "train" / "arm"


def test_a_live_holder_makes_a_second_attempt_refuse_naming_it(folder):
    holder = start_holder(folder, ttl=30)
    try:
        with pytest.raises(L.LeaseHeld) as err:
            L.Lease(folder, ttl_s=30).acquire()
        text = str(err.value)
        assert f"pid {holder.pid}" in text and "job 4242" in text and "array index 3" in text and "restart 1" in text
        assert L.live_holder(folder)["pid"] == holder.pid
        assert not folder.exists()  # the refused attempt wrote nothing into the folder
    finally:
        holder.kill()
        holder.wait()


def test_a_killed_holder_is_taken_over_at_once_and_its_token_grows(folder):
    holder = start_holder(folder, ttl=600)  # its heartbeat would keep it "fresh" for 10 minutes
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert L.live_holder(folder) is None
    t0 = time.monotonic()
    with L.Lease(folder, ttl_s=600) as taken:
        assert taken.token == 2 and time.monotonic() - t0 < 5
        taken.check("exporting")
    again = L.Lease(folder).acquire()  # after a release: taken at once, the token still grows
    assert again.token == 3
    again.release()


def test_a_silent_holder_on_another_host_is_taken_over_after_a_ttl_and_is_fenced_out(folder):
    """A node declared dead while its process lives on: frozen, it stops its heartbeat; the taker
    waits a whole ttl on its own clock, takes token 2, and the old holder, woken, fails its fence."""
    zombie = start_holder(folder, ttl=1.0, host="node-a", locks=False)
    try:
        zombie.send_signal(signal.SIGSTOP)
        t0 = time.monotonic()
        taken = L.Lease(folder, ttl_s=1.0).acquire()
        assert taken.token == 2 and time.monotonic() - t0 >= 1.0
        zombie.send_signal(signal.SIGCONT)
        out, _ = zombie.communicate(timeout=30)
        assert "lost: rotating checkpoints" in out and f"pid {os.getpid()}" in out and "token 2" in out, out
        taken.check("publishing the export")  # the taker still holds it
        taken.release()
    finally:
        if zombie.poll() is None:
            zombie.kill()
            zombie.wait()


def test_a_live_holder_on_another_host_is_refused_by_its_heartbeat(folder):
    holder = start_holder(folder, ttl=1.0, host="node-a", locks=False)
    try:
        with pytest.raises(L.LeaseHeld, match="heartbeat is advancing"):
            L.Lease(folder, ttl_s=1.0, locks=False).acquire()
    finally:
        holder.kill()
        holder.wait()


TAKER = textwrap.dedent("""
    import sys, time
    from tracecause import lease as L
    try:
        held = L.Lease(sys.argv[1], ttl_s=1.0, locks=False).acquire()
    except L.LeaseHeld:
        print("refused", flush=True)
        sys.exit(0)
    print("won", held.token, flush=True)
    time.sleep(3)
    held.release()
""")


def test_of_two_takers_of_a_stale_lease_only_one_wins(folder):
    sdir = L.state_dir(folder)
    sdir.mkdir(parents=True)
    stale = {"job_id": "7", "host": "node-gone", "boot_id": "x", "pid": 1, "heartbeat": 9, "heartbeat_at": 0,
             "ttl_s": 1.0, "released": False}
    (sdir / "token-000000000005.json").write_text(json.dumps(stale))
    takers = [subprocess.Popen([sys.executable, "-c", TAKER, str(folder)], cwd=ROOT, stdout=subprocess.PIPE,
                               text=True) for _ in range(2)]
    outs = sorted(p.communicate(timeout=60)[0].strip() for p in takers)
    assert outs == ["refused", "won 6"], outs


def test_a_lease_is_kept_beside_the_folder_not_inside_it(folder):
    with L.Lease(folder) as held:
        assert held.dir == folder.parent / ".arm.lease" and not folder.exists()
