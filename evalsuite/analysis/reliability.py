"""What every effect row's numbers mean: judge failures behind it, and what its p and CI condition on.

Unparsed judge replies are absent from the means (never scored 0), so an arm whose judge
failed often is estimated from fewer — and possibly different — samples than its comparison.
Such an effect is kept, with its counts and rates, but marked unreliable and kept out of the
confirmatory family (assign_families reads ``reliable``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def mark_judge_reliability(df: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Add unparsed rates per side, ``reliable`` and ``reliability_note`` (why not, with numbers)."""
    df = df.copy()
    for side in ("a", "b"):
        rows = df[f"rows_{side}"].to_numpy(dtype=float)
        with np.errstate(all="ignore"):
            df[f"unparsed_rate_{side}"] = np.where(rows > 0, df[f"unparsed_{side}"] / rows, np.nan)
    notes = []
    for ra, rb, na, nb in zip(df["unparsed_rate_a"], df["unparsed_rate_b"], df["unparsed_a"], df["unparsed_b"]):
        why = []
        for side, rate, n in (("a", ra, na), ("b", rb, nb)):
            if np.isfinite(rate) and rate > threshold:
                why.append(f"{n} judge replies unparsed on side {side} ({rate:.1%} > {threshold:.0%})")
        if np.isfinite(ra) and np.isfinite(rb) and abs(ra - rb) > threshold:
            why.append(f"unparsed rates differ between sides ({ra:.1%} vs {rb:.1%}, gap > {threshold:.0%})")
        notes.append("unreliable, kept out of the confirmatory family: " + "; ".join(why) if why else "")
    df["reliability_note"] = notes
    df["reliable"] = df["reliability_note"] == ""
    return df


def inference_notes(df: pd.DataFrame) -> list[str]:
    """Per row: what its p-value and CI condition on, in words."""
    out = []
    constant = untestable(df)
    for kind, method, cond, seeds, flat in zip(df["kind"], df["method"], df["conditional_on"], df["n_seeds"], constant):
        if flat:
            out.append("untestable: both sides constant (no variance), so no p; a null here could never fire")
        elif kind == "specificity":
            out.append("type labels permuted over training runs: seed-to-seed variation is in the p and CI"
                       + ("; one seed per type, so p >= 1/T! (see method)" if seeds == 1 else ""))
        elif cond:
            out.append(f"conditional on the single training run of {', '.join(cond)}: seed-to-seed variation "
                       "is not in the CI or p (one seed per arm)")
        elif str(method).startswith("seed-level"):
            seeds_text = "a single seed, seed variance from its size's pool" if seeds == 1 else f"{seeds} seeds"
            out.append(f"training procedure with seeds random ({seeds_text}): t-based, honest but wide with few seeds")
        else:
            out.append("")
    return out


def untestable(df: pd.DataFrame) -> list[bool]:
    """Rows whose two sides are one constant (engine.UNTESTABLE): such a contrast could not have come out
    significant whatever the pipeline did, so it is evidence of nothing and carries no p."""
    from .engine import UNTESTABLE

    return [m == UNTESTABLE for m in df["method"]]
