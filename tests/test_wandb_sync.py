"""``tracecause wandb-sync``: each fragment uploaded once, in start order, under its run id; a second call
uploads nothing; a grown sweep uploads only what is new. There is no W&B server here, so the upload
command is a stand-in that records its arguments: these tests check the ledger and the ordering, and
tests/test_tracking_wandb.py checks that the real wandb CLI accepts the command."""
from __future__ import annotations

import json
import shutil
import sys

import pytest

from tests.conftest import need_module

RECORDER = """import json, os, sys
with open(os.environ["SYNC_LOG"], "a") as fh:
    fh.write(json.dumps(sys.argv[1:]) + "\\n")
sys.exit(int(os.environ.get("SYNC_FAIL", "0")))
"""


def _eval_fragment(root, arm: str) -> str:
    from evalsuite import tracking

    summary = {"bench": {"rate": {"mean": 0.25, "ci_lo": 0.1, "ci_hi": 0.4, "n": 8}}}
    from tracecause import wandb_records

    rid = tracking.log_eval(summary, arm, "think", {"k": 1}, sweep_dir=root)
    wandb_records.wait_until_closed(root, rid)  # wandb's writer outlives finish()
    return rid


@pytest.fixture
def sweep(tmp_path, monkeypatch):
    need_module("wandb")
    root = tmp_path / "sweep"
    (root / "jobs").mkdir(parents=True)
    x = _eval_fragment(root, "m.evil.qta.s0")
    assert _eval_fragment(root, "m.evil.qta.s0") == x  # a requeued task: same id, second fragment
    y = _eval_fragment(root, "m.none.qa.s0")
    recorder = tmp_path / "wandb-recorder.py"
    recorder.write_text(RECORDER)
    log = tmp_path / "sync.log"
    monkeypatch.setenv("SYNC_LOG", str(log))
    return root, x, y, [sys.executable, str(recorder)], log


def _calls(log) -> list[list[str]]:
    return [json.loads(l) for l in log.read_text().splitlines()] if log.is_file() else []


def test_sync_uploads_each_fragment_once_in_start_order_and_is_idempotent(sweep, monkeypatch):
    from tracecause import wandb_records, wandb_sync

    root, x, y, cmd, log = sweep
    runs = {e["id"]: e for e in wandb_sync.sync(root, wandb_cmd=cmd)}
    calls = {c[c.index("--id") + 1]: c for c in _calls(log)}
    assert set(calls) == {x, y} and len(_calls(log)) == 2
    folders = calls[x][calls[x].index("--include-synced") + 1:]
    starts = [wandb_records.run_info(f)["start_time"] for f in folders]
    assert len(folders) == 2 and starts == sorted(starts)
    assert runs[x]["rows"] >= 2 and "uploaded 2 fragment(s)" in wandb_sync.report(list(runs.values()))

    again = wandb_sync.sync(root, wandb_cmd=cmd)
    assert len(_calls(log)) == 2, "a second sync uploads nothing"
    text = wandb_sync.report(again)
    assert text.count("up to date") == 2 and "0 fragment(s) uploaded" in text

    _eval_fragment(root, "m.evil.qta.s0")  # the task ran once more: a third fragment of x
    wandb_sync.sync(root, wandb_cmd=cmd)
    last = _calls(log)[2:]
    assert len(last) == 1 and last[0][last[0].index("--id") + 1] == x
    new = last[0][last[0].index("--include-synced") + 1:]
    assert len(new) == 1 and new[0] not in folders  # only the new fragment, to the same run id


def test_a_failed_upload_is_not_recorded_and_is_retried(sweep, monkeypatch):
    from tracecause import wandb_sync

    root, x, y, cmd, log = sweep
    monkeypatch.setenv("SYNC_FAIL", "1")
    with pytest.raises(RuntimeError, match="wandb sync of run .* failed .*re-run to retry"):
        wandb_sync.sync(root, wandb_cmd=cmd)
    assert not wandb_sync.read_ledger(root)
    monkeypatch.setenv("SYNC_FAIL", "0")
    wandb_sync.sync(root, wandb_cmd=cmd)
    ledger = wandb_sync.read_ledger(root)
    assert set(ledger) == {x, y} and len(ledger[x]["fragments"]) == 2
    assert all(not k.startswith("/") for k in ledger[x]["fragments"])  # relative: a moved sweep keeps its ledger


def test_a_fragment_killed_before_its_first_flush_sorts_by_its_start_not_first(sweep):
    """No run record (the process died first): its folder name still says when it started."""
    from tracecause import wandb_records

    root, x, _, _, _ = sweep
    files = wandb_records.find_run_files(root, x)
    late = files[-1].parent.with_name(f"offline-run-29990101_000000-{x}")
    late.mkdir()
    (late / files[-1].name).write_bytes(files[-1].read_bytes()[:7])  # the header only
    ordered = wandb_records.find_run_files(root, x)
    assert ordered[-1].parent == late and ordered[:-1] == files
    shutil.rmtree(late)


def test_wandb_sync_command_line_reports_per_run(sweep, capsys):
    from launch.cli import main

    root, x, y, _, _ = sweep
    assert main(["wandb-sync", str(root), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"{x} (eval eval.m.evil.qta.s0.think): would upload 2 fragment(s)" in out
    assert "2 run(s); 3 fragment(s) to upload" in out
    assert main(["wandb-sync", str(root.parent / "nope")]) == 2
