"""Specificity runs on the real battery: the shipped default battery's axes and the paper sweep's
types meet through the one type -> axis map (tracecause.contracts.REASONING_TYPE_AXIS)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from evalsuite.analysis.load import build_benchmarks
from evalsuite.analysis.spec import AnalysisSpec
from evalsuite.analysis.specificity import specificity
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
                    frames.append(pd.DataFrame({
                        "model": model, "rtype": rtype, "paradigm": paradigm, "seed": seed, "mode": mode,
                        "benchmark": bench.name, "axis": bench.axis, "metric": bench.primary.metric,
                        "prompt_id": [f"{bench.name}-{i}" for i in range(12)], "cluster_id": [f"c{i}" for i in range(12)],
                        "value": np.clip(0.2 + lift + rng.normal(0, 0.05, 12), 0, 1), "n_samples": 1, "n_rows": 1,
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
    primary = {b.name: b.primary.metric for b in battery.benchmarks}
    notes: list[str] = []
    rows = pd.DataFrame(specificity(benches, primary, AnalysisSpec().type_axis, 300, 0, 0.05, notes))
    assert not notes, notes
    ddi = rows[rows["statistic"] == "diagonal_dominance"]
    typed = [p for p in sweep.paradigms if p not in ("base", "qa")]
    assert sorted(zip(ddi["paradigm"], ddi["mode"])) == sorted((p, m) for p in typed for m in sweep.eval.modes)
    assert (ddi["estimate"] > 0.5).all() and (ddi["p"] < 0.05).all()
    cells = rows[rows["statistic"] == "z"]
    battery_axes = {b.axis for b in battery.benchmarks}
    per_matrix = cells.groupby(["paradigm", "mode"]).apply(lambda g: (set(g["rtype_a"]), set(g["axis"])))
    assert all(t == set(sweep.trace_types) and a == battery_axes for t, a in per_matrix)
    matched = cells[cells["matched"] == True]  # noqa: E712
    assert len(matched) == len(typed) * len(sweep.eval.modes) * len(sweep.trace_types)
    assert (matched["estimate"] > 1.3).all()  # each type tops its own axis (max z of 3 types is √2)
