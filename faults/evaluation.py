"""Eval faults on one real SLURM eval task: judge endpoint faults, preemption, a full disk.

The tiny Qwen3 (base arm) generates with the transformers backend (no vLLM engine start) and is
judged by ``FaultyEndpoint``: the first attempt of each judge request gets a 500, no reply, or a
malformed 200. While judge requests are in flight the task is preempted (SIGUSR2, then SIGTERM),
then the filesystem holding the eval outputs and the request journal fills up. Each time it must
come back and finish; "completed work lost" is judge requests the endpoint answered twice, and
for the endpoint faults, judge verdicts left unparsed. Then the finished samples.jsonl loses its tail
and the task's stage commands run again: they must name the file (sealed vs found sha256), redo it
from the caches and end with every output equal, value for value, to what it was (seal_faults.py).
"""
from __future__ import annotations

from pathlib import Path

from faults import inject, seal_faults
from faults.endpoint import FAULTS, FaultyEndpoint
from faults.jobs import TIMEOUT_S, StageJob, attribute_reasked, preempt_mid_requests
from faults.scoreboard import Outcome, Scoreboard

ARM = "tiny-qwen3.none.base.s0"
SAMPLES = 10  # x 3 prompts x 2 rubrics = 60 judge requests, ~0.4 s each
CONCURRENCY = 2
ROOT = Path(__file__).resolve().parents[1]


def _battery(work: Path) -> Path:
    source = ROOT / "configs/benchmarks/fixtures/emergent-misalignment/evaluation/first_plot_questions.yaml"
    path = work / "battery.yaml"
    path.write_text(f"""name: faults
seed: 0
benchmarks:
  - name: em_free_form
    loader: em_questions
    axis: evil
    primary: {{metric: misaligned_joint, higher_is: worse}}
    source: {{path: {source}}}
    samples: {SAMPLES}
    sampling: {{think: {{max_tokens: 16}}, no_think: {{max_tokens: 8}}}}
    judges:
      - {{name: em, spans: [answer]}}
""")
    return path


def _unparsed(out: Path) -> tuple[int, int]:
    """(unparsed judge verdicts, judged rows) in the finished shard's scores."""
    import pandas as pd

    scores = pd.read_parquet(out / "scores.parquet")
    judged = scores[scores["metric"].isin(["aligned_score", "coherent_score"])]
    return int((~judged["parsed"].astype(bool)).sum()), len(judged)


def disk_full(job: StageJob, fs: Path, endpoint: FaultyEndpoint, board: Scoreboard) -> Outcome:
    before = endpoint.total_delivered()
    inject.wait_for(lambda: endpoint.total_delivered() >= before + 3 and job.running(), TIMEOUT_S,
                    "judge requests in flight before the disk fills")
    crashes, reasked_before = job.rec().get("crashes", 0), endpoint.duplicates()
    filler = inject.fill(fs, leave_bytes=0)
    try:
        job.wait_crash(crashes)
    finally:
        filler.unlink()
    clear = "No space left on device" in job.error_text()
    return board.add(Outcome("disk full while writing an eval shard", "eval", clear, reasked_before, "requests",
                             f"the error names ENOSPC: {clear}"))


def run(work: Path, board: Scoreboard) -> None:
    from launch import stages
    from tracecause.io import is_complete
    from tracecause.tiny import build_tiny_model

    work.mkdir(parents=True, exist_ok=True)
    model = build_tiny_model(work.parent / "tiny-qwen3")
    sweep = work / "sweep"
    battery = _battery(work)
    with inject.small_filesystem(sweep / "eval", size_mb=64) as fs, \
            FaultyEndpoint(FAULTS, delay_s=0.4, hang_s=2.0, reply="73") as endpoint:
        over = ["engine.backend=transformers", "judge.backend=openai", f"judge.base_url={endpoint.base_url}",
                "judge.model=faulty", "judge.timeout_s=1", "judge.retries=4", "judge.backoff_s=0.05",
                "judge.backoff_max_s=0.2", f"judge.max_concurrency={CONCURRENCY}", f"cache_dir={fs / '.cache'}"]
        argvs = stages.eval_argvs(sweep, ARM, str(model), ["think"], str(battery), "", 0, 1, over)
        out = fs / ARM / "think"
        job = StageJob(sweep, "eval", f"{ARM}.think.0", argvs, out, arm=ARM)
        job.submit(max_crash_retries=2, mem_gb=4)
        try:
            rows = [preempt_mid_requests(job, endpoint, "USR2", board),
                    preempt_mid_requests(job, endpoint, "TERM", board),
                    disk_full(job, fs, endpoint, board)]
            state = job.wait_end()
        finally:
            job.cancel()
        attribute_reasked(rows, endpoint)
        # The answers in flight when the disk filled (at most one per connection) arrived with nowhere
        # to go: re-asking those is the fault's own cost. Anything beyond them was work thrown away.
        reasked = rows[2].lost
        rows[2].lost = max(0, reasked - CONCURRENCY)
        rows[2].detail += f"; {reasked} answers re-asked, up to {CONCURRENCY} were in flight when the disk filled"
        unparsed, judged = _unparsed(out) if is_complete(out) else (0, 0)
        want = 3 * SAMPLES * 2
        for row in rows:
            row.survived = row.survived and state.state == "COMPLETED" and judged == want
            row.detail += f"; eval {state.state} with {judged} of {want} verdicts"
        for fault in FAULTS:
            n = endpoint.injected[fault]
            board.add(Outcome(f"judge endpoint: {'timeouts' if fault == 'timeout' else fault + ' replies'}", "eval",
                              n > 0 and state.state == "COMPLETED" and judged == want and unparsed == 0,
                              unparsed, "verdicts",
                              f"{n} injected, retried; {judged - unparsed} of {want} verdicts parsed"))
        if is_complete(out):
            seal_faults.damaged_eval_output(argvs, out, endpoint, board)
        else:
            board.add(Outcome("finished eval output truncated", "eval", False, 0, "rows", "the eval never finished"))
