"""Specificity: does each reasoning type move the behaviour that matches its meaning most?

For one (size, mode, paradigm): the matrix type × behaviour axis of arm means on each axis's
primary metric, standardised within each axis across types (z-scores; the base model and any
common shift cancel). Diagonal dominance index (DDI) = mean z of each type on its own axis
(sweep.yaml ``analysis.type_axis``). Tested by permuting the type labels of the arms
independently within every prompt (null: the types are exchangeable); CI by the cluster
bootstrap over prompts.
"""
from __future__ import annotations

import numpy as np

from .engine import stable_seed
from .load import Benchmark, cond_label
from .resample import Resampler, cluster_sums, percentile_ci

TYPED = ("qta", "qt", "t_only")


def _zscore(means: np.ndarray) -> np.ndarray:
    """Standardise the last axis (types); a constant row becomes zeros."""
    mu = means.mean(-1, keepdims=True)
    sd = means.std(-1, keepdims=True)
    with np.errstate(all="ignore"):
        return np.where(sd > 0, (means - mu) / np.where(sd > 0, sd, 1.0), 0.0)


def _ddi(zcols: list[np.ndarray], col_axes: list[str], axes: list[str], types: list[str], type_axis: dict):
    """zcols: per column (..., T) z-scores -> axis matrix (..., T, A) and DDI (...)."""
    mats = []
    for a in axes:
        mats.append(np.mean([z for z, ca in zip(zcols, col_axes) if ca == a], axis=0))
    mat = np.stack(mats, axis=-1)
    diag = [mat[..., i, axes.index(type_axis[t])] for i, t in enumerate(types)
            if type_axis.get(t) in axes]
    return mat, np.mean(diag, axis=0)


def specificity(benches: dict[str, Benchmark], primary: dict, type_axis: dict, n_resamples: int, seed: int,
                alpha: float, notes: list[str], progress=None) -> list[dict]:
    rows = []
    keys = sorted({(c[0], k[1], c[2]) for b in benches.values() for k in b.series for c in [k[0]] if c[2] in TYPED})
    for model, mode, paradigm in keys:
        cols = []
        for b in benches.values():
            metric = primary.get(b.name)
            conds = {c[1]: c for c in b.conds(mode, metric) if c[0] == model and c[2] == paradigm}
            if conds:
                cols.append((b, metric, conds))
        if not cols:
            continue
        types = sorted(set.intersection(*(set(c) for _, _, c in cols)))
        axes = sorted({b.axis for b, _, _ in cols})
        matched = [t for t in types if type_axis.get(t) in axes]
        where = f"specificity {model}/{mode}/{paradigm}"
        if len(types) < 2 or len(matched) < 2:
            notes.append(f"{where}: needs ≥2 types with a matching axis (types {types}, axes {axes}, "
                         f"type_axis {type_axis}); skipped")
            continue
        data = []
        for b, metric, conds in cols:
            Y = np.stack([np.mean(np.stack(list(b.series[(conds[t], mode, metric)].values())), 0) for t in types])
            m = np.isfinite(Y).all(0)
            if m.sum() == 0:
                continue
            data.append((b, metric, Y[:, m], b.clusters[m]))
        if not data:
            continue
        col_axes = [b.axis for b, _, _, _ in data]
        axes = sorted(set(col_axes))
        zobs = [_zscore(Y.mean(1)) for _, _, Y, _ in data]
        mat, ddi = _ddi(zobs, col_axes, axes, types, type_axis)
        ddi = float(ddi)
        # permutation of type labels within each prompt
        rng = np.random.default_rng([seed, stable_seed(model, mode, paradigm)])
        T = len(types)
        hits, total = 0, 0
        max_p = max(Y.shape[1] for _, _, Y, _ in data)
        rows_per_chunk = max(1, 1_000_000 // (max_p * T))
        while total < n_resamples:
            rc = min(rows_per_chunk, n_resamples - total)
            zperm = []
            for _, _, Y, _ in data:
                perm = np.argsort(rng.random((rc, Y.shape[1], T)), axis=2)
                vals = Y.T[np.arange(Y.shape[1])[None, :, None], perm]  # (rc, P, T)
                zperm.append(_zscore(vals.mean(1)))
            _, ddi_perm = _ddi(zperm, col_axes, axes, types, type_axis)
            hits += int((ddi_perm >= ddi - 1e-12).sum())
            total += rc
            if progress:
                progress(rc)
        p = (hits + 1) / (total + 1)
        # bootstrap over prompt clusters (same cluster draws as the benchmark's linear effects)
        zboot = []
        for b, _, Y, cl in data:
            codes, inv = np.unique(cl, return_inverse=True)
            sums = cluster_sums(np.concatenate([Y.T, np.ones((Y.shape[1], 1))], 1), inv, len(codes))
            N = Resampler(len(codes), n_resamples, stable_seed(seed, b.name)).replicate_sums(sums)
            with np.errstate(all="ignore"):
                zboot.append(_zscore(N[:, :T] / N[:, T:]))
        _, ddi_boot = _ddi(zboot, col_axes, axes, types, type_axis)
        lo, hi = percentile_ci(ddi_boot[:, None], alpha)
        n_prompts = sum(Y.shape[1] for _, _, Y, _ in data)
        n_clusters = sum(len(np.unique(cl)) for *_, cl in data)
        n_seeds = max(len(b.seeds.get(c, [])) for b, _, conds in cols for c in conds.values())
        inputs = sorted({k for b, metric, conds in cols for t in types for k in b.inputs.get((conds[t], mode), {})})
        hashes = sorted({h for b, metric, conds in cols for t in types for h in b.inputs.get((conds[t], mode), {}).values()})
        common = {"kind": "specificity", "mode": mode, "size": model, "paradigm": paradigm, "paradigm_b": paradigm,
                  "metric": "primary", "n_seeds": n_seeds, "inputs": inputs, "input_hashes": hashes}
        rows.append({**common, "statistic": "diagonal_dominance", "benchmark": "all", "axis": "+".join(axes),
                     "rtype_a": "+".join(types), "rtype_b": "permuted",
                     "arm_a": f"{model}.{'+'.join(types)}.{paradigm}", "arm_b": "permuted_type_labels",
                     "estimate": ddi, "ci_lo": float(lo[0]), "ci_hi": float(hi[0]), "p": p,
                     "effect_size": np.nan, "n_prompts": n_prompts, "n_clusters": n_clusters})
        for i, t in enumerate(types):
            for j, a in enumerate(axes):
                rows.append({**common, "statistic": "z", "benchmark": a, "axis": a, "rtype_a": t, "rtype_b": "all",
                             "arm_a": cond_label((model, t, paradigm)), "arm_b": "mean_of_types",
                             "estimate": float(mat[i, j]), "ci_lo": np.nan, "ci_hi": np.nan, "p": np.nan,
                             "effect_size": float(mat[i, j]), "n_prompts": n_prompts, "n_clusters": n_clusters,
                             "matched": type_axis.get(t) == a})
    return rows
