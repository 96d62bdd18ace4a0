"""Analysis faults on one real SLURM analysis task: SIGUSR2 then SIGTERM preemption mid-computation.

The analysis reads a simulated sweep (evalsuite.analysis.simulate, 2 sizes x 3 types x 3 paradigms
x 2 seeds) and bootstraps enough resamples to compute for several seconds; each attempt is
signalled once its step has spent ANALYSIS_CPU_S of CPU (well past reading its inputs) and must be
requeued. The analysis keeps nothing between attempts by design — its output appears whole or not
at all — so "completed work lost" is the finished analysis differing from an uninterrupted run of
the same command: effects (estimates, CIs, p-values) compared value for value.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from faults import inject
from faults.jobs import StageJob, preempt_when
from faults.scoreboard import Outcome, Scoreboard

OVERRIDES = ["resamples=50000", "wandb=false", "figures=false", "progress=false"]
ANALYSIS_CPU_S = 4.0  # of the ~12 s the bootstrap takes: mid-computation, inputs long read
COMPARED = ["kind", "benchmark", "metric", "mode", "estimate", "ci_lo", "ci_hi", "p", "p_adj"]


def _effects(sweep: Path):
    import pandas as pd

    df = pd.read_parquet(sweep / "analysis" / "effects.parquet")
    return df[[c for c in COMPARED if c in df.columns]].reset_index(drop=True)


def run(work: Path, board: Scoreboard) -> None:
    from launch import stages
    from evalsuite.analysis.simulate import SimSpec, simulate_sweep
    from tracecause.io import is_complete

    work.mkdir(parents=True, exist_ok=True)
    sweep, reference = work / "sweep", work / "reference"
    simulate_sweep(sweep, SimSpec.small(), seed=0)
    shutil.copytree(sweep, reference)
    argv = stages.analysis_argv(sweep, OVERRIDES)
    job = StageJob(sweep, "analysis", "analysis", [argv], sweep / "analysis")
    job.submit(max_crash_retries=0)
    try:
        # each attempt's step is a fresh process: its CPU time counts from 0 after a requeue
        rows = preempt_when(job, lambda: inject.step_cpu_seconds(job.job_id) >= ANALYSIS_CPU_S,
                            f"{ANALYSIS_CPU_S:.0f} s into its computation", ("USR2", "TERM"), "effects", board)
        state = job.wait_end()
    finally:
        job.cancel()
    ref = subprocess.run([sys.executable, "-m", "evalsuite", *stages.analysis_argv(reference, OVERRIDES)],
                         capture_output=True, text=True, timeout=600)
    if ref.returncode != 0:
        raise RuntimeError(f"the uninterrupted reference analysis failed: {ref.stderr[-2000:]}")
    done = is_complete(job.done_dir)
    want = _effects(reference)
    got = _effects(sweep) if done else want.iloc[0:0]
    differing = len(want) if len(got) != len(want) else int((~((got == want) | (got.isna() & want.isna()))).any(axis=1).sum())
    for row in rows:
        row.survived = row.survived and state.state == "COMPLETED" and differing == 0
        row.lost = differing
        row.detail += (f"; analysis {state.state}; {len(got)} effects, {differing} differing from an "
                       f"uninterrupted run ({len(want)} effects)")
