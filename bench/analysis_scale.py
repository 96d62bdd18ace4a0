"""How long the analysis engine that `analyze` runs takes, and how that grows with prompts and arms.

    python bench/analysis_scale.py [--resamples 10000] [--quick]

Everything timed here is the code path of `python -m evalsuite analyze`: prompt-level means ->
load.build_benchmarks -> run.benchmark_effects (every pairwise, internalisation-free contrast of a
benchmark: seed-level t where arms have several seeds, the cluster bootstrap + sign flips and the
two-way bootstrap replicates for derived statistics), then the whole `compute_effects` on a
simulated sweep folder (file reading, families, specificity). Each line prints its workload as
counted from the data it ran on, and ratios against the first line of its block, in one run.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evalsuite.analysis.config import AnalysisConfig  # noqa: E402
from evalsuite.analysis.run import benchmark_effects  # noqa: E402
from evalsuite.analysis.simulate_seeds import ARMS, null_replications  # noqa: E402


def engine(sizes: int, seeds: int, n_clusters: int, k: int, resamples: int) -> tuple[str, float, float]:
    """(workload, seconds to build the benchmark, seconds for every effect of it)."""
    t = time.perf_counter()
    bench = null_replications(sizes, seeds=seeds, n_clusters=n_clusters, paraphrases=3, k=k, seed=0)
    t_build = time.perf_counter() - t
    cfg = AnalysisConfig(resamples=resamples, progress=False, wandb=False, figures=False)
    t = time.perf_counter()
    rows = benchmark_effects(bench, {}, cfg, [])
    t_fx = time.perf_counter() - t
    runs = sum(len(v) for v in bench.series.values())
    prompts = len(bench.prompt_ids)
    work = (f"{sizes:>3} sizes x {len(ARMS)} arms ({seeds} seeds each trained arm) = {runs:>4} evals, "
            f"{prompts:>5} prompts ({bench.n_clusters} clusters), {runs * prompts * k:>9,} scored samples, "
            f"{len(rows):>4} effects")
    return work, t_build, t_fx


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resamples", type=int, default=10_000)
    ap.add_argument("--quick", action="store_true", help="smaller grid (CI smoke run)")
    args = ap.parse_args(argv)
    R = args.resamples
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (timings scale with it); {R} resamples")
    print("\n== engine of `analyze` (build_benchmarks + benchmark_effects), one benchmark, one mode: growth with prompts")
    first = None
    for clusters in ((100, 300) if args.quick else (100, 300, 1000, 3000)):
        work, tb, tf = engine(2, 3, clusters, 4, R)
        first = first or tb + tf
        print(f"{work}: build {tb:6.2f} s, effects {tf:6.2f} s  ({(tb + tf) / first:5.1f}x the first line)")
    print("\n== same engine: growth with arms (model sizes), 300 prompts")
    first = None
    for sizes in ((2, 8) if args.quick else (2, 8, 32)):
        work, tb, tf = engine(sizes, 3, 100, 4, R)
        first = first or tb + tf
        print(f"{work}: build {tb:6.2f} s, effects {tf:6.2f} s  ({(tb + tf) / first:5.1f}x the first line)")

    print("\n== whole compute_effects (what `analyze` runs before writing) on a simulated sweep folder")
    from evalsuite.analysis.run import compute_effects
    from evalsuite.analysis.simulate import SimSpec, sim_arms, simulate_sweep

    with tempfile.TemporaryDirectory() as tmp:
        spec = SimSpec.small() if args.quick else SimSpec(n_clusters=40)
        t = time.perf_counter()
        simulate_sweep(Path(tmp) / "sweep", spec)
        t_sim = time.perf_counter() - t
        t = time.perf_counter()
        df, missing, _ = compute_effects(Path(tmp) / "sweep", AnalysisConfig(resamples=R, progress=False, wandb=False))
        t_an = time.perf_counter() - t
    n_arms = len(sim_arms(spec))
    prompts = spec.n_clusters * spec.paraphrases
    print(f"{len(spec.models)} sizes, {n_arms} arms x {len(spec.modes)} modes = {len(missing['used_evals'])} evals; "
          f"{len(spec.benchmarks)} benchmarks x {prompts} prompts x K={spec.k_samples} x 2 metrics")
    print(f"simulate {t_sim:.1f} s; compute {len(df)} effects: {t_an:.1f} s ({t_an / max(1, len(df)) * 1000:.1f} ms "
          f"per effect)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
