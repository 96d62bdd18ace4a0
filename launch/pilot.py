"""Variance components from a finished pilot sweep, per benchmark, on its declared primary metric.

``tracecause plan SWEEP --pilot FINISHED_SWEEP`` sizes the study with what the pilot measured. Each
benchmark is read on the primary metric the pilot's own finished analysis used
(``<pilot>/analysis/missing.json``: ``primary_metrics``), through the analysis's load path
(finished evals only, a prompt's value = the mean of its parsed samples), so no two metrics on
different scales are ever pooled. Components (launch.power's model):

    sample   pooled within-prompt variance of single samples (arm x seed x mode x prompt cells)
    prompt   prompt x arm interaction: each run's prompt-level deviations from the runs of its
             model size and mode, less sampling noise; split by a one-way ANOVA over paraphrase
             clusters into a cluster-shared part (icc) and the rest
    seed     seed-to-seed variance of trained arms' means, pooled over every arm with >= 2 seeds
             (seed x prompt ANOVA per arm, as the analysis' seed-level inference does)

A component the pilot cannot measure (one seed per arm, one sample per prompt, singleton
clusters) stays at launch.power's assumed default, and the plan says which.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from tracecause.config import ConfigError
from tracecause.contracts import SweepLayout, require_sweep_folder
from tracecause.io import is_complete, read_json

from launch import power

MISSING_FILE = "missing.json"  # evalsuite.analysis.run.MISSING_FILE (written with the analysis)


def analyze_fix(pilot: Path) -> str:
    return f"run `python -m evalsuite analyze {pilot}` first (a pilot is a finished sweep with a finished analysis)"


def read_primaries(pilot: str | Path) -> dict[str, str]:
    """benchmark -> the primary metric the pilot's finished analysis used; refused without one."""
    try:  # the one rule of what a sweep folder is (tracecause.contracts), said as a --pilot error
        pilot = require_sweep_folder(pilot, need_spec=True)
    except FileNotFoundError as e:
        raise ConfigError("--pilot", str(pilot), f"{e} (a pilot is a finished sweep)") from None
    layout = SweepLayout(pilot)
    missing = layout.analysis / MISSING_FILE
    if not is_complete(layout.analysis) or not missing.is_file():
        raise ConfigError(str(missing), "primary_metrics", f"the pilot has no finished analysis: {analyze_fix(pilot)}")
    primaries = read_json(missing).get("primary_metrics")
    if not primaries:
        raise ConfigError(str(missing), "primary_metrics", f"absent or empty (the analysis predates declared "
                                                           f"primaries, or found no benchmark): {analyze_fix(pilot)}")
    return {str(b): str(m) for b, m in primaries.items()}


def pilot_components(pilot: str | Path) -> dict[str, tuple[str, power.Components]]:
    """benchmark -> (primary metric, components measured by the pilot; the rest assumed)."""
    from evalsuite.analysis.load import build_benchmarks, discover, load_prompt_means
    from evalsuite.analysis.spec import read_sweep_spec

    pilot = Path(pilot)
    primaries = read_primaries(pilot)
    inv = discover(pilot, read_sweep_spec(pilot))
    benches = build_benchmarks(load_prompt_means(inv))
    samples = sample_variances([e.path for e in inv.evals], primaries)
    out = {}
    for name, metric in primaries.items():
        if name in benches:
            out[name] = (metric, bench_components(pilot, benches[name], metric, samples.get(name)))
    return out


def bench_components(pilot: Path, bench, metric: str, sample: tuple[float, float] | None) -> power.Components:
    c, src = power.default_components(), {}
    where = f"pilot {pilot.name}"
    sample_var, k = sample if sample else (None, 1.0)
    if sample_var is not None:
        c, src["sample"] = replace(c, sample=sample_var ** 0.5), f"{where} (K = {k:.3g})"
    inter = interaction(bench, metric, (c.sample ** 2) / k)
    if inter is not None:
        var, icc, runs = inter
        c, src["prompt"] = replace(c, prompt=var ** 0.5), f"{where} ({runs} runs)"
        if icc is not None:
            c, src["icc"] = replace(c, icc=icc), where
    seed = pooled_seed_variance(bench, metric)
    if seed is not None:
        c, src["seed"] = replace(c, seed=seed[0] ** 0.5), f"{where} (pooled, {seed[1]} df)"
    else:
        src["seed"] = f"{power.ASSUMED}: the pilot has no arm with 2+ seeds"
    return replace(c, sources=tuple(src.items()))


def sample_variances(paths: list[Path], primaries: dict[str, str]) -> dict[str, tuple[float, float]]:
    """benchmark -> (pooled within-prompt variance of one sample, mean K), primary metric only;
    absent where no cell has 2+ parsed samples."""
    import pandas as pd
    import pyarrow.parquet as pq

    cells = []
    for path in paths:
        t = pq.read_table(path, columns=["benchmark", "metric", "prompt_id", "value", "parsed"]).to_pandas()
        t = t[t["metric"].astype(str) == t["benchmark"].astype(str).map(primaries)]
        t = t[t["parsed"].fillna(True).astype(bool) & t["value"].notna()]
        g = t.groupby(["benchmark", "prompt_id"], observed=True)["value"].agg(["var", "count"]).reset_index()
        cells.append(g)
    if not cells:
        return {}
    df = pd.concat(cells, ignore_index=True)
    out = {}
    for name, g in df.groupby("benchmark"):
        multi = g[g["count"] >= 2]
        if len(multi):
            dof = multi["count"] - 1
            out[str(name)] = (float((dof * multi["var"]).sum() / dof.sum()), float(g["count"].mean()))
    return out


def _runs(bench, metric: str):
    """(model, mode) -> (R, P) prompt-level means of every run (arm x seed) with that metric."""
    groups: dict = {}
    for (cond, mode, m), by_seed in bench.series.items():
        if m == metric:
            groups.setdefault((cond[0], mode), []).extend(by_seed.values())
    return {k: np.stack(v) for k, v in groups.items() if len(v) >= 2}


def interaction(bench, metric: str, noise: float) -> tuple[float, float | None, int] | None:
    """(prompt x arm variance, its cluster-shared share or None, runs used); None without 2 runs."""
    ms_b, ms_w, m0, runs = [], [], [], 0
    for Y in _runs(bench, metric).values():
        keep = np.isfinite(Y).all(0)
        if keep.sum() < 3:
            continue
        R = len(Y)
        D = Y[:, keep] - Y[:, keep].mean(0)  # prompt main effects cancel (shared by every run)
        D = (D - D.mean(1, keepdims=True)) * np.sqrt(R / (R - 1))  # each run's level is its effect + seed shift
        codes, inv = np.unique(bench.clusters[keep], return_inverse=True)
        C, P = len(codes), D.shape[1]
        n = np.bincount(inv, minlength=C).astype(float)
        means = np.stack([np.bincount(inv, weights=row, minlength=C) / n for row in D])
        if C >= 2:
            ms_b.append(float((n * means ** 2).sum(1).mean() / (C - 1)))  # D's overall mean is 0
            m0.append((P - (n ** 2).sum() / P) / (C - 1))
        if P > C:
            ms_w.append(float(((D - means[:, inv]) ** 2).sum(1).mean() / (P - C)))
        runs += R
    if not ms_b:
        return None
    between = float(np.mean(ms_b))
    if not ms_w:  # every cluster one prompt: no split into shared and own parts
        return max(0.0, between - noise), None, runs
    within = float(np.mean(ms_w))
    shared = max(0.0, (between - within) / float(np.mean(m0)))
    own = max(0.0, within - noise)
    total = shared + own
    return total, (shared / total if total > 0 else None), runs


def pooled_seed_variance(bench, metric: str) -> tuple[float, int] | None:
    """(sigma_seed^2 pooled over trained arms with 2+ seeds, its df); None if no such arm."""
    num, dof = 0.0, 0
    for (cond, _, m), by_seed in bench.series.items():
        if m != metric or cond[2] == "base" or len(by_seed) < 2:
            continue
        Y = np.stack(list(by_seed.values()))
        Y = Y[:, np.isfinite(Y).all(0)]
        S, P = Y.shape
        if P < 2:
            continue
        x = Y.mean(1)
        resid = Y - x[:, None] - Y.mean(0)[None, :] + Y.mean()
        ms_resid = (resid ** 2).sum() / ((S - 1) * (P - 1))
        num += (S - 1) * (x.var(ddof=1) - ms_resid / P)
        dof += S - 1
    return (max(0.0, num / dof), dof) if dof else None
