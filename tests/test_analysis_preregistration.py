"""The confirmatory family as a pre-registration: enumerated at plan time from the design, frozen at
submit, the very rows analyze adjusts with Holm; a changed analysis section is refused unless amended."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from evalsuite.analysis.config import AnalysisConfig
from evalsuite.analysis.family import Design, plan_family, family_key
from evalsuite.analysis.multiplicity import assign_families, holm
from evalsuite.analysis.run import analyze
from evalsuite.analysis.simulate import SimSpec, sim_arms, simulate_sweep
from evalsuite.analysis.spec import AnalysisSpec
from launch.plan import PlanError, make_plan
from tracecause.config import ConfigError
from tracecause.contracts import ANALYSIS_PLAN_FILE, SweepLayout

CFG = AnalysisConfig(resamples=200, progress=False, wandb=False, figures=False)
SIM = SimSpec.small(models=("sim-0.6b",), seeds=(0, 1, 2), n_clusters=10, k_samples=2)


def test_the_paper_sweeps_family_is_one_test_per_finding_per_size_and_three_seeds(tmp_path):
    plan = make_plan("paper", sweep_dir=tmp_path / "paper", missing_benchmarks_ok=True)
    family = plan.inputs.family
    assert plan.spec.seeds == [0, 1, 2]
    assert len(family["tests"]) == plan.inputs.family_size == 65  # 13 per size x 5 sizes
    per_size = pd.DataFrame(family["tests"]).groupby(["size", "kind"]).size().unstack()
    assert (per_size[["amplification", "specificity", "answer_free", "internalisation"]] == [3, 1, 6, 3]).all().all()
    # each type on its own declared benchmark, never on another type's
    own = family["type_benchmark"]
    assert all(t["benchmark"] == own[t["rtype_a"]] for t in family["tests"] if t["kind"] != "specificity")
    from launch.plan_view import format_plan

    text = format_plan(plan)
    assert "confirmatory family: 65 tests" in text and "0.05/65 = 0.00077" in text


def test_a_filter_that_names_nothing_and_a_family_too_large_are_refused_before_submit(tmp_path):
    nothing = ["analysis.confirmatory=[{kind: amplification, paradigm: qt}]"]
    with pytest.raises(PlanError, match=r"paper\.yaml: analysis\.confirmatory\[0\] matches no test"):
        make_plan("paper", nothing, sweep_dir=tmp_path / "a", missing_benchmarks_ok=True)
    everything = ["analysis.confirmatory=[{kind: training}]"]  # every arm x mode x benchmark x metric... > 100
    with pytest.raises(PlanError, match=r"confirmatory tests, more than analysis\.max_family=100"):
        make_plan("paper", everything, sweep_dir=tmp_path / "b", missing_benchmarks_ok=True)
    ok = make_plan("paper", [*everything, "analysis.max_family=1000"], sweep_dir=tmp_path / "c",
                   missing_benchmarks_ok=True)
    assert ok.inputs.family_size > 100


def test_type_benchmark_must_name_a_battery_benchmark(tmp_path):
    with pytest.raises(PlanError, match=r"analysis\.type_benchmark\.evil.*not a benchmark of the battery"):
        make_plan("paper", ["analysis.type_benchmark={evil: nope}"], sweep_dir=tmp_path / "a",
                  missing_benchmarks_ok=True)


def test_analyze_adjusts_exactly_the_planned_family(tmp_path):
    """One source of truth: the rows analyze calls confirmatory are, key for key, the tests plan froze."""
    root = tmp_path / "sweep"
    simulate_sweep(root, SIM, preregister=True)
    frozen = json.loads((root / ANALYSIS_PLAN_FILE).read_text())
    design = Design.from_arms(sim_arms(SIM), SIM.modes, json.loads(SweepLayout(root).expected.read_text())["benchmarks"])
    assert frozen["family"] == plan_family(design, AnalysisSpec()).keys
    df = analyze(root, CFG).effects
    confirm = df[df["family"] == "confirmatory"]
    assert sorted(family_key(r) for r in confirm.to_dict("records")) == sorted(frozen["family"])
    assert set(confirm["kind"]) == {"amplification", "specificity", "answer_free", "internalisation"}
    assert confirm["p_holm"].to_numpy() == pytest.approx(holm(confirm["p"].to_numpy()))


def test_a_planned_test_without_a_row_still_counts_in_holm():
    rows = pd.DataFrame([{"kind": "amplification", "statistic": "difference", "benchmark": "b", "metric": "m",
                          "mode": "think", "size": "s", "paradigm": "qta", "paradigm_b": "qa", "rtype_a": t,
                          "rtype_b": "none", "p": p} for t, p in (("evil", 0.01), ("misleading", 0.02))])
    planned = [family_key(r) for r in rows.to_dict("records")] + ["amplification|difference|b|m|think|s|qta|qa|gone|none"]
    out = assign_families(rows, [{"kind": "amplification"}], {"b": "m"}, {}, planned)
    assert out["p_holm"].tolist() == pytest.approx([0.03, 0.04])  # m = 3, not 2: the lost test is p = 1
    # a matching row that was never planned cannot join the family after the data are seen
    late = assign_families(rows, [{"kind": "amplification"}], {"b": "m"}, {}, planned[:1])
    assert late["family"].tolist() == ["confirmatory", "exploratory"] and late["p_holm"].iloc[0] == pytest.approx(0.01)


def test_a_changed_analysis_section_is_refused_unless_amended_and_then_said_everywhere(tmp_path):
    root = tmp_path / "sweep"
    simulate_sweep(root, SIM, preregister=True)
    spec_file = SweepLayout(root).spec
    sweep = yaml.safe_load(spec_file.read_text())
    sweep["analysis"] = {"confirmatory": [{"kind": "training", "mode": "think", "metric": "primary"}]}
    spec_file.write_text(yaml.safe_dump(sweep))
    with pytest.raises(ConfigError, match=r"sweep\.yaml: analysis: differs from the analysis frozen at submit.*"
                                          r"analysis\.confirmatory: .*--amend"):
        analyze(root, CFG)
    assert not SweepLayout(root).analysis.exists()  # nothing written
    with pytest.raises(ConfigError, match=r"alpha: 0\.05 -> 0\.1"):
        analyze(root, AnalysisConfig(**{**CFG.__dict__, "alpha": 0.1, "amend": False}))
    result = analyze(root, AnalysisConfig(**{**CFG.__dict__, "amend": True}))
    confirm = result.effects[result.effects["family"] == "confirmatory"]
    assert set(confirm["kind"]) == {"training"}  # the amended filters, applied as amended
    assert result.missing["amended_after_data"] and "analysis.confirmatory" in result.missing["amended_after_data"][0]
    report = (result.out_dir / "report.md").read_text()
    assert "amended after data" in report.lower()
    saved = json.loads((result.out_dir / "sweep_analysis_spec.json").read_text())
    assert saved["amended"] and saved["preregistered"]


def test_without_a_frozen_plan_the_analysis_runs_as_declared(tmp_path):
    root = tmp_path / "sweep"
    simulate_sweep(root, SIM)
    df = analyze(root, CFG).effects
    assert (df["family"] == "confirmatory").any()
    assert np.isfinite(df.loc[df["family"] == "confirmatory", "p_holm"]).all()
