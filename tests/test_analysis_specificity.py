"""Specificity runs on the real battery: the shipped default battery's axes and the paper sweep's
types meet through the one type -> axis map (tracecause.contracts.REASONING_TYPE_AXIS)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evalsuite.analysis.load import Benchmark, build_benchmarks
from evalsuite.analysis.spec import AnalysisSpec
from evalsuite.analysis.specificity import specificity
from evalsuite.analysis.specificity_cells import planned_specificity_cells, specificity_cells
from evalsuite.analysis.type_permutation import all_assignments, ddi_weights, orientation, permutation_test
from evalsuite.battery import AXES, load_battery
from launch.spec import load_sweep
from tracecause.contracts import REASONING_TYPE_AXIS


def _prompt_means(battery, sweep, rng) -> pd.DataFrame:
    """One size of the paper sweep on every benchmark of the default battery (12 prompts each); each
    type raises its own axis's primary metric by 0.2, the other axes by 0.02."""
    model = sweep.models[0]
    arms = [(t, p) for p in sweep.paradigms for t in (["none"] if p in ("base", "qa") else sweep.trace_types)]
    frames = []
    for bench in battery.benchmarks:
        for rtype, paradigm in arms:
            for seed in ([0] if paradigm == "base" else sweep.seeds):
                for mode in sweep.eval.modes:
                    lift = 0.2 if REASONING_TYPE_AXIS.get(rtype) == bench.axis else 0.02 * (rtype != "none")
                    lift *= 1 if bench.primary.higher_is == "worse" else -1  # more of the behaviour
                    frames.append(pd.DataFrame({
                        "model": model, "rtype": rtype, "paradigm": paradigm, "seed": seed, "mode": mode,
                        "benchmark": bench.name, "axis": bench.axis, "metric": bench.primary.metric,
                        "prompt_id": [f"{bench.name}-{i}" for i in range(12)], "cluster_id": [f"c{i}" for i in range(12)],
                        "value": np.clip(0.5 + lift + rng.normal(0, 0.05, 12), 0, 1), "n_samples": 1, "n_rows": 1,
                        "n_unparsed": 0, "binary": False, "input": f"{model}.{rtype}.{paradigm}.s{seed}/{mode}",
                        "sha256": "x"}))
    return pd.concat(frames, ignore_index=True)


def test_specificity_matrix_is_computed_on_the_default_battery_and_paper_sweep():
    assert set(REASONING_TYPE_AXIS.values()) <= set(AXES)
    battery = load_battery("default", check_files=False)
    battery.require_primaries()
    sweep = load_sweep("paper")
    assert set(sweep.trace_types) <= set(REASONING_TYPE_AXIS)
    benches = build_benchmarks(_prompt_means(battery, sweep, np.random.default_rng(0)))
    primaries = {b.name: {"metric": b.primary.metric, "higher_is": b.primary.higher_is} for b in battery.benchmarks}
    notes: list[str] = []
    rows = pd.DataFrame(specificity(benches, primaries, AnalysisSpec().type_axis, 300, 0, 0.05, notes))
    assert not notes, notes
    ddi = rows[rows["statistic"] == "diagonal_dominance"]
    typed = [p for p in sweep.paradigms if p not in ("base", "qa")]
    assert sorted(zip(ddi["paradigm"], ddi["mode"])) == sorted((p, m) for p in typed for m in sweep.eval.modes)
    # the cells a plan enumerates without data are the cells analysed
    runs = [(sweep.models[0], t, p, s) for p in typed for t in sweep.trace_types for s in sweep.seeds]
    planned = planned_specificity_cells(runs, sweep.eval.modes, {b.name: b.axis for b in battery.benchmarks},
                                        AnalysisSpec().type_axis)
    assert sorted(c.key for c in planned) == sorted(zip(ddi["size"], ddi["mode"], ddi["paradigm"]))
    assert {c.n_assignments for c in planned} == {1680} and (ddi["n_seeds"] == 3).all()
    assert (ddi["estimate"] > 0.5).all() and (ddi["p"] < 0.05).all()
    cells = rows[rows["statistic"] == "z"]
    battery_axes = {b.axis for b in battery.benchmarks}
    per_matrix = cells.groupby(["paradigm", "mode"]).apply(lambda g: (set(g["rtype_a"]), set(g["axis"])))
    assert all(t == set(sweep.trace_types) and a == battery_axes for t, a in per_matrix)
    matched = cells[cells["matched"] == True]  # noqa: E712
    assert len(matched) == len(typed) * len(sweep.eval.modes) * len(sweep.trace_types)
    assert (matched["estimate"] > 1.3).all()  # each type tops its own axis (max z of 3 types is √2)


# ----------------------------------------------------------------------------- validation by simulation
# The default battery's axis structure (evil 4 benchmarks, misleading 1 — TruthfulQA MC1, higher is
# better — submission 2, and axes no type owns), the paper sweep's three types, 3 seeds each.
# Prompt rates vary by prompt (shared by every run); each training run shifts every benchmark
# (sd seed_sd) and all its benchmarks together (sd shared_sd); K samples per prompt are drawn.

BATTERY = [(b.name, b.axis, b.primary.higher_is, b.primary.metric)
           for b in load_battery("default", check_files=False).benchmarks]
TYPES = sorted(REASONING_TYPE_AXIS)


def _simulate(rng, reps: int, seeds: int = 3, effect: float = 0.0, seed_sd: float = 0.03, shared_sd: float = 0.02,
              prompts: int = 40, k: int = 4, only: str | None = None) -> np.ndarray:
    """(reps, runs, benchmarks, prompts) prompt means; runs ordered type by type. ``effect``: each type
    (or ``only`` that one) adds that much of its own axis's behaviour (a higher_is better metric drops)."""
    labels = np.repeat(np.arange(len(TYPES)), seeds)
    more = np.array([1.0 if h == "worse" else -1.0 for _, _, h, _ in BATTERY])  # behaviour -> metric
    own = np.array([[REASONING_TYPE_AXIS[t] == a and only in (None, t) for _, a, _, _ in BATTERY] for t in TYPES])
    base = np.where(more > 0, 0.12, 0.6)
    prompt = np.clip(base[None, None, :, None] + rng.normal(0, 0.08, (reps, 1, len(BATTERY), prompts)), 0.01, 0.99)
    shift = (rng.normal(0, seed_sd, (reps, len(labels), len(BATTERY), 1))
             + rng.normal(0, shared_sd, (reps, len(labels), 1, 1)) + effect * own[labels][None, :, :, None])
    return rng.binomial(k, np.clip(prompt + more[None, None, :, None] * shift, 0, 1)) / k


def _rejections(values: np.ndarray, oriented: bool = True, alpha: float = 0.05) -> float:
    """Share of replications the run-level permutation test (what specificity() runs) rejects."""
    sign = np.array([orientation(h, n) if oriented else 1.0 for n, _, h, _ in BATTERY])
    weights = ddi_weights(TYPES, [a for _, a, _, _ in BATTERY], REASONING_TYPE_AXIS)
    seeds = values.shape[1] // len(TYPES)
    _, p, n_used, exact = permutation_test(values.mean(-1) * sign, [seeds] * len(TYPES), weights, 1000,
                                           np.random.default_rng(0))
    assert exact and n_used == {3: 1680, 2: 90}[seeds]
    return float((p < alpha).mean())


def test_the_simulated_structure_is_the_default_battery():
    own_axes = [a for _, a, _, _ in BATTERY if a in REASONING_TYPE_AXIS.values()]
    assert {a: own_axes.count(a) for a in own_axes} == {"evil": 4, "misleading": 1, "submission": 2}
    assert [h for n, a, h, _ in BATTERY if a == "misleading"] == ["better"]  # TruthfulQA MC1 correct


@pytest.mark.parametrize("seeds,seed_sd,shared_sd,reps", [(3, 0.0, 0.0, 1000), (3, 0.03, 0.02, 2000),
                                                      (3, 0.01, 0.05, 1000), (2, 0.03, 0.02, 1000)])
def test_null_rejection_is_nominal_with_and_without_seed_shifts(seeds, seed_sd, shared_sd, reps):
    """No type effect: 3-7 % rejected at alpha 5 %, whether or not training runs shift (per benchmark,
    or all of a run's benchmarks together: what permuting within prompts could not see)."""
    values = _simulate(np.random.default_rng(11), reps, seeds=seeds, seed_sd=seed_sd, shared_sd=shared_sd)
    assert 0.03 <= _rejections(values) <= 0.07


def test_each_type_moving_its_own_axis_is_detected_with_every_benchmarks_direction():
    values = _simulate(np.random.default_rng(12), 300, effect=0.05)
    assert _rejections(values) >= 0.8
    # the same data with TruthfulQA's direction ignored (the old statistic): the misleading type's
    # drop in MC1 counts against specificity and the detection rate collapses
    assert _rejections(values, oriented=False) <= 0.3


def _benches(values: np.ndarray, model: str = "m", mode: str = "think", paradigm: str = "qta") -> dict:
    """One replication (runs, benchmarks, prompts) of _simulate as the analysis's Benchmark objects."""
    seeds = values.shape[0] // len(TYPES)
    prompts = values.shape[-1]
    out = {}
    for j, (name, axis, _, metric) in enumerate(BATTERY):
        series, seen = {}, {}
        for r in range(values.shape[0]):
            cond = (model, TYPES[r // seeds], paradigm)
            series.setdefault((cond, mode, metric), {})[r % seeds] = values[r, j]
            seen.setdefault(cond, []).append(r % seeds)
        out[name] = Benchmark(name, axis, np.array([f"p{i}" for i in range(prompts)]), np.arange(prompts) // 2,
                              prompts // 2, series, seen, {metric: True}, {})
    return out


PRIMARIES = {n: {"metric": m, "higher_is": h} for n, _, h, m in BATTERY}


def _ddi_row(rows: list[dict]) -> dict:
    return next(r for r in rows if r["statistic"] == "diagonal_dominance")


def test_whole_runs_are_permuted_so_run_shifts_do_not_make_false_positives():
    """Through specificity() itself: runs that shift all their benchmarks together, no type effect.
    Permuting type labels within prompts (the old test, 200 draws) rejected 25 of these 150 (17 %)."""
    values = _simulate(np.random.default_rng(5), 150, seed_sd=0.01, shared_sd=0.05)
    type_axis = AnalysisSpec().type_axis
    p = np.array([_ddi_row(specificity(_benches(v), PRIMARIES, type_axis, 100, 0, 0.05, []))["p"] for v in values])
    assert (p < 0.05).mean() <= 0.08


def test_a_misleading_effect_lowers_truthfulqa_and_counts_for_specificity():
    """Only the misleading type moves: MC1 correct drops (higher is better). Its z on its own axis is
    the top of that column and the DDI is positive; ignoring the direction made both negative."""
    values = _simulate(np.random.default_rng(6), 1, effect=0.15, only="misleading", seed_sd=0.005, shared_sd=0.0,
                       prompts=200)[0]
    mc1 = values[:, [n for n, *_ in BATTERY].index("truthfulqa")].mean(-1)  # runs: evil, misleading, submissive
    assert mc1[3:6].mean() < mc1[np.r_[0:3, 6:9]].mean() - 0.1
    rows = specificity(_benches(values), PRIMARIES, AnalysisSpec().type_axis, 200, 0, 0.05, [])
    z = {(r["rtype_a"], r["axis"]): r["estimate"] for r in rows if r["statistic"] == "z"}
    assert z[("misleading", "misleading")] > 1.3 > max(z[(t, "misleading")] for t in TYPES if t != "misleading")
    ddi = _ddi_row(rows)
    assert ddi["estimate"] > 0 and "all 1680 distinct assignments (exact)" in ddi["method"]


def test_one_seed_per_type_says_it_cannot_reach_significance():
    """1 seed per type: T! = 6 assignments, so p >= 1/6 however large the effect; the row says so."""
    values = _simulate(np.random.default_rng(7), 1, seeds=1, effect=0.3, seed_sd=0.0, shared_sd=0.0)[0]
    ddi = _ddi_row(specificity(_benches(values), PRIMARIES, AnalysisSpec().type_axis, 500, 0, 0.05, []))
    assert ddi["estimate"] > 1 and ddi["p"] == pytest.approx(1 / 6) and ddi["n_seeds"] == 1
    assert "all 6 distinct assignments" in ddi["method"] and "cannot reach significance" in ddi["method"]


def test_many_runs_are_permuted_by_monte_carlo_with_the_plus_one():
    values = _simulate(np.random.default_rng(8), 2, seeds=8, effect=0.3)  # 24!/(8!)^3 ≈ 9e9 assignments
    sign = np.array([orientation(h, n) for n, _, h, _ in BATTERY])
    weights = ddi_weights(TYPES, [a for _, a, _, _ in BATTERY], REASONING_TYPE_AXIS)
    _, p, n_used, exact = permutation_test(values.mean(-1) * sign, [8, 8, 8], weights, 999, np.random.default_rng(0))
    assert not exact and n_used == 999 and np.allclose(p, 1 / 1000)


def test_assignments_are_every_distinct_relabelling_once():
    labels = all_assignments([2, 1, 3])
    assert labels.shape == (60, 6) and len({tuple(r) for r in labels}) == 60
    assert (np.stack([np.bincount(r, minlength=3) for r in labels]) == [2, 1, 3]).all()


def test_the_cell_rule_leaves_out_partial_runs_and_cells_without_two_matched_types():
    axes = {"e1": "evil", "e2": "evil", "m1": "misleading", "c1": "capability"}
    type_axis = {"evil": "evil", "misleading": "misleading"}
    full = [("m", t, "qta", s) for t in ("evil", "misleading", "placebo") for s in (0, 1, 2)]
    runs = {(b, "think"): full for b in axes}
    runs[("e2", "think")] = [r for r in full if r != ("m", "placebo", "qta", 2)]
    runs[("e1", "no_think")] = [r for r in full if r[1] != "misleading"]  # one matched type left: no test
    runs[("m1", "no_think")] = [("m", "evil", "qa", 0)]  # not a typed paradigm
    notes: list[str] = []
    cells = specificity_cells(runs, axes, type_axis, notes)
    assert [c.key for c in cells] == [("m", "think", "qta")]
    cell = cells[0]
    assert cell.types == ("evil", "misleading", "placebo") and cell.seeds == ((0, 1, 2), (0, 1, 2), (0, 1))
    assert cell.matched == ("evil", "misleading") and cell.axes == ("capability", "evil", "misleading")
    assert cell.n_assignments == 560 and cell.min_p == 1 / 560
    assert any("placebo.s2" in n and "left out" in n for n in notes)
    assert any("m/no_think/qta" in n and "skipped" in n for n in notes)


def test_an_undeclared_direction_is_refused_naming_the_benchmark():
    with pytest.raises(ValueError, match="'truthfulqa'.*'higher'.*'worse' or 'better'"):
        orientation("higher", "truthfulqa")
