"""Multiple testing: Holm within the pre-declared confirmatory family, BH for the rest.

A row matching the declared family but marked unreliable (judge failures) is exploratory.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .spec import FILTER_KEYS


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


def matches(row: dict, flt: dict, primary: dict) -> bool:
    for key in FILTER_KEYS:
        if key not in flt:
            continue
        want = flt[key]
        wants = [str(w) for w in (want if isinstance(want, (list, tuple)) else [want])]
        have = str(row[key])
        if key == "metric":
            wants = [primary.get(row["benchmark"], "") if w == "primary" else w for w in wants]
        if have not in wants:
            return False
    return True


def assign_families(df: pd.DataFrame, filters: list[dict], primary: dict) -> pd.DataFrame:
    """Add family, p_holm (confirmatory only), p_bh (within each family) and p_adj (the family's rule)."""
    df = df.copy()
    confirm = np.array([any(matches(r, f, primary) for f in filters) for r in df.to_dict("records")],
                       dtype=bool).reshape(len(df))
    confirm &= np.isfinite(df["p"].to_numpy(dtype=float)) if len(df) else confirm
    if "reliable" in df:  # judge failures make an effect unreliable: never confirmatory (reliability.py)
        confirm &= df["reliable"].to_numpy(dtype=bool)
    df["family"] = np.where(confirm, "confirmatory", "exploratory")
    df["p_holm"] = np.nan
    df["p_bh"] = np.nan
    p = df["p"].to_numpy(dtype=float)
    df.loc[confirm, "p_holm"] = holm(p[confirm])
    df.loc[confirm, "p_bh"] = bh(p[confirm])
    df.loc[~confirm, "p_bh"] = bh(p[~confirm])
    df["p_adj"] = np.where(confirm, df["p_holm"], df["p_bh"])
    return df
