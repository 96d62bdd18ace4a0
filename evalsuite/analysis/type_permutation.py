"""The specificity statistic and its run-level permutation test, vectorised over replications.

Units: the training runs (type, seed) of one cell. Under H0 ("the reasoning types are
exchangeable") the type labels could have gone to any runs, so the reference distribution hands
the labels to the runs in every distinct way (group sizes kept: each type keeps its number of
seeds). A run keeps all its benchmarks' results together, so one relabelling serves every
benchmark. Seed-to-seed variation is therefore inside the test; permuting within prompts (what
this replaced) left it out, and runs that shift all their benchmarks together made it reject a
true null 11-17 % of the time at α 5 % (tests/test_analysis_specificity.py).

Statistic (diagonal dominance, DDI): per benchmark, the types' means of their runs' prompt means
on the primary metric, oriented so that more of the behaviour is positive, are z-scored across
types; z is averaged over the benchmarks of each axis; DDI = mean z of each matched type on its
own axis. ``weights`` (T, B) holds that last step as one linear map: DDI = Σ_tb z_tb · weights_tb.
"""
from __future__ import annotations

from itertools import combinations
from math import factorial, prod

import numpy as np

EXACT_MAX = 20_000  # enumerate every distinct assignment up to this many (3 types × 3 seeds: 1680)
CHUNK_ELEMENTS = 2_000_000


def orientation(higher_is: str, benchmark: str) -> float:
    """+1 where a higher value is more of the behaviour (higher_is worse), -1 where it is less."""
    if higher_is == "worse":
        return 1.0
    if higher_is == "better":
        return -1.0
    raise ValueError(f"benchmark {benchmark!r}: primary higher_is is {higher_is!r}; declare 'worse' or 'better' "
                     "(battery primary.higher_is or sweep.yaml analysis.primary_metrics)")


def zscore_types(type_means: np.ndarray) -> np.ndarray:
    """Standardise across types (axis -2 of (..., T, B)); a benchmark constant over types gives zeros."""
    mu = type_means.mean(-2, keepdims=True)
    sd = type_means.std(-2, keepdims=True)
    with np.errstate(all="ignore"):
        return np.where(sd > 0, (type_means - mu) / np.where(sd > 0, sd, 1.0), 0.0)


def axis_weights(bench_axes: list[str], axes: list[str]) -> np.ndarray:
    """(B, A): averaging benchmarks' z within each axis is ``z @ axis_weights``."""
    W = np.zeros((len(bench_axes), len(axes)))
    for j, a in enumerate(axes):
        on = [i for i, ba in enumerate(bench_axes) if ba == a]
        W[on, j] = 1.0 / len(on)
    return W


def ddi_weights(types: list[str], bench_axes: list[str], type_axis: dict) -> np.ndarray:
    """(T, B) such that DDI = Σ z · weights: each matched type's own-axis benchmarks, averaged."""
    axes = sorted(set(bench_axes))
    W = axis_weights(bench_axes, axes)
    D = np.zeros((len(types), len(bench_axes)))
    matched = [i for i, t in enumerate(types) if type_axis.get(t) in axes]
    for i in matched:
        D[i] = W[:, axes.index(type_axis[types[i]])] / len(matched)
    return D


def n_assignments(sizes: list[int]) -> int:
    return factorial(sum(sizes)) // prod(factorial(n) for n in sizes)


def all_assignments(sizes: list[int]) -> np.ndarray:
    """(K, R) type index per run for every distinct assignment keeping the group sizes (multiset permutations)."""
    R = sum(sizes)
    rows = np.full((1, R), len(sizes) - 1, dtype=np.int16)
    free = np.tile(np.arange(R), (1, 1))  # (K, n_free) positions not yet given a type
    for t, n in enumerate(sizes[:-1]):
        combos = np.array(list(combinations(range(free.shape[1]), n)), dtype=np.int64).reshape(-1, n)
        keep = np.ones((len(combos), free.shape[1]), dtype=bool)
        keep[np.arange(len(combos))[:, None], combos] = False
        K = rows.shape[0]
        rows = np.repeat(rows, len(combos), axis=0)
        picked = np.repeat(free, len(combos), axis=0)
        chosen = np.take_along_axis(picked, np.tile(combos, (K, 1)), axis=1)
        rows[np.arange(rows.shape[0])[:, None], chosen] = t
        free = picked[np.tile(keep, (K, 1))].reshape(rows.shape[0], -1)
    return rows


def observed_labels(sizes: list[int]) -> np.ndarray:
    """The runs are ordered type by type: run r has type observed_labels[r]."""
    return np.repeat(np.arange(len(sizes)), sizes)


def ddi_of(labels: np.ndarray, run_means: np.ndarray, sizes: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """DDI for every assignment (K, R) and replication of run means (..., R, B) -> (..., K).

    The type means of all assignments and replications are one matrix product (K·T, R) @ (R, L·B).
    """
    K, R = labels.shape
    T, B = weights.shape
    lead = run_means.shape[:-2]
    X = np.moveaxis(run_means.reshape(-1, R, B), 1, 0).reshape(R, -1)  # (R, L·B)
    onehot = (labels[:, None, :] == np.arange(T)[:, None]).astype(np.float64).reshape(K * T, R)
    dev = (onehot @ X).reshape(K, T, -1)  # type sums (K, T, L·B)
    dev /= np.asarray(sizes, dtype=np.float64)[None, :, None]
    dev -= dev.mean(1, keepdims=True)  # type means minus their mean over types
    sd = np.sqrt(np.einsum("ktx,ktx->kx", dev, dev) / T)
    num = np.einsum("ktx,tx->kx", dev, np.tile(weights, (1, X.shape[1] // B)))
    z_sum = np.divide(num, sd, out=np.zeros_like(num), where=sd > 0)  # Σ_t weight · z per benchmark
    return np.moveaxis(z_sum.reshape(K, -1, B).sum(-1), 0, -1).reshape(*lead, K)


def permutation_test(run_means: np.ndarray, sizes: list[int], weights: np.ndarray, n_resamples: int,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int, bool]:
    """One-sided p of DDI (large = types move their own axes most) for run means (..., R, B).

    Returns (observed DDI (...), p (...), number of assignments used, exact). Exact: every distinct
    assignment, p = share at least as large as the observed one (the observed is among them).
    Otherwise Monte Carlo relabellings with the +1 correction, never anti-conservative.
    """
    used = weights.any(0)  # z is per benchmark: one off every type's own axis cannot move the DDI
    run_means, weights = np.asarray(run_means, dtype=np.float64)[..., used], weights[:, used]
    sz = np.asarray(sizes, dtype=np.float64)
    observed = ddi_of(observed_labels(sizes)[None, :], run_means, sz, weights)[..., 0]
    tol = 1e-9 * np.maximum(1.0, np.abs(observed))
    total = n_assignments(sizes)
    exact = total <= max(n_resamples, EXACT_MAX)
    lead = int(np.prod(run_means.shape[:-2], dtype=np.int64))
    rows = max(1, CHUNK_ELEMENTS // max(1, lead * len(sizes) * run_means.shape[-1]))
    hits = np.zeros(run_means.shape[:-2])
    if exact:
        labels = all_assignments(sizes)
        for i in range(0, len(labels), rows):
            hits += (ddi_of(labels[i:i + rows], run_means, sz, weights) >= (observed - tol)[..., None]).sum(-1)
        return observed, hits / total, total, True
    base = observed_labels(sizes)
    done = 0
    while done < n_resamples:
        k = min(rows, n_resamples - done)
        labels = rng.permuted(np.tile(base, (k, 1)), axis=1)
        hits += (ddi_of(labels, run_means, sz, weights) >= (observed - tol)[..., None]).sum(-1)
        done += k
    return observed, (hits + 1.0) / (n_resamples + 1.0), n_resamples, False
