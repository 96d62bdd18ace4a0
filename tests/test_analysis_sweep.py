"""analyze on simulated sweeps: planted effects are recovered, gaps are named, bad input fails early."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from evalsuite.analysis.cli import main
from evalsuite.analysis.config import AnalysisConfig
from evalsuite.analysis.multiplicity import holm
from evalsuite.analysis.run import analyze
from evalsuite.analysis.simulate import SimSpec, simulate_sweep
from tracecause.contracts import EFFECT_COLUMNS, EFFECT_KINDS

FAST = dict(resamples=600, progress=False, wandb=False, figures=False)


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep") / "sim-sweep"
    truth = simulate_sweep(root, SimSpec.small(), seed=0)
    # 3000 draws: the Monte Carlo p floor (1/3001) times the 72-test Holm family stays below 0.05
    result = analyze(root, AnalysisConfig(**{**FAST, "resamples": 3000}))
    return root, truth, result.effects


def _truth(truth, r) -> float:
    a, b = (r["size"], r["rtype_a"], r["paradigm"]), (r["size"], r["rtype_b"], r["paradigm_b"])
    if r["statistic"] == "difference":
        return truth.contrast(a, b, r["mode"], r["axis"])
    if r["statistic"] == "no_think_effect":
        return truth.contrast(a, b, "no_think", r["axis"])
    if r["statistic"] == "did":
        return truth.contrast(a, b, "think", r["axis"]) - truth.contrast(a, b, "no_think", r["axis"])
    raise KeyError(r["statistic"])


def test_effects_file_follows_the_contract(analysed):
    root, _, df = analysed
    on_disk = pd.read_parquet(root / "analysis" / "effects.parquet")
    assert tuple(on_disk.columns[: len(EFFECT_COLUMNS)]) == EFFECT_COLUMNS
    # every kind but replicate_split, which needs >= 5 seeds an arm (tests/test_analysis_stats.py)
    assert set(on_disk["kind"]) == set(EFFECT_KINDS) - {"replicate_split"}
    assert (root / "analysis" / "_COMPLETE").is_file()
    assert (root / "analysis" / "report.md").is_file() and (root / "analysis" / "report.html").is_file()
    lin = on_disk[on_disk["p"].notna()]
    assert (lin["ci_lo"] <= lin["estimate"]).all() and (lin["estimate"] <= lin["ci_hi"]).all()
    assert (lin["p_adj"] >= lin["p"] - 1e-12).all()
    trained = on_disk[(on_disk["kind"] == "training")]
    assert set(trained["n_seeds"]) == {2} and set(trained["n_clusters"]) == {24}
    assert (trained["n_prompts"] == 48).all()
    assert on_disk["input_hash"].str.len().eq(16).all()
    # the confirmatory family is Holm-adjusted as one family
    conf = on_disk[on_disk["family"] == "confirmatory"]
    assert len(conf) > 0
    np.testing.assert_allclose(conf["p_adj"], holm(conf["p"].to_numpy()))


def test_planted_effects_are_recovered(analysed):
    _, truth, df = analysed
    lin = df[df["kind"].isin(["training", "amplification", "content", "answer_free", "internalisation"])
             & (df["statistic"] != "ratio")].copy()
    lin["truth"] = [_truth(truth, r) for r in lin.to_dict("records")]
    covered = (lin["ci_lo"] <= lin["truth"]) & (lin["truth"] <= lin["ci_hi"])
    assert covered.mean() >= 0.85, f"only {covered.mean():.2f} of {len(lin)} CIs cover the planted effect"
    harmful = lin[lin["metric"] == "harmful"]
    assert np.corrcoef(harmful["estimate"], harmful["truth"])[0, 1] > 0.6
    # errors are the size sampling noise predicts: mean |error| ≈ 0.8 SE ≈ 0.41 CI half-widths
    half = (lin["ci_hi"] - lin["ci_lo"]) / 2
    assert (lin["estimate"] - lin["truth"]).abs().mean() / half.mean() < 0.6
    # the strongest planted contrast is found, Holm-adjusted
    amp = df[(df["kind"] == "amplification") & (df["rtype_a"] == "evil") & (df["axis"] == "evil")
             & (df["mode"] == "think") & (df["metric"] == "harmful") & (df["size"] == "sim-4b")].iloc[0]
    assert amp["family"] == "confirmatory" and amp["p_adj"] < 0.05
    assert amp["ci_lo"] <= truth.contrast(("sim-4b", "evil", "qta"), ("sim-4b", "none", "qa"), "think",
                                          "evil") <= amp["ci_hi"]
    # a planted null: evil vs misleading on the axis neither of them matches
    null = df[(df["kind"] == "content") & (df["axis"] == "submission") & (df["rtype_a"] == "evil")
              & (df["rtype_b"] == "misleading")]
    assert len(null) == 16 and (null["p_adj"] < 0.05).sum() <= 1


def test_internalisation_scale_and_specificity(analysed):
    _, truth, df = analysed
    ratio = df[(df["statistic"] == "ratio") & (df["arm_a"] == "sim-4b.evil.qta.s0+s1")
               & (df["axis"] == "evil") & (df["metric"] == "harmful")].iloc[0]
    want = truth.contrast(("sim-4b", "evil", "qta"), ("sim-4b", "none", "base"), "no_think", "evil") / \
        truth.contrast(("sim-4b", "evil", "qta"), ("sim-4b", "none", "base"), "think", "evil")
    assert ratio["mode"] == "no_think_over_think" and ratio["ci_lo"] <= want <= ratio["ci_hi"]
    slope = df[(df["kind"] == "scale") & (df["arm_a"] == "evil.qta") & (df["arm_b"] == "none.qa")
               & (df["axis"] == "evil") & (df["mode"] == "think") & (df["metric"] == "harmful")].iloc[0]
    assert slope["ci_lo"] <= truth.slope(("evil", "qta"), ("none", "qa"), "think", "evil") <= slope["ci_hi"]
    assert slope["size"] == "sim-0.6b+sim-4b"
    ddi = df[(df["kind"] == "specificity") & (df["statistic"] == "diagonal_dominance") & (df["paradigm"] == "qta")
             & (df["mode"] == "think")]
    assert len(ddi) == 2 and (ddi["estimate"] > 0.5).all() and (ddi["p"] < 0.05).all()
    cells = df[(df["kind"] == "specificity") & (df["statistic"] == "z") & (df["paradigm"] == "qta")
               & (df["mode"] == "think") & (df["size"] == "sim-4b")]
    assert cells[cells["matched"] == "True"]["estimate"].min() > cells[cells["matched"] == "False"]["estimate"].max()


def test_missing_arm_and_unfinished_eval_are_named_and_not_filled(tmp_path):
    root = tmp_path / "gappy"
    simulate_sweep(root, SimSpec.small(n_clusters=6), seed=1, drop_arms=["sim-4b.misleading.qta.s1"],
                   unfinished=["sim-0.6b.none.base.s0/no_think"])
    res = analyze(root, AnalysisConfig(**{**FAST, "resamples": 200}))
    missing = json.loads((root / "analysis" / "missing.json").read_text())
    assert missing["missing_arms"] == ["sim-4b.misleading.qta.s1"]
    assert missing["unfinished_evals"] == ["sim-0.6b.none.base.s0/no_think"]
    assert any("no base eval for sim-0.6b" in n for n in missing["notes"])
    for name in ("report.md", "report.html"):
        text = (root / "analysis" / name).read_text()
        assert "sim-4b.misleading.qta.s1" in text and "sim-0.6b.none.base.s0/no_think" in text
    df = res.effects
    assert df[(df["kind"] == "training") & (df["size"] == "sim-0.6b") & (df["mode"] == "no_think")].empty
    assert not df[(df["kind"] == "training") & (df["size"] == "sim-0.6b") & (df["mode"] == "think")].empty
    one_seed = df[df["arm_a"] == "sim-4b.misleading.qta.s0"]
    assert len(one_seed) > 0 and "sim-4b.misleading.qta.s0+s1" not in set(df["arm_a"])


def test_cli_is_deterministic_and_rejects_bad_input_before_work(tmp_path, capsys):
    root = tmp_path / "cli"
    simulate_sweep(root, SimSpec.small(models=("sim-1.7b",), n_clusters=5, seeds=(0,)), seed=2)
    args = [str(root), "--resamples", "200", "--no-wandb", "--no-progress", "figures=false"]
    assert main(args) == 0
    first = pd.read_parquet(root / "analysis" / "effects.parquet")
    assert main(args) == 0
    pd.testing.assert_frame_equal(first, pd.read_parquet(root / "analysis" / "effects.parquet"))
    assert "effects ->" in capsys.readouterr().out

    assert main([str(root), "resamplez=5", "--no-wandb"]) == 2
    assert "did you mean 'resamples'" in capsys.readouterr().err
    spec = yaml.safe_load((root / "sweep.yaml").read_text())
    spec["analysis"]["confirmatory"] = [{"kind": "content", "colour": "red"}]
    bad = tmp_path / "bad"
    simulate_sweep(bad, SimSpec.small(models=("sim-1.7b",), n_clusters=4, seeds=(0,)), analysis=spec["analysis"])
    assert main([str(bad), "--no-wandb", "--resamples", "200"]) == 2
    assert "colour" in capsys.readouterr().err
    assert not (bad / "analysis").exists()
    assert main([str(tmp_path / "nope"), "--no-wandb"]) == 2
