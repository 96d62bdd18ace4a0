"""How long the vectorised statistics take, and how that grows with samples and arms.

    python bench/analysis_scale.py [--resamples 10000] [--quick]

Prints side by side, in one run: 10,000 cluster-bootstrap resamples + sign flips over 100,000
scored samples (as K samples per prompt, prompts in paraphrase clusters), the growth with the
number of samples at fixed K, and with the number of arms (statistics sharing one set of
resamples), plus the full `analyze` pipeline on a simulated sweep.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evalsuite.analysis.resample import paired_cluster_test  # noqa: E402


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def one(n_samples: int, k: int, per_cluster: int, n_stats: int, resamples: int) -> float:
    """Prompt means of n_samples (K per prompt) for n_stats paired contrasts, then CI + p for each."""
    rng = np.random.default_rng(0)
    n_prompts = n_samples // k
    clusters = np.arange(n_prompts) // per_cluster
    samples = rng.binomial(1, 0.3, (n_prompts, k, n_stats)).astype(float)

    def run():
        diffs = samples.mean(1) - 0.3  # per-prompt means first, as the analysis does
        paired_cluster_test(diffs, clusters, n_resamples=resamples, seed=1)

    return timed(run)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resamples", type=int, default=10_000)
    ap.add_argument("--quick", action="store_true", help="smaller grid (CI smoke run)")
    args = ap.parse_args(argv)
    R = args.resamples
    import os

    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (timings scale with it)")
    print(f"== {R} resamples (bootstrap + sign flips), 1 contrast")
    base = None
    grid = (10_000, 30_000, 100_000) if args.quick else (10_000, 30_000, 100_000, 300_000)
    for n in grid:
        for k, per in ((10, 3), (1, 1)):
            s = one(n, k, per, 1, R)
            if n == 10_000 and k == 10:
                base = s
            print(f"samples {n:>8,}  K={k:<2} prompts {n // k:>8,}  clusters {n // k // per:>8,}: {s:7.2f} s"
                  f"  ({s / base:5.1f}x the 10k-sample case)")
    print(f"\n== growth with arms: 100,000 samples (K=10, 3 paraphrases per cluster), {R} resamples")
    first = None
    for n_stats in ((1, 8, 32) if args.quick else (1, 8, 32, 128)):
        s = one(100_000, 10, 3, n_stats, R)
        first = first or s
        print(f"contrasts {n_stats:>4}: {s:7.2f} s  ({s / first:5.2f}x one contrast; {s / n_stats:6.3f} s per contrast)")
    print("\n== full analyze on a simulated sweep (3 sizes x 11 conditions x 2 seeds x 2 modes x 3 benchmarks)")
    from evalsuite.analysis.config import AnalysisConfig
    from evalsuite.analysis.run import compute_effects
    from evalsuite.analysis.simulate import SimSpec, simulate_sweep

    with tempfile.TemporaryDirectory() as tmp:
        spec = SimSpec(n_clusters=40) if not args.quick else SimSpec.small()
        t = time.perf_counter()
        simulate_sweep(Path(tmp) / "sweep", spec)
        t_sim = time.perf_counter() - t
        t = time.perf_counter()
        df, _, _ = compute_effects(Path(tmp) / "sweep", AnalysisConfig(resamples=R, progress=False, wandb=False))
        t_an = time.perf_counter() - t
    print(f"simulate {t_sim:.1f} s; compute {len(df)} effects with {R} resamples: {t_an:.1f} s "
          f"({t_an / max(1, len(df)) * 1000:.1f} ms per effect)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
