"""Dataset-generation faults on real SLURM jobs: endpoint faults, preemption, a malformed shard line.

One datagen shard task talks to ``FaultyEndpoint`` on 127.0.0.1: the first attempt of each
request gets a 500, no reply, or a malformed 200, and the task is preempted twice (SIGUSR2, then
SIGTERM) while requests are in flight. "Completed work lost" here: requests the endpoint had
already answered that a resumed attempt asked for again. Then one line of the finished shard is
damaged: the merge must refuse it, naming file and line, and write nothing; restored, it completes.
A merge is done ~0.2 s after its task starts, too soon to signal it by timing: the restored shard is
first served as a stalled file (inject.stalled_input), and the merge, held reading it, is preempted
twice (SIGUSR2, SIGTERM) there before it may finish.

Before that, the finished shard loses its tail (whole lines: every line still parses), then has one
byte flipped inside a trace: each time the merge must refuse, naming the file and the sealed vs found
sha256, and set the shard aside; the shard task, run again, must write the same records, and the
dataset merged at the end must equal, value for value, one merged from the undamaged shard
(seal_faults.py).
"""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from tracecause.io import is_complete

from faults import inject, seal_faults
from faults.endpoint import FAULTS, FaultyEndpoint
from faults.jobs import TIMEOUT_S, StageJob, attribute_reasked, preempt_mid_requests, preempt_while_held
from faults.scoreboard import Outcome, Scoreboard

PAIRS = 12          # x 3 types = 36 requests, ~0.4 s each with 2 in flight: long enough to preempt twice
DATASET = "faults"
ROOT = Path(__file__).resolve().parents[1]


def _config(work: Path, endpoint: FaultyEndpoint) -> Path:
    src = work / "pairs.jsonl"
    lines = (ROOT / "datagen" / "demo" / "pairs.jsonl").read_text().splitlines()[:PAIRS]
    src.write_text("".join(line + "\n" for line in lines))
    cfg = {"source": {"path": str(src)},
           "generator": {"backend": "openai", "model": "faulty", "batch_size": 4,
                         "sampling": {"temperature": 1.0, "max_tokens": 32, "n": 1, "seed": 3},
                         "openai": {"base_url": endpoint.base_url, "concurrency": 2, "timeout": 1.0,
                                    "max_retries": 4, "backoff": 0.05, "backoff_max": 0.2}},
           "filters": {"reject_truncated": False, "min_tokens": 1, "max_tokens": 200, "tokenizer": "whitespace"},
           "output": {"root": str(work / "sweep"), "dataset_id": DATASET}, "shards": 1}
    path = work / "datagen.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def run(work: Path, board: Scoreboard) -> None:
    from launch import stages
    from tracecause.contracts import SweepLayout

    work.mkdir(parents=True, exist_ok=True)
    sweep = work / "sweep"
    with FaultyEndpoint(FAULTS, delay_s=0.4, hang_s=2.0) as endpoint:
        cfg = _config(work, endpoint)
        layout = SweepLayout(sweep)
        shard_dir = stages.datagen_shard_dir(layout, DATASET, 0, 1)
        shard = StageJob(sweep, "datagen", "shard-00000", [stages.datagen_shard_argv(cfg, [], 0, 1)], shard_dir)
        shard.submit(max_crash_retries=1)
        try:
            usr2 = preempt_mid_requests(shard, endpoint, "USR2", board)
            term = preempt_mid_requests(shard, endpoint, "TERM", board)
            state = shard.wait_end()
        finally:
            shard.cancel()
        attribute_reasked([usr2, term], endpoint)
        rows = [json.loads(line) for line in (shard_dir / "records.jsonl").read_text().splitlines()] \
            if is_complete(shard_dir) else []
        want = PAIRS * 3
        for row in (usr2, term):
            row.survived = row.survived and state.state == "COMPLETED" and len(rows) == want and row.lost == 0
            row.detail += f"; shard {state.state} with {len(rows)} of {want} records"
        for fault in FAULTS:
            n = endpoint.injected[fault]
            board.add(Outcome(f"generator endpoint: {'timeouts' if fault == 'timeout' else fault + ' replies'}",
                              "datagen", n > 0 and state.state == "COMPLETED" and len(rows) == want,
                              want - len(rows) if n else 0, "records",
                              f"{n} injected, retried; shard {state.state} with {len(rows)} of {want} records"))
        endpoint.delay_s = 0.0  # the damaged shard is generated again: no need to be slow any more
        reference = seal_faults.reference_dataset(work, cfg, layout.data(DATASET))
        sealed_rows = seal_faults.damaged_shard(sweep, cfg, shard_dir, layout.data(DATASET), board)
    malformed_shard_then_preempted_merge(sweep, cfg, shard_dir, layout.data(DATASET), board)
    seal_faults.compare_dataset(sealed_rows, layout.data(DATASET), reference)


def malformed_shard_then_preempted_merge(sweep: Path, cfg: Path, shard_dir: Path, data_dir: Path,
                                         board: Scoreboard) -> None:
    from launch import stages

    records = shard_dir / "records.jsonl"
    good = records.read_bytes()
    lines = good.decode().splitlines(keepends=True)
    lines[2] = '{"id": "broken", "type": "ev\n'  # a torn write in the middle of the file
    records.write_text("".join(lines))
    argv = stages.datagen_merge_argv(cfg, [], 1)
    merge = StageJob(sweep, "merge", "merge", [argv], data_dir)
    before = {p.name: p.stat().st_mtime_ns for p in data_dir.iterdir()}
    merge.submit(max_crash_retries=0)
    state = merge.wait_end()
    error = merge.error_text()
    named = f"{records} line 3 is malformed" in error
    written = sorted(p.name for p in data_dir.iterdir() if before.get(p.name) != p.stat().st_mtime_ns)
    records.write_bytes(good)  # restored: the merge now runs whole, once preempted twice on the way
    merge = StageJob(sweep, "merge", "merge-again", [argv], data_dir)
    preempted = preempt_while_held(merge, records, ("USR2", "TERM"), "records", board)
    again = merge.wait_end()
    rows = len((data_dir / "data.jsonl").read_text().splitlines()) if is_complete(data_dir) else 0
    for row in preempted:
        row.survived = row.survived and again.state == "COMPLETED" and rows == PAIRS
        row.lost = PAIRS - rows
        row.detail += f"; then merge {again.state} with {rows} of {PAIRS} pairs"
    board.add(Outcome("malformed line in a dataset shard", "merge",
                      state.state == "FAILED" and named and not written and again.state == "COMPLETED" and rows == PAIRS,
                      PAIRS - rows, "records",
                      f"merge {state.state}; error names file and line: {named}; written besides the shards: "
                      f"{written or 'nothing'}; with the shard restored: merge {again.state}, {rows} of {PAIRS} pairs"))
