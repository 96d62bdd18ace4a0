"""Vectorised resampling: cluster bootstrap weights, sign flips, and the linear-statistic engine.

Every statistic here is a ratio of cluster sums, so one weight matrix W (resamples × clusters)
serves all statistics of a benchmark at once: replicates = (W @ numerators) / (W @ denominators).
Resamples are processed in chunks sized to a fixed number of matrix elements, never one by one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
from scipy import sparse

CHUNK_ELEMENTS = 1_000_000  # resamples × clusters per chunk: ~8 MB of float64 weights


def chunks(n_resamples: int, n_clusters: int, chunk_elements: int = CHUNK_ELEMENTS) -> Iterator[int]:
    rows = max(1, chunk_elements // max(1, n_clusters))
    done = 0
    while done < n_resamples:
        size = min(rows, n_resamples - done)
        yield size
        done += size


def bootstrap_counts(rng: np.random.Generator, n_clusters: int, n_rows: int) -> np.ndarray:
    """(n_rows, n_clusters) float64: how often each cluster is drawn in each resample (sums to C)."""
    idx = rng.integers(0, n_clusters, size=(n_rows, n_clusters), dtype=np.int32).astype(np.int64)
    if n_rows > 1:
        idx += (np.arange(n_rows, dtype=np.int64) * n_clusters)[:, None]
    return np.bincount(idx.ravel(), minlength=n_rows * n_clusters).reshape(n_rows, n_clusters).astype(np.float64)


def random_signs(rng: np.random.Generator, n_clusters: int, n_rows: int) -> np.ndarray:
    """(n_rows, n_clusters) of ±1, one random bit per entry."""
    n = n_rows * n_clusters
    bits = np.unpackbits(rng.integers(0, 256, size=(n + 7) // 8, dtype=np.uint8))[:n]
    return (1.0 - 2.0 * bits).reshape(n_rows, n_clusters)


def all_signs(n_clusters: int) -> np.ndarray:
    """Every sign pattern (2**C, C): the exact sign-flip distribution for few clusters."""
    codes = np.arange(2 ** n_clusters, dtype=np.int64)[:, None]
    bits = (codes >> np.arange(n_clusters, dtype=np.int64)[None, :]) & 1
    return 1.0 - 2.0 * bits


def cluster_sums(values: np.ndarray, clusters: np.ndarray, n_clusters: int) -> np.ndarray:
    """Sum the rows of ``values`` (P, k) within clusters -> (C, k); NaN must be zeroed before."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    n = len(clusters)
    membership = sparse.csr_matrix((np.ones(n), (np.asarray(clusters), np.arange(n))), shape=(n_clusters, n))
    return np.asarray(membership @ values)


def percentile_ci(replicates: np.ndarray, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval per column (NaN replicates — empty resamples — are ignored)."""
    q = [alpha / 2, 1 - alpha / 2]
    with np.errstate(all="ignore"):
        if np.isnan(replicates).any():
            lo, hi = np.nanquantile(replicates, q, axis=0)
        else:
            lo, hi = np.quantile(replicates, q, axis=0)
    return lo, hi


@dataclass
class Resampler:
    """Draws the cluster weights and sign flips of one prompt set, chunk by chunk.

    The same seed gives the same weights for every call, so statistics computed in separate
    calls on the same prompts are resampled jointly (paired across modes, metrics and sizes).
    """

    n_clusters: int
    n_resamples: int
    seed: int
    chunk_elements: int = CHUNK_ELEMENTS
    progress: Callable[[int], None] | None = None

    def weights(self) -> Iterator[np.ndarray]:
        rng = np.random.default_rng([self.seed, 1])
        for rows in chunks(self.n_resamples, self.n_clusters, self.chunk_elements):
            yield bootstrap_counts(rng, self.n_clusters, rows)
            if self.progress:
                self.progress(rows)

    @property
    def exact_flips(self) -> bool:
        return self.n_clusters <= 20 and 2 ** self.n_clusters <= self.n_resamples

    def signs(self) -> Iterator[np.ndarray]:
        if self.exact_flips:
            yield all_signs(self.n_clusters)
            return
        rng = np.random.default_rng([self.seed, 2])
        for rows in chunks(self.n_resamples, self.n_clusters, self.chunk_elements):
            yield random_signs(rng, self.n_clusters, rows)
            if self.progress:
                self.progress(rows)

    def replicate_sums(self, sums: np.ndarray) -> np.ndarray:
        """(R, k): every resample's weighted cluster sums of each column of ``sums`` (C, k).

        Many columns: count matrix @ sums (one BLAS call per chunk). Few columns: gather the drawn
        clusters directly, skipping the counting. Both use the same draws, so the same numbers.
        """
        sums = np.asarray(sums, dtype=np.float64)
        if sums.shape[1] > 4:
            return np.concatenate([w @ sums for w in self.weights()], axis=0)
        rng = np.random.default_rng([self.seed, 1])
        out = []
        for rows in chunks(self.n_resamples, self.n_clusters, self.chunk_elements):
            idx = rng.integers(0, self.n_clusters, size=(rows, self.n_clusters), dtype=np.int32)
            out.append(np.stack([sums[:, j].take(idx).sum(axis=1) for j in range(sums.shape[1])], axis=1))
            if self.progress:
                self.progress(rows)
        return np.concatenate(out, axis=0)

    def signflip_pvalues(self, diff_sums: np.ndarray) -> np.ndarray:
        """Two-sided sign-flip p per column of cluster sums of paired differences (C, k).

        Exact (all 2**C patterns) when that is no more than the resamples asked for; otherwise
        Monte Carlo with the +1 correction, which keeps the test valid (never anti-conservative).
        """
        diff_sums = np.asarray(diff_sums, dtype=np.float64)
        observed = np.abs(diff_sums.sum(axis=0))
        # ties within float rounding count as "at least as extreme" (as scipy does)
        tol = 1e-12 * np.maximum(np.abs(diff_sums).sum(axis=0), 1e-300)
        if self.exact_flips:
            signs = all_signs(self.n_clusters)
            return (np.abs(signs @ diff_sums) >= observed - tol).sum(axis=0) / signs.shape[0]
        if self.n_clusters >= 64 and diff_sums.shape[1] <= 4:
            hits = self._byte_table_hits(diff_sums, observed - tol)
        else:
            hits = np.zeros(diff_sums.shape[1])
            for signs in self.signs():
                hits += (np.abs(signs @ diff_sums) >= observed - tol).sum(axis=0)
        return (hits + 1.0) / (self.n_resamples + 1.0)

    def _byte_table_hits(self, diff_sums: np.ndarray, threshold: np.ndarray) -> np.ndarray:
        """Many clusters, few statistics: one random byte flips 8 clusters, looked up in a table.

        Σ_c ε_c D_c = total − 2 Σ_{c flipped} D_c, and the flipped sum of each group of 8 clusters
        is a lookup in a 256-entry table, so each resample costs C/8 gathers instead of C flops.
        """
        C, k = diff_sums.shape
        n_bytes = (C + 7) // 8
        padded = np.zeros((n_bytes * 8, k))
        padded[:C] = diff_sums
        bits = ((np.arange(256)[:, None] >> np.arange(8)[None, :]) & 1).astype(np.float64)  # (256, 8)
        tables = np.einsum("bi,jik->kjb", bits, padded.reshape(n_bytes, 8, k))  # (k, n_bytes, 256)
        total = diff_sums.sum(axis=0)
        flat = tables.reshape(k, n_bytes * 256)
        offsets = (np.arange(n_bytes, dtype=np.int32) * 256)[None, :]
        rng = np.random.default_rng([self.seed, 2])
        hits = np.zeros(k)
        for rows in chunks(self.n_resamples, n_bytes, self.chunk_elements):
            idx = rng.integers(0, 256, size=(rows, n_bytes), dtype=np.uint8) + offsets  # int32 flat positions
            for j in range(k):
                flipped = flat[j].take(idx).sum(axis=1)
                hits[j] += (np.abs(total[j] - 2.0 * flipped) >= threshold[j]).sum()
            if self.progress:
                self.progress(rows)
        return hits


# ----------------------------------------------------------------------------- simple paired API


@dataclass
class PairedResult:
    estimate: np.ndarray
    ci_lo: np.ndarray
    ci_hi: np.ndarray
    p: np.ndarray
    replicates: np.ndarray


def paired_cluster_test(diffs: np.ndarray, clusters: np.ndarray | None = None, n_resamples: int = 10_000,
                        seed: int = 0, alpha: float = 0.05, with_pvalues: bool = True,
                        chunk_elements: int = CHUNK_ELEMENTS) -> PairedResult:
    """Mean paired difference per column of ``diffs`` (P prompts × k statistics, NaN = absent).

    Bootstrap: resample clusters of prompts with replacement (percentile CI of the ratio
    estimator Σ_c w_c Σ_{p∈c} d_p / Σ_c w_c n_c). Test: flip the sign of whole clusters.
    Columns share one set of resamples, so k repetitions of a simulation cost one pass.
    """
    diffs = np.asarray(diffs, dtype=np.float64)
    one = diffs.ndim == 1
    if one:
        diffs = diffs[:, None]
    if clusters is None:
        clusters = np.arange(diffs.shape[0])
    codes, clusters = np.unique(np.asarray(clusters), return_inverse=True)
    n_clusters = len(codes)
    present = np.isfinite(diffs)
    num = cluster_sums(np.where(present, diffs, 0.0), clusters, n_clusters)
    den = cluster_sums(present.astype(np.float64), clusters, n_clusters)
    sampler = Resampler(n_clusters, n_resamples, seed, chunk_elements)
    k = diffs.shape[1]
    reps = sampler.replicate_sums(np.concatenate([num, den], axis=1))
    with np.errstate(all="ignore"):
        replicates = reps[:, :k] / reps[:, k:]
        estimate = num.sum(0) / den.sum(0)
    lo, hi = percentile_ci(replicates, alpha)
    p = sampler.signflip_pvalues(num) if with_pvalues else np.full(k, np.nan)
    if one:
        return PairedResult(estimate[0], lo[0], hi[0], p[0], replicates[:, 0])
    return PairedResult(estimate, lo, hi, p, replicates)
