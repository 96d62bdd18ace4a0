"""Specificity: does each reasoning type move the behaviour that matches its meaning most?

For one cell (size, mode, typed paradigm; which cells: specificity_cells): the matrix type ×
behaviour axis of the types' means on each benchmark's primary metric, oriented so that more of
the behaviour is positive (a higher_is better metric such as TruthfulQA MC1 is negated), z-scored
across types within each benchmark (the base model and any common shift cancel) and averaged
over the benchmarks of each axis. Diagonal dominance index (DDI) = mean z of each type on its own
axis (sweep.yaml ``analysis.type_axis``). p: the type labels permuted over the training runs
(type_permutation). CI: two-way bootstrap, prompt clusters × each type's seeds.
"""
from __future__ import annotations

import numpy as np

from .engine import seed_weights, stable_seed
from .load import Benchmark, cond_label
from .resample import Resampler, cluster_sums, percentile_ci
from .specificity_cells import SpecificityCell, specificity_cells
from .type_permutation import (axis_weights, ddi_weights, observed_labels, orientation, permutation_test,
                               zscore_types)


def runs_with_data(benches: dict[str, Benchmark], primaries: dict) -> dict[tuple[str, str], list[tuple]]:
    """(benchmark, mode) -> the runs (model, rtype, paradigm, seed) with any value of its primary metric."""
    out: dict[tuple[str, str], list[tuple]] = {}
    for name, b in benches.items():
        metric = primaries[name]["metric"]
        for (cond, mode, m), by_seed in b.series.items():
            if m == metric:
                out.setdefault((name, mode), []).extend(
                    (*cond, s) for s, v in by_seed.items() if np.isfinite(v).any())
    return out


def _cell_data(cell: SpecificityCell, benches: dict, primaries: dict, notes: list[str]) -> list[tuple]:
    """Per benchmark: (bench, oriented values (runs, prompts) on prompts every run has, their clusters)."""
    data = []
    for name in cell.benchmarks:
        b, metric = benches[name], primaries[name]["metric"]
        sign = orientation(primaries[name]["higher_is"], name)
        Y = sign * np.stack([b.series[((cell.size, t, cell.paradigm), cell.mode, metric)][s]
                             for t, seeds in zip(cell.types, cell.seeds) for s in seeds])
        m = np.isfinite(Y).all(0)
        if not m.any():
            notes.append(f"specificity {'/'.join(cell.key)}: benchmark {name} has no prompt with a value for "
                         "every run; left out")
            continue
        data.append((b, Y[:, m], b.clusters[m]))
    return data


def _bootstrap(cell: SpecificityCell, data: list[tuple], n_resamples: int, seed: int) -> np.ndarray:
    """(N, T, B) type means: prompt clusters (the benchmark's own draws) × each type's seeds resampled."""
    R = sum(len(s) for s in cell.seeds)
    cols = []
    for b, Y, cl in data:
        codes, inv = np.unique(cl, return_inverse=True)
        sums = cluster_sums(np.concatenate([Y.T, np.ones((Y.shape[1], 1))], 1), inv, len(codes))
        N = Resampler(len(codes), n_resamples, stable_seed(seed, b.name)).replicate_sums(sums)
        with np.errstate(all="ignore"):
            cols.append(N[:, :R] / N[:, R:])  # (N, R) run means
    run_means = np.stack(cols, axis=-1)  # (N, R, B)
    out, start = [], 0
    for t, seeds in zip(cell.types, cell.seeds):
        V = seed_weights((cell.size, t, cell.paradigm), list(seeds), n_resamples, seed)  # same draws on every benchmark
        out.append(np.einsum("ns,nsb->nb", V, run_means[:, start:start + len(seeds)]) / V.sum(1, keepdims=True))
        start += len(seeds)
    return np.stack(out, axis=1)


def _method(cell: SpecificityCell, n_used: int, exact: bool, alpha: float) -> str:
    counts = ", ".join(f"{t} {len(s)}" for t, s in zip(cell.types, cell.seeds))
    test = (f"all {n_used} distinct assignments (exact)" if exact
            else f"{n_used} random assignments (Monte Carlo, +1 correction)")
    text = (f"type labels permuted over training runs (seeds per type: {counts}; {test}); primaries oriented so "
            "more of the behaviour is positive; two-way bootstrap CI (prompt clusters x each type's seeds)")
    if cell.min_p > alpha:
        text += (f"; only {cell.n_assignments} assignments, so p >= {cell.min_p:.3g}: this test cannot reach "
                 f"significance at alpha {alpha:g} (more seeds per type needed)")
    return text


def specificity(benches: dict[str, Benchmark], primaries: dict[str, dict], type_axis: dict, n_resamples: int,
                seed: int, alpha: float, notes: list[str], progress=None) -> list[dict]:
    """Rows of every specificity cell: its DDI (p, CI) and its type × axis z matrix.

    ``primaries``: benchmark -> {metric, higher_is} (primary.declared_primaries)."""
    bench_axes = {name: b.axis for name, b in benches.items() if name in primaries}
    rows = []
    for cell in specificity_cells(runs_with_data(benches, primaries), bench_axes, type_axis, notes):
        rows += _cell_rows(cell, benches, primaries, type_axis, n_resamples, seed, alpha, notes, progress)
    return rows


def _cell_rows(cell: SpecificityCell, benches, primaries, type_axis, n_resamples, seed, alpha, notes,
               progress) -> list[dict]:
    data = _cell_data(cell, benches, primaries, notes)
    types = list(cell.types)
    col_axes = [b.axis for b, _, _ in data]
    axes = sorted(set(col_axes))
    if len([t for t in types if type_axis.get(t) in axes]) < 2:
        notes.append(f"specificity {'/'.join(cell.key)}: fewer than 2 types keep a matching axis after "
                     f"benchmarks without values were left out; skipped")
        return []
    run_means = np.stack([Y.mean(1) for _, Y, _ in data], axis=-1)  # (R, B)
    D = ddi_weights(types, col_axes, type_axis)
    rng = np.random.default_rng([seed, stable_seed(*cell.key)])
    ddi, p, n_used, exact = permutation_test(run_means, [len(s) for s in cell.seeds], D, n_resamples, rng)
    boot = zscore_types(_bootstrap(cell, data, n_resamples, seed))  # (N, T, B)
    if progress:
        progress(n_used + n_resamples)
    W = axis_weights(col_axes, axes)
    labels = observed_labels([len(s) for s in cell.seeds])
    mat = zscore_types(np.stack([run_means[labels == i].mean(0) for i in range(len(types))])) @ W
    lo, hi = percentile_ci(np.einsum("ntb,tb->n", boot, D)[:, None], alpha)
    mat_lo, mat_hi = percentile_ci((boot @ W).reshape(n_resamples, -1), alpha)
    model, mode, paradigm = cell.key
    n_prompts = sum(Y.shape[1] for _, Y, _ in data)
    n_clusters = sum(len(np.unique(cl)) for *_, cl in data)
    keys = [(b, ((model, t, paradigm), mode)) for b, _, _ in data for t in types]
    inputs = sorted({k for b, key in keys for k in b.inputs.get(key, {})})
    hashes = sorted({h for b, key in keys for h in b.inputs.get(key, {}).values()})
    common = {"kind": "specificity", "mode": mode, "size": model, "paradigm": paradigm, "paradigm_b": paradigm,
              "metric": "primary", "n_seeds": min(len(s) for s in cell.seeds), "inputs": inputs,
              "input_hashes": hashes, "method": _method(cell, n_used, exact, alpha),
              "n_prompts": n_prompts, "n_clusters": n_clusters}
    rows = [{**common, "statistic": "diagonal_dominance", "benchmark": "all", "axis": "+".join(axes),
             "rtype_a": "+".join(types), "rtype_b": "permuted", "arm_a": f"{model}.{'+'.join(types)}.{paradigm}",
             "arm_b": "permuted_type_labels", "estimate": float(ddi), "ci_lo": float(lo[0]), "ci_hi": float(hi[0]),
             "p": float(p), "effect_size": np.nan}]
    for i, t in enumerate(types):
        for j, a in enumerate(axes):
            k = i * len(axes) + j
            rows.append({**common, "statistic": "z", "benchmark": a, "axis": a, "rtype_a": t, "rtype_b": "all",
                         "arm_a": cond_label((model, t, paradigm)), "arm_b": "mean_of_types",
                         "estimate": float(mat[i, j]), "ci_lo": float(mat_lo[k]), "ci_hi": float(mat_hi[k]),
                         "p": np.nan, "effect_size": float(mat[i, j]), "matched": type_axis.get(t) == a})
    return rows
