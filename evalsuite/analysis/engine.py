"""Linear effects of one benchmark: estimates, CIs and p-values that answer the same question.

An effect is Σ_j coef_j · (mean over seeds of series j), averaged over the prompts where every
series it uses has a value. Inference:
  - some arm of the effect has a seed term — several training seeds of its own, or one seed in a
    model size (pool, ``seed_pool``) where other trained arms have several: seed-level t (seeds.py) —
    p and CI both from V_prompt + seed variance pooled over the size's trained arms (an arm whose
    spread is out of line with its pool: its own), Satterthwaite df; the training procedure, seeds
    random. The row's ``seed_variance`` says which estimate each seed term used;
  - no arm has one (every trained arm of the size has one seed): cluster bootstrap CI and cluster
    sign-flip p, both conditional on the single training run of each trained arm (the row says so).
The seed-variance pools are computed once per benchmark (seeds.SeedPools), not per effect.
The replicate matrix (prompt clusters resampled once per benchmark, each arm's seeds resampled
independently of every other arm's) serves derived statistics such as the internalisation ratio.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from .load import Benchmark, cond_label
from .resample import Resampler, cluster_sums, percentile_ci
from .seeds import SeedPools, seed_level_inference

SEEDS_RANDOM = "seed-level t: prompt clusters + training seeds (seeds random), Satterthwaite df"
CONDITIONAL = "cluster bootstrap CI + cluster sign-flip p (prompts only)"
UNTESTABLE = "untestable: every value on both sides is the same constant (no variance, no test)"
NO_SEED_TERM = "none: conditional on the training runs (one seed per arm)"


@dataclass
class LinearEffect:
    terms: list  # [(SeriesKey, coef)]
    meta: dict
    rate_pair: bool = False  # A − B on a 0/1 metric: effect size is Cohen's h


@dataclass
class EffectResult:
    meta: dict
    estimate: float
    ci_lo: float
    ci_hi: float
    p: float
    effect_size: float
    n_prompts: int
    n_clusters: int
    n_seeds: int
    inputs: list = field(default_factory=list)  # "arm/mode" keys behind the number
    input_hashes: list = field(default_factory=list)
    method: str = CONDITIONAL
    df: float = float("nan")  # t degrees of freedom (seed-level inference only)
    conditional_on: list = field(default_factory=list)  # trained arms with one seed: inference given that run
    seed_variance: str = NO_SEED_TERM  # seed terms' source: "pooled [per p(1-p)] (size X, N df)" / "own ARM (..)"
    unparsed: dict = field(default_factory=dict)  # judge failures per side (see judge_counts)


def stable_seed(*parts) -> int:
    return zlib.crc32("|".join(map(str, parts)).encode()) & 0x7FFFFFFF


def seed_weights(cond, seeds: list[int], n_resamples: int, seed: int) -> np.ndarray:
    """(R, S) resampled seed weights of one arm (all ones with a single seed)."""
    if len(seeds) <= 1:
        return np.ones((n_resamples, max(1, len(seeds))))
    rng = np.random.default_rng([seed, stable_seed(*cond)])
    return rng.multinomial(len(seeds), np.full(len(seeds), 1 / len(seeds)), size=n_resamples).astype(np.float64)


def _mask(bench: Benchmark, terms) -> np.ndarray:
    m = np.ones(len(bench.prompt_ids), dtype=bool)
    for key, _ in terms:
        for row in bench.series[key].values():
            m &= np.isfinite(row)
    return m


def _seed_mean(bench: Benchmark, key) -> np.ndarray:
    return np.mean(np.stack(list(bench.series[key].values())), axis=0)


def run_linear(bench: Benchmark, effects: list[LinearEffect], n_resamples: int, seed: int, alpha: float,
               progress=None, seed_pool: str = "size") -> tuple[list[EffectResult], np.ndarray, list[str]]:
    """Results, the (R, E) replicate matrix (for derived statistics) and notes on skipped effects.

    ``seed_pool`` (sweep.yaml analysis.seed_pool): the trained arms whose seed variance is pooled,
    "size" or "size_paradigm" (seeds.SeedPools)."""
    kept, masks, notes = _estimable(bench, effects)
    if not kept:
        return [], np.zeros((n_resamples, 0)), notes
    C = bench.n_clusters
    columns, plan, diffs = _columns(bench, kept, masks)
    sums = cluster_sums(np.stack(columns, axis=1), bench.clusters, C)
    sampler = Resampler(C, n_resamples, stable_seed(seed, bench.name), progress=progress)
    reps = _replicates(bench, plan, sampler.replicate_sums(sums), seed)
    lo, hi = percentile_ci(reps, alpha)
    diff_sums = cluster_sums(np.stack(diffs, axis=1), bench.clusters, C)
    pvals = sampler.signflip_pvalues(diff_sums)
    pools = SeedPools(bench, seed_pool)
    results = [_result(bench, eff, m, d, (float(lo[i]), float(hi[i]), float(pvals[i])), alpha, pools)
               for i, (eff, m, d) in enumerate(zip(kept, masks, diffs))]
    return results, reps, notes


def _estimable(bench: Benchmark, effects: list[LinearEffect]) -> tuple[list, list, list[str]]:
    """The effects with at least one prompt where every series they use has a value, their masks, and a
    note for each of the others."""
    notes, kept, masks = [], [], []
    for eff in effects:
        m = _mask(bench, eff.terms)
        if not m.any():
            c = judge_counts(bench, eff)
            notes.append(f"{bench.name}: no prompt has every series of {eff.meta['kind']} "
                         f"{eff.meta['arm_a']} vs {eff.meta['arm_b']} ({eff.meta['mode']}, {eff.meta['metric']}): "
                         f"effect not estimable; unparsed judge replies {c['unparsed_a']}/{c['rows_a']} (A), "
                         f"{c['unparsed_b']}/{c['rows_b']} (B)")
            continue
        kept.append(eff)
        masks.append(m)
    return kept, masks, notes


def _columns(bench: Benchmark, kept: list[LinearEffect], masks: list) -> tuple[list, list, list]:
    """Prompt-level columns to resample (each (series, seed, mask) and each mask's count once), each
    effect's plan over them (count column, [(cond, seeds, columns, coef)]) and its seed-averaged
    paired differences."""
    mask_ids: dict[bytes, int] = {}
    col_of: dict[tuple, int] = {}
    columns: list[np.ndarray] = []

    def column(key, values) -> int:
        if key not in col_of:
            col_of[key] = len(columns)
            columns.append(values)
        return col_of[key]

    plan, diffs = [], []
    for eff, m in zip(kept, masks):
        mid = mask_ids.setdefault(m.tobytes(), len(mask_ids))
        count_col = column(("count", mid), m.astype(np.float64))
        term_cols = []
        d = np.zeros(len(m))
        for key, coef in eff.terms:
            seeds = sorted(bench.series[key])
            cols = [column((key, s, mid), np.where(m, bench.series[key][s], 0.0)) for s in seeds]
            term_cols.append((key[0], seeds, cols, coef))
            d += coef * np.where(m, _seed_mean(bench, key), 0.0)
        plan.append((count_col, term_cols))
        diffs.append(d)
    return columns, plan, diffs


def _replicates(bench: Benchmark, plan: list, N: np.ndarray, seed: int) -> np.ndarray:
    """(R, E): each effect in every resample, prompt clusters (N, the resampled column sums) and each
    arm's seeds resampled, one seed draw per arm shared by every effect that uses it."""
    R = N.shape[0]
    cond_weights: dict = {}
    reps = np.empty((R, len(plan)))
    with np.errstate(all="ignore"):
        for i, (count_col, term_cols) in enumerate(plan):
            total = np.zeros(R)
            for cond, seeds, cols, coef in term_cols:
                all_seeds = bench.seeds[cond]
                if cond not in cond_weights:
                    cond_weights[cond] = seed_weights(cond, all_seeds, R, seed)
                V = cond_weights[cond][:, [all_seeds.index(s) for s in seeds]]
                total += coef * (V * N[:, cols]).sum(1) / V.sum(1)
            reps[:, i] = total / N[:, count_col]
    return reps


def _result(bench: Benchmark, eff: LinearEffect, m: np.ndarray, d: np.ndarray, resampled: tuple, alpha: float,
            pools: SeedPools) -> EffectResult:
    """One effect's row: the bootstrap CI and sign-flip p (``resampled``: lo, hi, p) unless the seed-level
    t applies (seeds.seed_level_inference), and no test at all where nothing behind it could vary."""
    n = int(m.sum())
    conds = sorted({key[0] for key, _ in eff.terms})
    lo, hi, p = resampled
    res = EffectResult(
        meta=eff.meta, estimate=float(d.sum() / n), ci_lo=lo, ci_hi=hi, p=p,
        effect_size=_effect_size(bench, eff, m, d), n_prompts=n,
        n_clusters=int(len(np.unique(bench.clusters[m]))),
        n_seeds=max(len(bench.series[k]) for k, _ in eff.terms),
        inputs=_inputs(bench, eff), input_hashes=_hashes(bench, eff),
        conditional_on=[label(bench, c) for c in conds if c[2] != "base" and len(bench.seeds[c]) == 1],
        unparsed=judge_counts(bench, eff))
    inf = seed_level_inference(bench, eff.terms, m, d, alpha, pools)
    if inf is not None:
        res.ci_lo, res.ci_hi, res.p, res.df, res.method = inf.ci_lo, inf.ci_hi, inf.p, inf.df, SEEDS_RANDOM
        res.seed_variance = inf.seed_variance
        res.conditional_on = [label(bench, c) for c in conds if c[2] != "base" and len(bench.seeds[c]) == 1
                              and c not in inf.pooled_single]
    if _both_sides_constant(bench, eff, m):
        # every value behind the effect is one number: nothing here could have varied, so no p (a
        # pooled seed term borrowed from other arms would give one, wide and meaningless)
        res.ci_lo = res.ci_hi = res.p = res.df = float("nan")
        res.method = UNTESTABLE
    return res


def _both_sides_constant(bench: Benchmark, eff: LinearEffect, m: np.ndarray) -> bool:
    values = np.concatenate([bench.series[key][s][m] for key, _ in eff.terms for s in bench.series[key]])
    return bool(len(values)) and bool(np.all(values == values[0]))


def judge_counts(bench: Benchmark, eff: LinearEffect) -> dict:
    """Unparsed judge replies and all replies behind each side (a: positive terms, b: negative)."""
    out = {"unparsed_a": 0, "rows_a": 0, "unparsed_b": 0, "rows_b": 0}
    for key, coef in eff.terms:
        side = "a" if coef > 0 else "b"
        for unparsed, rows in bench.judge_counts.get(key, {}).values():
            out[f"unparsed_{side}"] += int(unparsed)
            out[f"rows_{side}"] += int(rows)
    return out


def _effect_size(bench: Benchmark, eff: LinearEffect, m: np.ndarray, d: np.ndarray) -> float:
    if eff.rate_pair and len(eff.terms) == 2:
        (ka, ca), (kb, cb) = eff.terms
        pa = float(_seed_mean(bench, ka)[m].mean())
        pb = float(_seed_mean(bench, kb)[m].mean())
        sign = 1.0 if ca > 0 else -1.0
        return sign * (2 * np.arcsin(np.sqrt(np.clip(pa, 0, 1))) - 2 * np.arcsin(np.sqrt(np.clip(pb, 0, 1))))
    x = d[m]
    if len(x) < 2:
        return float("nan")
    sd = x.std(ddof=1)
    return float(x.mean() / sd) if sd > 0 else float("nan")


def _inputs(bench: Benchmark, eff: LinearEffect) -> list[str]:
    out = set()
    for (cond, mode, _), _ in eff.terms:
        out.update(bench.inputs.get((cond, mode), {}))
    return sorted(out)


def _hashes(bench: Benchmark, eff: LinearEffect) -> list[str]:
    out = {}
    for (cond, mode, _), _ in eff.terms:
        out.update(bench.inputs.get((cond, mode), {}))
    return [out[k] for k in sorted(out)]


def label(bench: Benchmark, cond) -> str:
    return cond_label(cond, bench.seeds.get(cond, ()))
