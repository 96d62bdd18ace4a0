"""The report opens with answers; notes fold to the end; internalisation is stated as it is tested.

Issue 19, parts 6 and 8: the first screen is one line per confirmatory test (estimate, CI, Holm p,
verdict in words), a one-seed sweep's lines say they are conditional, an amendment after the data
is a banner at the very top, notes are grouped and counted at the end; the ratio no-think / think
has a p from replicates that resample seeds; "equivalent" comes only from a declared TOST margin.
"""
from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from evalsuite.analysis.config import AnalysisConfig
from evalsuite.analysis.equivalence import equivalence_rows, equivalent, se_from_ci, tost
from evalsuite.analysis.run import analyze
from evalsuite.analysis.simulate import SimSpec, simulate_sweep
from evalsuite.analysis.spec import AnalysisSpec, read_sweep_spec
from evalsuite.report.answers import answer_line
from evalsuite.report.build import write_report
from evalsuite.report.notes import group_notes, notes_summary
from tracecause.config import ConfigError, from_dict

FAST = AnalysisConfig(resamples=400, progress=False, wandb=False, figures=False)
ONE_ARM = dict(models=("sim-4b",), types=("evil",), paradigms=("qa", "qta"), n_clusters=16)


def _sections(md: str) -> list[str]:
    return [line for line in md.splitlines() if line.startswith("## ")]


@pytest.fixture(scope="module")
def gappy(tmp_path_factory):
    """Two sizes, two seeds; no base eval at the small size: notes of several kinds."""
    root = tmp_path_factory.mktemp("answers") / "gappy"
    simulate_sweep(root, SimSpec.small(types=("evil", "misleading"), paradigms=("qa", "qta"), n_clusters=8), seed=6,
                   drop_arms=["sim-0.6b.none.base.s0"])
    res = analyze(root, FAST)
    return root, res.effects, res.missing


def test_the_first_lines_are_the_findings_one_per_confirmatory_test(gappy):
    root, df, _ = gappy
    md = (root / "analysis" / "report.md").read_text()
    lines = [line for line in md.splitlines() if line.strip()]
    assert lines[1] == "## Answers" and "confirmatory tests" in lines[2]
    assert lines[3] == "### Finding 1 — CoT amplification" and lines[4].startswith("- **sim-0.6b** — ")
    answers = md.split("## Answers", 1)[1].split("\n## ", 1)[0]
    bullets = [line for line in answers.splitlines() if line.startswith("- **")]
    conf = df[df["family"] == "confirmatory"]
    assert len(conf) > 0
    assert sum("Holm p" in b for b in bullets) == len(conf)  # one line per confirmatory test, with its p_adj
    for r in conf.to_dict("records"):
        assert f"[{r['ci_lo']:+.3g}, {r['ci_hi']:+.3g}]" in answers
    # the small size has no base eval: its persistence (no-think vs base) test cannot exist, and says so
    assert "- **sim-0.6b** — not estimable" in answers.split("### Finding 4")[1]
    assert not re.search(r"\b(equal|same)\b", answers.lower())
    html = (root / "analysis" / "report.html").read_text()
    assert html.index("<h2>Answers</h2>") < html.index("How to read the numbers") < html.index("Confirmatory family")


def test_notes_are_at_the_end_grouped_and_counted(gappy):
    root, _, missing = gappy
    md = (root / "analysis" / "report.md").read_text()
    notes = missing["notes"]
    kinds = {k for k, _, _ in group_notes(notes)}
    assert len(notes) >= 4 and {"no base eval"} <= kinds
    heads = _sections(md)
    assert heads[-1] == f"## Notes — {notes_summary(group_notes(notes))}" and heads[-1].startswith(
        f"## Notes — {len(notes)} notes: ")
    assert heads[-2] == "## What is missing"
    first_note = md.index("Note: ")
    assert first_note > md.index(heads[-1])  # no note line before the Notes section
    # the first screen carries the count, not the lines
    assert md.index(f"{len(notes)} notes: ") < md.index("## How to read the numbers")
    for kind, _, lines in group_notes(notes):
        assert f"### {len(lines)} {kind} (" in md and all(f"Note: {n}" in md for n in lines)


def test_group_notes_counts_each_kind():
    notes = ["b: no prompt has every series of content x vs y (think, m): effect not estimable; ...",
             "b: no prompt has every series of training x vs y (think, m): effect not estimable; ...",
             "b/m/think: no base eval for s; training and answer-free vs base effects skipped", "something else"]
    groups = group_notes(notes)
    assert [(k, len(v)) for k, _, v in groups] == [("effect not estimable", 2), ("no base eval", 1), ("other", 1)]
    assert notes_summary(groups).startswith("4 notes: 2 effect not estimable (no prompt has every series")
    assert notes_summary([]) == ""


@pytest.fixture(scope="module")
def one_seed(tmp_path_factory):
    root = tmp_path_factory.mktemp("answers") / "one-seed"
    simulate_sweep(root, SimSpec.small(seeds=(0,), **{**ONE_ARM, "types": ("evil", "misleading")}), seed=7)
    res = analyze(root, FAST)
    return root, res.effects, res.missing


def test_a_one_seed_sweep_is_labelled_conditional_on_the_first_screen(one_seed):
    root, df, _ = one_seed
    conf = df[df["family"] == "confirmatory"]
    cond = conf["inference_note"].str.startswith("conditional")
    assert cond.sum() > 0
    answers = (root / "analysis" / "report.md").read_text().split("## Answers", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in answers.splitlines() if "Holm p" in line]
    assert sum("(conditional: one training run per arm)" in line for line in lines) == cond.sum()
    assert f"{cond.sum()} of them are conditional on single training runs" in answers


def test_an_amended_analysis_says_so_at_the_very_top(one_seed, tmp_path):
    root, df, missing = one_seed
    diff = ["confirmatory: default -> [{kind: amplification}]"]
    write_report(root, tmp_path, df, {**missing, "amended_after_data": diff}, read_sweep_spec(root), FAST,
                 figures=False)
    md = (tmp_path / "report.md").read_text()
    lines = [line for line in md.splitlines() if line.strip()]
    assert lines[1] == "## AMENDED AFTER DATA" and diff[0] in md
    assert md.index(diff[0]) < md.index("## Answers (amended after data)")
    write_report(root, tmp_path, df, {**missing, "amended_after_data": []}, read_sweep_spec(root), FAST,
                 figures=False)
    assert "AMENDED" not in (tmp_path / "report.md").read_text()


def _row(**kw) -> dict:
    base = {"kind": "amplification", "statistic": "difference", "benchmark": "em_free_form",
            "metric": "misaligned_joint", "mode": "think", "size": "qwen3-8b", "rtype_a": "evil", "paradigm": "qta",
            "rtype_b": "none", "paradigm_b": "qa", "arm_a": "qwen3-8b.evil.qta.s0+s1+s2",
            "arm_b": "qwen3-8b.none.qa.s0+s1+s2", "estimate": 0.12, "ci_lo": 0.05, "ci_hi": 0.19, "p_adj": 0.01,
            "inference_note": "training procedure with seeds random (3 seeds)"}
    return {**base, **kw}


def test_verdicts_in_words_never_call_a_difference_equal():
    yes = answer_line(_row(), 0.05)
    assert yes == ("**qwen3-8b** — yes: QTA evil raises em_free_form misaligned_joint vs QA by "
                   "+0.12 [+0.05, +0.19], Holm p 0.01 (think)")
    no = answer_line(_row(estimate=0.01, ci_lo=-0.06, ci_hi=0.08, p_adj=0.7), 0.05)
    assert no.startswith("**qwen3-8b** — no evidence: ") and no.endswith("not shown to differ")
    did = answer_line(_row(kind="internalisation", statistic="did", mode="think_minus_no_think", paradigm_b="base",
                           estimate=0.0, ci_lo=-0.02, ci_hi=0.02, p_adj=1.0), 0.05)
    assert "not shown to differ" in did
    for line in (yes, no, did):
        assert "equal" not in line and "same" not in line and "equivalent" not in line


def test_tost_p_is_the_larger_one_sided_p_and_agrees_with_the_interval():
    for est, se, df, m in [(0.01, 0.01, 20, 0.05), (0.04, 0.02, 4, 0.05), (-0.03, 0.01, 8, 0.05), (0.0, 0.1, 2, 0.05)]:
        p, lo, hi = tost(est, se, df, m, 0.05)
        want = max(stats.t.sf((est + m) / se, df), stats.t.cdf((est - m) / se, df))
        assert p == pytest.approx(want)
        q = stats.t.ppf(0.95, df)
        assert (lo, hi) == pytest.approx((est - q * se, est + q * se))
        assert (p < 0.05) == (-m < lo and hi < m)
    assert tost(0.01, 0.01, 20, 0.05, 0.05)[0] < 0.05 and tost(0.04, 0.02, 4, 0.05, 0.05)[0] > 0.05
    # the standard error behind a seed-level (1 − alpha) CI is recovered exactly
    q = stats.t.ppf(0.975, 6.5)
    assert se_from_ci(0.1 - q * 0.03, 0.1 + q * 0.03, 6.5, 0.05) == pytest.approx(0.03)
    assert math.isnan(tost(0.0, 0.0, 5, 0.05, 0.05)[0])


def test_tost_rows_on_constructed_did_rows():
    q = lambda df: stats.t.ppf(0.975, df)  # noqa: E731
    did = pd.DataFrame([
        # |DiD| small and precise: equivalent within 0.05
        _row(kind="internalisation", statistic="did", benchmark="b1", metric="m", arm_a="x", estimate=0.005,
             ci_lo=0.005 - q(12) * 0.01, ci_hi=0.005 + q(12) * 0.01, t_df=12.0, p=0.6),
        # not significant, yet far too wide to call equivalent
        _row(kind="internalisation", statistic="did", benchmark="b1", metric="m", arm_a="y", estimate=0.01,
             ci_lo=0.01 - q(3) * 0.04, ci_hi=0.01 + q(3) * 0.04, t_df=3.0, p=0.8),
        _row(kind="internalisation", statistic="did", benchmark="b1", metric="other", arm_a="z", t_df=3.0, p=0.1),
        _row(kind="internalisation", statistic="did", benchmark="b2", metric="m", arm_a="w", t_df=3.0, p=0.1),
    ])
    rows = equivalence_rows(did, {"b1": 0.05}, {"b1": "m", "b2": "m"}, 0.05)
    assert list(rows["arm_a"]) == ["x", "y"]  # the margin's benchmark, its primary metric only
    assert set(rows["statistic"]) == {"equivalence_tost"} and set(rows["family"]) == {"equivalence"}
    x, y = rows.to_dict("records")
    assert x["p"] == pytest.approx(max(stats.t.sf(0.055 / 0.01, 12), stats.t.cdf(-0.045 / 0.01, 12)))
    assert x["p_adj"] == pytest.approx(min(1.0, 2 * x["p"]))  # Holm over the two equivalence tests
    assert equivalent(x, 0.05) and not equivalent(y, 0.05)
    assert equivalence_rows(did, {}, {"b1": "m"}, 0.05).empty
    line = answer_line(_row(kind="internalisation", statistic="no_think_effect", benchmark="b1", metric="m",
                            arm_a="x", p_adj=0.2), 0.05, rows)
    assert f"think − no-think equivalent within ±0.05 (TOST, 90% CI [{x['ci_lo']:+.3g}, {x['ci_hi']:+.3g}]" in line
    other = answer_line(_row(kind="internalisation", statistic="no_think_effect", benchmark="b1", metric="m",
                             arm_a="y", p_adj=0.2), 0.05, rows)
    assert "think − no-think not shown equivalent within ±0.05" in other


def _ratio_sweep(tmp_path, name: str, seed_sd: float, margins: dict | None = None) -> pd.DataFrame:
    root = tmp_path / name
    simulate_sweep(root, SimSpec.small(seeds=(0, 1, 2), seed_sd=seed_sd, **ONE_ARM), seed=5,
                   analysis={"equivalence_margins": margins} if margins else None)
    return analyze(root, FAST).effects


def _evil_ratio(df: pd.DataFrame) -> dict:
    r = df[(df["statistic"] == "ratio") & (df["benchmark"] == "sim_evil") & (df["metric"] == "harmful")
           & df["arm_a"].str.contains("evil.qta")]
    assert len(r) == 1
    return r.iloc[0].to_dict()


def test_ratio_has_a_p_and_an_interval_that_resamples_seeds(tmp_path):
    quiet = _ratio_sweep(tmp_path, "quiet", 0.0, margins={"sim_evil": 0.15})
    noisy = _ratio_sweep(tmp_path, "noisy", 0.1)
    ratios = quiet[quiet["statistic"] == "ratio"]
    assert len(ratios) and np.isfinite(ratios["p"]).all() and ratios["p"].between(0, 1).all()
    r = _evil_ratio(quiet)
    # planted: no-think keeps (0.05 + 0.1) / (0.05 + 0.2) = 0.6 of the think effect; H0 ratio 1 is rejected
    assert r["ci_lo"] <= 0.6 <= r["ci_hi"] and r["ci_hi"] < 1 and r["p"] < 0.05
    assert "H0 ratio = 1" in r["method"] and "seeds resampled" in r["method"]
    # seed shifts move a run's think and no-think effects alike (constant over prompts): only resampling
    # the seeds widens the interval
    n = _evil_ratio(noisy)
    assert (n["ci_hi"] - n["ci_lo"]) > 1.5 * (r["ci_hi"] - r["ci_lo"])
    # TOST rows only where a margin is declared, only on that benchmark's primary metric
    tost_rows = quiet[quiet["statistic"] == "equivalence_tost"]
    did = quiet[(quiet["statistic"] == "did") & (quiet["benchmark"] == "sim_evil") & (quiet["metric"] == "harmful")]
    assert len(tost_rows) == len(did) > 0 and set(tost_rows["benchmark"]) == {"sim_evil"}
    assert (noisy["statistic"] != "equivalence_tost").all()


def test_equivalence_margins_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="equivalence_margins.sim_evil: must be a positive margin"):
        from_dict(AnalysisSpec, {"equivalence_margins": {"sim_evil": -0.1}}, source="sweep.yaml", _path="analysis")
    spec = from_dict(AnalysisSpec, {"equivalence_margins": {"nope": 0.05}}, source="sweep.yaml", _path="analysis")
    battery = {"sim_evil": {"axis": "evil", "primary": "harmful"}}
    with pytest.raises(ConfigError, match=r"sweep.yaml: analysis.equivalence_margins.nope: no such benchmark; "
                                          r"allowed: \['sim_evil'\]; fix: "):
        spec.check_battery(battery, ["harmful"], "sweep.yaml")
    root = tmp_path / "typo"
    simulate_sweep(root, SimSpec.small(seeds=(0,), **{**ONE_ARM, "n_clusters": 4}), seed=1,
                   analysis={"equivalence_margins": {"sim_evil_typo": 0.05}})
    with pytest.raises(ConfigError, match=r"analysis.equivalence_margins.sim_evil_typo: no such benchmark"):
        analyze(root, FAST)
    assert not (root / "analysis").exists()
