"""Multiple testing: Holm within the pre-declared confirmatory family, BH for the rest.

A row matching the declared family but marked unreliable (judge failures) is exploratory.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .family import matches, family_key


def _adjust(p, step) -> np.ndarray:
    """Apply ``step`` (sorted finite p-values -> adjusted) and undo the sort; NaN stays NaN."""
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.isfinite(p)
    q = p[ok]
    if len(q) == 0:
        return out
    order = np.argsort(q, kind="stable")
    res = np.empty(len(q))
    res[order] = np.minimum(step(q[order]), 1.0)
    out[ok] = res
    return out


def _holm_sorted(q: np.ndarray) -> np.ndarray:
    m = len(q)
    return np.maximum.accumulate((m - np.arange(m)) * q)


def _bh_sorted(q: np.ndarray) -> np.ndarray:
    m = len(q)
    return np.minimum.accumulate((q * m / np.arange(1, m + 1))[::-1])[::-1]


def holm(p) -> np.ndarray:
    """Holm step-down adjusted p-values (NaN stays NaN and does not count)."""
    return _adjust(p, _holm_sorted)


def bh(p) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (NaN stays NaN and does not count)."""
    return _adjust(p, _bh_sorted)


def assign_families(df: pd.DataFrame, filters: list[dict], primary: dict, type_bench: dict | None = None,
                    planned: list[str] | None = None) -> pd.DataFrame:
    """Add family, p_holm (confirmatory only), p_bh (within each family) and p_adj (the family's rule).

    ``planned``: the frozen family's test keys (family.family_key). Holm then counts every planned test:
    one that produced no row (its data missing, or unreliable) counts as p = 1, so losing a test never
    makes the family smaller than the one pre-registered; a matching row that was not planned stays
    exploratory (the family cannot grow after the data are seen).
    """
    df = df.copy()
    records = df.to_dict("records")
    confirm = np.array([any(matches(r, f, primary, type_bench) for f in filters) for r in records],
                       dtype=bool).reshape(len(df))
    if planned is not None:
        frozen = set(planned)
        confirm &= np.array([family_key(r) in frozen for r in records], dtype=bool).reshape(len(df))
    confirm &= np.isfinite(df["p"].to_numpy(dtype=float)) if len(df) else confirm
    if "reliable" in df:  # judge failures make an effect unreliable: never confirmatory (reliability.py)
        confirm &= df["reliable"].to_numpy(dtype=bool)
    df["family"] = np.where(confirm, "confirmatory", "exploratory")
    df["p_holm"] = np.nan
    df["p_bh"] = np.nan
    p = df["p"].to_numpy(dtype=float)
    absent = max(0, len(planned) - int(confirm.sum())) if planned is not None else 0
    padded = np.concatenate([p[confirm], np.ones(absent)])
    df.loc[confirm, "p_holm"] = holm(padded)[:int(confirm.sum())]
    df.loc[confirm, "p_bh"] = bh(padded)[:int(confirm.sum())]
    df.loc[~confirm, "p_bh"] = bh(p[~confirm])
    df["p_adj"] = np.where(confirm, df["p_holm"], df["p_bh"])
    return df
