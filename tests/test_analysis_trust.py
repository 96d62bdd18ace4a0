"""The analysis never reports a number it cannot stand behind: declared primaries, judge failures
carried and flagged, single-run inference said so, every missing cell named, stale scores refused."""
from __future__ import annotations

import json
import os

import pandas as pd
import pytest

from evalsuite.analysis.config import AnalysisConfig
from evalsuite.analysis.run import analyze
from evalsuite.analysis.simulate import SimSpec, simulate_sweep
from launch.graph import Task, done
from tracecause.config import ConfigError
from tracecause.contracts import EFFECT_JUDGE_COLUMNS, EXPORT_META, SCORES_FILE, SweepLayout
from tracecause.io import atomic_write_json

FAST = AnalysisConfig(resamples=300, progress=False, wandb=False, figures=False)
FAILING = "sim-4b.evil.qta"  # both seeds of this arm: half of its judge replies fail to parse


@pytest.fixture(scope="module")
def unparsed(tmp_path_factory):
    root = tmp_path_factory.mktemp("trust") / "unparsed"
    spec = SimSpec.small(models=("sim-4b",), types=("evil", "misleading"), paradigms=("qa", "qta"), n_clusters=20,
                         unparsed={f"{FAILING}.s{s}": 0.5 for s in (0, 1)})
    truth = simulate_sweep(root, spec, seed=3)
    return root, truth, analyze(root, FAST).effects


def test_unparsed_replies_are_counted_flagged_and_never_scored(unparsed):
    root, truth, df = unparsed
    assert set(EFFECT_JUDGE_COLUMNS) <= set(df.columns)
    amp = df[(df["kind"] == "amplification") & (df["rtype_a"] == "evil") & (df["axis"] == "evil")
             & (df["mode"] == "think") & (df["metric"] == "harmful")].iloc[0]
    # 40 prompts x 4 samples x 2 seeds on each side; about half of side a's replies failed
    assert amp["rows_a"] == amp["rows_b"] == 320 and amp["unparsed_b"] == 0
    assert 0.4 < amp["unparsed_rate_a"] < 0.6 and amp["unparsed_a"] == round(amp["unparsed_rate_a"] * 320)
    assert not amp["reliable"] and "side a" in amp["reliability_note"] and amp["family"] == "exploratory"
    # failures at random lose precision, not truth: the planted effect is still inside the CI
    want = truth.contrast(("sim-4b", "evil", "qta"), ("sim-4b", "none", "qa"), "think", "evil")
    assert amp["ci_lo"] <= want <= amp["ci_hi"], (amp["estimate"], want)
    clean = df[(df["metric"] == "harmful") & ~df["arm_a"].str.startswith(FAILING) & (df["kind"] != "specificity")
               & ~df["arm_b"].str.startswith(FAILING)]
    assert len(clean) and clean["reliable"].all() and (clean["unparsed_a"] == 0).all()
    report = (root / "analysis" / "report.md").read_text()
    assert "UNRELIABLE" in report and "kept out of the confirmatory family" in report
    assert "sim_evil: simulated-rule" in report  # which classifier produced each primary number


def test_two_seeds_are_seeds_random_and_one_seed_says_conditional(unparsed, tmp_path):
    _, _, df = unparsed
    trained = df[df["kind"] == "training"]
    assert trained["method"].str.startswith("seed-level").all() and (trained["t_df"] > 0).all()
    assert (trained["inference_note"].str.contains("seeds random")).all()
    root = tmp_path / "one-seed"
    simulate_sweep(root, SimSpec.small(models=("sim-4b",), types=("evil",), paradigms=("qa", "qta"), seeds=(0,),
                                       n_clusters=6), seed=4)
    one = analyze(root, FAST).effects
    lin = one[one["kind"].isin(["training", "amplification"])]
    assert len(lin) and lin["inference_note"].str.startswith("conditional on the single training run of").all()
    report = (root / "analysis" / "report.md").read_text()
    assert f"{len(one[one['inference_note'].str.startswith('conditional')])} effects have p-values and CIs " \
           f"conditional on a single training run" in report


def _sweep(tmp_path, name="s", **kw):
    root = tmp_path / name
    simulate_sweep(root, SimSpec.small(models=("sim-1.7b",), types=("evil", "misleading"), paradigms=("qa", "qta"),
                                       seeds=(0,), n_clusters=5), seed=2, **kw)
    return root


def test_primary_metrics_are_declared_never_guessed(tmp_path):
    root = _sweep(tmp_path)
    layout = SweepLayout(root)
    expected = json.loads(layout.expected.read_text())
    expected["benchmarks"]["sim_misleading"]["primary"] = {}
    atomic_write_json(layout.expected, expected)
    with pytest.raises(ConfigError, match="benchmark 'sim_misleading' has no declared primary metric"):
        analyze(root, FAST)
    assert not layout.analysis.exists()
    # a sweep.yaml override declares it (direction given) ...
    analysis = {"primary_metrics": {"sim_misleading": {"metric": "score", "higher_is": "worse"}}}
    root2 = _sweep(tmp_path, "s2", analysis=analysis)
    res = analyze(root2, FAST)
    assert res.missing["primary_metrics"]["sim_misleading"] == "score"
    conf = res.effects[res.effects["family"] == "confirmatory"]
    assert set(conf[conf["benchmark"] == "sim_misleading"]["metric"]) == {"score"}
    # (specificity spans benchmarks, each oriented by its own direction: its row has none of its own)
    assert set(conf[conf["kind"] != "specificity"]["higher_is"]) == {"worse"}
    # ... and a declared primary that one arm x mode lacks is an error naming all three
    scores = layout.eval("sim-1.7b.evil.qta.s0", "no_think") / SCORES_FILE
    df = pd.read_parquet(scores)
    df[~((df["benchmark"] == "sim_evil") & (df["metric"] == "harmful"))].to_parquet(scores, index=False)
    expected["benchmarks"]["sim_misleading"]["primary"] = {"metric": "harmful", "higher_is": "worse"}
    atomic_write_json(layout.expected, expected)
    with pytest.raises(ValueError, match=r"benchmark 'sim_evil': primary metric 'harmful' is absent for arm "
                                         r"sim-1.7b.evil.qta.s0 in mode no_think"):
        analyze(root, FAST)


def test_every_missing_cell_is_named_and_stale_scores_are_refused(tmp_path):
    root = _sweep(tmp_path, drop_arms=["sim-1.7b.misleading.qta.s0"])
    layout = SweepLayout(root)
    scores = layout.eval("sim-1.7b.evil.qta.s0", "think") / SCORES_FILE
    df = pd.read_parquet(scores)
    df[df["benchmark"] != "sim_misleading"].to_parquet(scores, index=False)
    res = analyze(root, FAST)
    cells = res.missing["missing_cells"]
    assert "sim-1.7b.evil.qta.s0/think/sim_misleading" in cells
    assert {f"sim-1.7b.misleading.qta.s0/{m}/{b}" for m in ("think", "no_think")
            for b in ("sim_evil", "sim_misleading", "sim_submission")} <= set(cells)
    assert len(cells) == 7
    report = (layout.analysis / "report.md").read_text()
    used = res.missing["weights_hashes"]["sim-1.7b.evil.qta.s0/think"]
    assert used and used[:16] in report  # provenance: the hash the scores were made from
    config_hash = (layout.eval("sim-1.7b.evil.qta.s0", "think") / "score_config.sha256").read_text().strip()
    assert config_hash[:16] in report  # the eval-config column is filled
    # retrained after the eval: the export's weights changed
    task = Task("eval", "sim-1.7b.evil.qta.s0.think.0", (), str(layout.eval("sim-1.7b.evil.qta.s0", "think")),
                arm="sim-1.7b.evil.qta.s0", upstream="train/sim-1.7b.evil.qta.s0")
    assert done(task)
    meta_path = layout.export("sim-1.7b.evil.qta.s0") / EXPORT_META
    meta = json.loads(meta_path.read_text())
    atomic_write_json(meta_path, {**meta, "weights_hash": "f" * 64})
    with pytest.raises(ValueError, match=r"arm sim-1.7b.evil.qta.s0 \(think\): scores were made from weights"):
        analyze(root, FAST)
    assert not done(task)  # so `tracecause resume` re-runs this eval
    analysis = Task("analysis", "analysis", (), str(layout.analysis))
    assert done(analysis)
    marker = layout.eval("sim-1.7b.evil.qta.s0", "think") / "_COMPLETE"
    later = (layout.analysis / "_COMPLETE").stat().st_mtime + 60
    os.utime(marker, (later, later))  # the re-run eval finishes after the analysis: analyse again
    assert not done(analysis)


def test_a_metric_that_applies_to_no_sample_is_reported_not_mistaken_for_undeclared(tmp_path):
    """e.g. syco_flip is NaN (parsed=True) after a wrong first answer: an arm x mode where it never
    applies keeps its series, and its effects are named as not estimable."""
    root = _sweep(tmp_path)
    scores = SweepLayout(root).eval("sim-1.7b.evil.qta.s0", "think") / SCORES_FILE
    df = pd.read_parquet(scores)
    df.loc[(df["benchmark"] == "sim_evil") & (df["metric"] == "harmful"), "value"] = float("nan")
    df.to_parquet(scores, index=False)
    res = analyze(root, FAST)
    assert any("sim_evil: no prompt has every series of training sim-1.7b.evil.qta.s0 vs sim-1.7b.none.base.s0 "
               "(think, harmful): effect not estimable" in n for n in res.missing["notes"])
