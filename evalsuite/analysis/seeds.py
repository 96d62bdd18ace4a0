"""Seed-level inference: one model of the variance behind both the p-value and the CI.

The estimand is the effect of the *training procedure*, training seeds random: a fresh seed
would move each trained arm by its own seed shift, independently of every other arm. With
several seeds per arm the variance of an effect estimate has two parts,

    V = V_prompt + Σ_arms σ²_seed(arm) / S_arm

V_prompt: the prompt-cluster (linearised ratio) variance of the paired prompt-level effect,
seeds averaged — sampling noise of every arm, prompt × arm interaction. σ²_seed: the arm's
seed-to-seed variance of its contribution to the effect, from a seed × prompt ANOVA
(mean squares: σ²_seed = (MS_seed − MS_resid) / P; the residual part is already in V_prompt;
the sum over arms is truncated at 0). CI = estimate ± t_df·√V and p = 2·P(T_df > |estimate|/√V) with
Satterthwaite's df, so with 3 seeds per arm both are t-wide (df ≈ 2–4) and agree exactly
(p < α ⇔ 0 outside the CI). NOTES (Statistics): honest but wide — the report says so.

An arm with a single seed adds no seed term: its seed variation cannot be estimated, and the
row says the inference is conditional on that training run.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass
class SeedInference:
    estimate: float
    ci_lo: float
    ci_hi: float
    p: float
    df: float
    se: float
    seed_share: float  # fraction of V from seed-to-seed variation


def arm_contributions(bench, terms, mask) -> dict:
    """Per trained arm (cond): its seeds' per-prompt contributions Σ coef·value, shape (S, P_masked).

    Grouped by arm because seed s of one arm and seed s of another are different training runs:
    their seed shifts are independent draws (pooling them by seed index would pair unrelated runs).
    """
    groups: dict = {}
    for key, coef in terms:
        groups.setdefault(key[0], []).append((key, coef))
    out = {}
    for cond, items in groups.items():
        seeds = sorted(set.intersection(*(set(bench.series[k]) for k, _ in items)))
        out[cond] = np.stack([sum(c * bench.series[k][s][mask] for k, c in items) for s in seeds])
    return out


def seed_mean_squares(y: np.ndarray) -> tuple[float, float]:
    """Seed × prompt ANOVA of one arm's (S, P) contributions: (MS_seed, MS_resid) / (P·S).

    The first estimates σ²_seed/S + (residual noise)/(P·S), the second the residual part alone,
    so their difference is the arm's seed variance term of V.
    """
    S, P = y.shape
    if S < 2 or P < 2:
        return 0.0, 0.0
    x = y.mean(1)
    ms_seed = P * x.var(ddof=1)
    resid = y - x[:, None] - y.mean(0)[None, :] + y.mean()
    ms_resid = (resid ** 2).sum() / ((S - 1) * (P - 1))
    return ms_seed / (P * S), ms_resid / (P * S)


def prompt_variance(d: np.ndarray, clusters: np.ndarray, mask: np.ndarray) -> tuple[float, int]:
    """Linearised cluster variance of the ratio estimator Σd / n over masked prompts, and #clusters."""
    codes, inv = np.unique(clusters[mask], return_inverse=True)
    C = len(codes)
    D = np.bincount(inv, weights=d[mask], minlength=C)
    n = np.bincount(inv, minlength=C).astype(float)
    est = D.sum() / n.sum()
    if C < 2:
        return float("nan"), C
    return float(C / (C - 1) * ((D - est * n) ** 2).sum() / n.sum() ** 2), C


def seed_level_inference(bench, terms, mask, d, alpha: float) -> SeedInference:
    """t-based CI and p from V_prompt + seed components (see module docstring)."""
    est = float(d[mask].sum() / mask.sum())
    v_prompt, C = prompt_variance(d, bench.clusters, mask)
    seeded = [(seed_mean_squares(y), len(y)) for y in arm_contributions(bench, terms, mask).values() if len(y) > 1]
    residual = sum(res for (_, res), _ in seeded)
    if sum(ms - res for (ms, res), _ in seeded) > 0:
        # V = (V_prompt − residual parts) + Σ MS_seed parts: the first is the noise of single-seed
        # arms (df C−1), each MS_seed part has S−1 df; Satterthwaite combines them. When the
        # residual parts exceed V_prompt (sampling noise) the first part is truncated at 0 and V is
        # the sum of the parts as truncated: V and its df must describe the same sum, or df falls
        # below every part's own (measured: df 0.88 from parts of 4 and 11 df, a CI ±0.36 wide).
        parts = [(max(v_prompt - residual, 0.0), C - 1)] + [(ms, S - 1) for (ms, _), S in seeded]
    else:  # no seed variation detectable beyond sampling noise (already in V_prompt)
        parts = [(v_prompt, C - 1)]
    V = sum(v for v, _ in parts)
    v_seed = V - v_prompt  # what the seed parts add beyond the prompt variance (0 without them)
    if not np.isfinite(V) or V <= 0:
        nan = float("nan")
        return SeedInference(est, nan, nan, nan, nan, nan, nan)
    df = V ** 2 / sum(v ** 2 / k for v, k in parts if k > 0)
    se = float(np.sqrt(V))
    q = stats.t.ppf(1 - alpha / 2, df)
    p = float(2 * stats.t.sf(abs(est) / se, df))
    return SeedInference(est, est - q * se, est + q * se, p, float(df), se, v_seed / V)
