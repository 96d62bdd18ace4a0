"""A percentile interval need not contain its estimate; the figures draw it anyway (a dose-free
mutant world crashed the analysis in matplotlib's errorbar: "'xerr' must not contain negative values")."""
from __future__ import annotations

import pandas as pd

from evalsuite.report.figures import forest, think_vs_no_think


def _row(**kw):
    base = {"estimate": 0.30, "ci_lo": 0.35, "ci_hi": 0.50, "p_adj": 0.01, "p": 0.01, "paradigm": "qta",
            "arm_a": "m.evil.qta", "arm_b": "m.none.qa", "benchmark": "b", "metric": "m", "mode": "think",
            "size": "m", "kind": "amplification", "family": "confirmatory", "rtype_a": "evil",
            "rtype_b": "none", "paradigm_b": "qa", "p_holm": 0.01, "statistic": "difference", "axis": "evil"}
    return {**base, **kw}


def test_a_forest_row_whose_interval_misses_its_estimate_is_drawn(tmp_path):
    rows = pd.DataFrame([_row(), _row(estimate=0.1, ci_lo=0.0, ci_hi=0.2, p_adj=0.5)])
    path = forest(rows, "t", tmp_path / "forest.png")
    assert path is not None and path.stat().st_size > 0


def test_think_vs_no_think_with_an_interval_beside_its_estimate_is_drawn(tmp_path):
    training = pd.DataFrame([_row(mode="think"), _row(mode="no_think", estimate=0.1, ci_lo=-0.1, ci_hi=0.05)])
    path = think_vs_no_think(training, tmp_path / "tvn.png")
    assert path is not None and path.stat().st_size > 0
