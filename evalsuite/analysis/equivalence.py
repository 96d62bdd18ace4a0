"""Equivalence of think and no-think (TOST): the only way the analysis says "equivalent".

A difference that is not significant is not shown to be zero: the think − no-think
difference-in-differences (DiD) of an internalisation row may be "not shown to differ" and
still be large. Where sweep.yaml declares ``analysis.equivalence_margins: {benchmark: m}`` (on
that benchmark's primary metric's scale, before the data), each DiD row on that metric gets a
two one-sided tests row (statistic ``equivalence_tost``):

    H0: |DiD| ≥ m   against   H1: |DiD| < m
    p = max(P(T ≥ (est + m)/se), P(T ≤ (est − m)/se)),  T ~ t_df (the DiD row's own t and df)

so p < α exactly when the (1 − 2α) interval est ± t_{1−α, df}·se lies inside (−m, +m); the row's
CI is that interval. se is recovered from the DiD row's (1 − α) CI, which the seed-level t makes
symmetric: se = (ci_hi − ci_lo) / (2·t_{1−α/2, df}). A DiD row conditional on single training
runs (no df: percentile bootstrap CI) uses the normal quantile instead, and its row says so.

The TOST rows are a family of their own ("equivalence"): Holm within it, and "equivalent
within ±m" only when the Holm-adjusted TOST p is below α.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from tracecause.config import ConfigError

from .multiplicity import holm

STATISTIC = "equivalence_tost"
FAMILY = "equivalence"


def check_margins(margins: dict, benchmarks, where: str) -> None:
    """Every margin names a benchmark the sweep has, before any resampling (the same rule as plan)."""
    allowed = sorted(benchmarks)
    for name, m in margins.items():
        if name not in allowed:
            raise ConfigError(where, f"analysis.equivalence_margins.{name}",
                              f"no such benchmark in this sweep; allowed: {allowed}; fix: name a benchmark of the "
                              f"battery or remove the margin")
        if not (isinstance(m, (int, float)) and not isinstance(m, bool) and np.isfinite(m) and m > 0):
            raise ConfigError(where, f"analysis.equivalence_margins.{name}",
                              f"{m!r} is not a positive margin; fix: give the largest think − no-think difference "
                              f"on the primary metric's scale you would call negligible, e.g. 0.05")


def _quantile(df: float, q: float) -> float:
    return float(stats.t.ppf(q, df) if np.isfinite(df) and df > 0 else stats.norm.ppf(q))


def se_from_ci(ci_lo: float, ci_hi: float, df: float, alpha: float) -> float:
    """Standard error behind a symmetric (1 − α) interval est ± q·se (q: t_df, or normal without df)."""
    return float((ci_hi - ci_lo) / (2 * _quantile(df, 1 - alpha / 2)))


def tost(estimate: float, se: float, df: float, margin: float, alpha: float) -> tuple[float, float, float]:
    """(TOST p, lower, upper of the 1 − 2α interval) for H0 |effect| ≥ margin."""
    if not (np.isfinite(estimate) and np.isfinite(se) and se > 0):
        return float("nan"), float("nan"), float("nan")
    dist = stats.t(df) if np.isfinite(df) and df > 0 else stats.norm()
    p_low = float(dist.sf((estimate + margin) / se))   # H0: effect ≤ −m
    p_high = float(dist.cdf((estimate - margin) / se))  # H0: effect ≥ +m
    q = _quantile(df, 1 - alpha)
    return max(p_low, p_high), estimate - q * se, estimate + q * se


def equivalence_rows(df: pd.DataFrame, margins: dict, primary: dict, alpha: float) -> pd.DataFrame:
    """One TOST row per DiD row on a margin-declared benchmark's primary metric (none without margins)."""
    if not margins or df.empty:
        return df.iloc[:0]
    did = df[(df["kind"] == "internalisation") & (df["statistic"] == "did")
             & df["benchmark"].isin(list(margins))
             & (df["metric"] == df["benchmark"].map(lambda b: primary.get(b, "")))]
    if did.empty:
        return did
    rows = did.copy()
    out_p, out_lo, out_hi, methods = [], [], [], []
    for r in did.to_dict("records"):
        df_t = float(r.get("t_df", np.nan))
        se = float(r["se"]) if np.isfinite(r.get("se", np.nan)) else se_from_ci(r["ci_lo"], r["ci_hi"], df_t, alpha)
        m = float(margins[r["benchmark"]])
        p, lo, hi = tost(float(r["estimate"]), se, df_t, m, alpha)
        out_p.append(p)
        out_lo.append(lo)
        out_hi.append(hi)
        basis = f"t df={df_t:.1f}" if np.isfinite(df_t) else "normal approximation to the bootstrap CI"
        methods.append(f"TOST of think − no-think DiD within ±{m:g} ({basis}); CI is the {1 - 2 * alpha:.0%} interval")
    rows["statistic"] = STATISTIC
    rows["margin"] = [float(margins[b]) for b in did["benchmark"]]
    rows["p"], rows["ci_lo"], rows["ci_hi"], rows["method"] = out_p, out_lo, out_hi, methods
    rows["effect_size"] = np.nan
    rows["family"] = FAMILY
    rows["p_holm"] = holm(rows["p"].to_numpy(dtype=float))
    rows["p_bh"] = np.nan
    rows["p_adj"] = rows["p_holm"]
    return rows


def with_equivalence(df: pd.DataFrame, margins: dict, primary: dict, alpha: float) -> pd.DataFrame:
    """The effects table with its TOST rows appended after the rows they test (after multiplicity)."""
    extra = equivalence_rows(df, margins, primary, alpha)
    if extra.empty:
        return df
    return pd.concat([df, extra], ignore_index=True)


def equivalent(row: dict, alpha: float) -> bool:
    """The verdict of a TOST row: equivalent within ±margin only when its Holm-adjusted p < α."""
    return bool(row.get("reliable", True)) and np.isfinite(row.get("p_adj", np.nan)) and row["p_adj"] < alpha
