"""Does the MDE `tracecause plan` prints have the power it claims? Side by side: the MDE printed
(launch.power at Holm's first step, alpha / N) and the detection rate of the analysis's own test at
that effect, simulated (goal: 75-85 % for 80 % power).

Generative model = launch.power's: per model size ("rep"), the base model and ``arms`` trained arms
(QA + types x paradigms), ``seeds`` training runs each; prompt mean of arm a, run s, prompt i of
cluster c is

    level_i + planted_a + u_as + w_ac + z_ai + e_asi     u ~ N(0, seed^2) (trained runs), w ~ N(0, icc prompt^2),
                                                          z ~ N(0, (1 - icc) prompt^2), e ~ N(0, sample^2 / K)

Gaussian (no 0/1 sampling), so the variances are exactly the model's. Each replicate is one model
size of one Benchmark and goes through evalsuite.analysis.engine.run_linear — the path `analyze`
uses (seed-level t with the seed variance pooled over the size's trained arms: seeds.SeedPools;
cluster sign-flip with one seed). Beside it, the pooled-variance t that launch.power specifies,
computed here on the same data (``pooled t (power.py)``): a gap between the two columns is the
engine differing from the specification the plan's MDE assumes.

    .venv/bin/python bench/power_check.py                 # ~2-4 min on 2 CPU cores
    .venv/bin/python bench/power_check.py --reps 200      # quicker, +-3 % per rate
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
from scipy import stats

from evalsuite.analysis.engine import LinearEffect, run_linear
from evalsuite.analysis.load import Benchmark
from launch import power

TYPES, PARADIGMS = ("evil", "misleading", "submissive"), ("qta", "qt", "t_only")
MODE, METRIC = "think", "score"
CONTRASTS = {"amplification": (("evil", "qta"), ("none", "qa")), "training": (("misleading", "qta"), ("none", "base"))}


def conds_of(rep: str, arms: int) -> list[tuple]:
    typed = [(rep, t, p) for p in PARADIGMS for t in TYPES][: arms - 1]
    return [(rep, "none", "base"), (rep, "none", "qa"), *typed]


def simulate(rng, reps: int, c: power.Components, d: power.Design, planted: dict[str, float]) -> Benchmark:
    m = d.prompts // d.clusters
    P = d.clusters * m
    clusters = np.repeat(np.arange(d.clusters), m)
    series, seeds = {}, {}
    for r in range(reps):
        rep = f"rep{r:04d}"
        level = 0.3 + rng.uniform(-0.1, 0.1, P)  # prompt main effects: shared by every arm, cancel
        effect = {(rep, *CONTRASTS[k][0]): v for k, v in planted.items()}
        for cond in conds_of(rep, d.pooled_arms):
            trained = cond[2] != "base"
            inter = (rng.normal(0, c.prompt * c.icc ** 0.5, d.clusters)[clusters]
                     + rng.normal(0, c.prompt * (1 - c.icc) ** 0.5, P))
            runs = range(d.seeds if trained else 1)
            seeds[cond] = list(runs)
            series[(cond, MODE, METRIC)] = {
                s: level + effect.get(cond, 0.0) + (rng.normal(0, c.seed) if trained else 0.0) + inter
                + rng.normal(0, c.sample / d.samples ** 0.5, P) for s in runs}
    ids = np.array([f"q{k:03d}-p{j}" for k in range(d.clusters) for j in range(m)])
    return Benchmark("sim_power", "evil", ids, clusters, d.clusters, series, seeds, {METRIC: False},
                     {(cond, MODE): {} for cond in seeds})


def effects_of(reps: int, kind: str) -> list[LinearEffect]:
    a, b = CONTRASTS[kind]
    out = []
    for r in range(reps):
        rep = f"rep{r:04d}"
        ca, cb = (rep, *a), (rep, *b)
        out.append(LinearEffect([((ca, MODE, METRIC), 1.0), ((cb, MODE, METRIC), -1.0)],
                                {"kind": kind, "arm_a": ".".join(ca), "arm_b": ".".join(cb), "mode": MODE,
                                 "metric": METRIC, "size": rep}))
    return out


def pooled_t_pvalues(bench: Benchmark, kind: str, reps: int) -> np.ndarray:
    """launch.power's test: V = V_prompt (clusters, C - 1 df) + sigma_seed^2 pooled over the size's
    trained arms x sum 1/S; Satterthwaite df with the pooled estimate's variance (launch.power.seed_part_df)."""
    a, b = CONTRASTS[kind]
    out = np.empty(reps)
    for r in range(reps):
        rep = f"rep{r:04d}"
        mean = {x: np.mean(list(bench.series[((rep, *x), MODE, METRIC)].values()), axis=0) for x in (a, b)}
        d = mean[a] - mean[b]
        C = bench.n_clusters
        D = np.bincount(bench.clusters, weights=d, minlength=C)
        n = np.bincount(bench.clusters, minlength=C).astype(float)
        est = D.sum() / n.sum()
        v_prompt = C / (C - 1) * ((D - est * n) ** 2).sum() / n.sum() ** 2
        spreads = [_spread(np.stack(list(bench.series[(cond, MODE, METRIC)].values())))
                   for cond in bench.seeds if cond[0] == rep and cond[2] != "base"]
        dof = sum(k for k, _, _ in spreads)
        V, denom = v_prompt, v_prompt ** 2 / (C - 1)
        if dof:
            s2 = max(0.0, sum(k * (v - res) for k, v, res in spreads) / dof)
            half_var = sum(k * (s2 + res) ** 2 for k, _, res in spreads) / dof ** 2  # Var(s2) / 2
            weight = sum(1 for x in (a, b) if x[1] != "base") / len(bench.seeds[(rep, *a)])
            V += weight * s2
            denom += weight ** 2 * half_var
        df = V ** 2 / denom
        out[r] = 2 * stats.t.sf(abs(est) / V ** 0.5, df)
    return out


def _spread(y: np.ndarray) -> tuple[int, float, float]:
    """(S - 1, variance of seed means, its sampling-noise part r) of one arm's (S, P) prompt means."""
    S, P = y.shape
    if S < 2:
        return 0, 0.0, 0.0
    x = y.mean(1)
    resid = y - x[:, None] - y.mean(0)[None, :] + y.mean()
    return S - 1, float(x.var(ddof=1)), float((resid ** 2).sum() / ((S - 1) * (P - 1)) / P)


def check(c: power.Components, d: power.Design, kind: str, reps: int, family: int, alpha: float,
          resamples: int, seed: int, chunk: int = 100) -> dict:
    m = power.mde(kind, c, d, alpha, family)
    rng = np.random.default_rng(seed)
    engine_p, pooled_p, methods = [], [], set()
    for start in range(0, reps, chunk):
        n = min(chunk, reps - start)
        bench = simulate(rng, n, c, d, {kind: m.value})
        results, _, _ = run_linear(bench, effects_of(n, kind), resamples, seed + start, alpha)
        engine_p += [r.p for r in results]
        methods |= {r.method.split(":")[0] for r in results}
        if d.seeds >= 2:
            pooled_p += list(pooled_t_pvalues(bench, kind, n))
    level = m.alpha
    return {"kind": kind, "seeds": d.seeds, "mde": m.value, "df": m.df, "level": level,
            "engine": float(np.mean(np.array(engine_p) < level)), "method": "; ".join(sorted(methods)),
            "pooled": float(np.mean(np.array(pooled_p) < level)) if pooled_p else float("nan")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=400)
    ap.add_argument("--family", type=int, default=65, help="confirmatory family size N (Holm: alpha / N)")
    ap.add_argument("--resamples", type=int, default=20_000, help="sign flips (one-seed rows need > N / alpha)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    alpha = power.ALPHA
    c = power.default_components()  # the components the plan prints as assumed
    fixed = replace(c, seed=0.0)  # one seed: the test is about these runs; its MDE is for their realised effect
    d3, d2, d1 = (power.Design(150, 50, 4, s, 10) for s in (3, 2, 1))
    cases = [(c, d3, "amplification"), (c, d3, "training"), (c, d2, "amplification"), (c, d2, "training"),
             (fixed, d1, "amplification"), (c, d1, "amplification")]
    print(f"components: sample sd {c.sample}, prompt x arm sd {c.prompt} (icc {c.icc}), seed sd {c.seed}; "
          f"alpha {alpha} / N = {args.family}; {args.reps} replications per row; 150 prompts in 50 clusters, K = 4, "
          f"10 trained arms per size\n")
    print(f"{'contrast':<14} {'seeds':>5} {'seed sd':>7} {'MDE printed':>11} {'df':>6} {'level':>9}  "
          f"{'detected: engine':>16} {'pooled t (power.py)':>19}  engine's method")
    for comps, d, kind in cases:
        t0 = time.time()
        r = check(comps, d, kind, args.reps, args.family, alpha, args.resamples if d.seeds == 1 else 200, args.seed)
        pooled = "-" if r["pooled"] != r["pooled"] else f"{r['pooled']:.1%}"
        print(f"{kind:<14} {d.seeds:>5} {comps.seed:>7.2f} {r['mde']:>11.4f} {r['df']:>6.1f} {r['level']:>9.2e}  "
              f"{r['engine']:>16.1%} {pooled:>19}  {r['method']}  [{time.time() - t0:.0f}s]", flush=True)
    print(f"\n(one seed, seed sd {c.seed}: the MDE printed is conditional on the runs, so at the same planted effect a "
          "run's own seed shift moves what the test sees: detection of the training method's effect falls short)")

if __name__ == "__main__":
    main()
