"""What a reader sees before scrolling: an amendment banner (if any), then the answers and one figure."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from evalsuite.analysis.sizes import log10_params
from evalsuite.analysis.spec import spec_dict

from . import figures as fig
from .answers import answer_lines, summary_line
from .document import Doc


def amended_lines(spec, missing: dict) -> list[str]:
    """The diff of an analysis amended after the data ([] when it was run as planned)."""
    amended = missing.get("amended_after_data") or spec_dict(spec).get("amended") or []
    if isinstance(amended, str):
        return amended.splitlines()
    if isinstance(amended, dict):
        return [f"{k}: {v}" for k, v in amended.items()]
    return [str(x) for x in amended]


def amended_banner(doc: Doc, spec, missing: dict):
    lines = amended_lines(spec, missing)
    if not lines:
        return
    doc.h(1, "AMENDED AFTER DATA")
    doc.p("The analysis section of sweep.yaml was changed after the sweep was submitted: the confirmatory family, "
          "primaries, thresholds or alpha below are not the ones frozen at submit. Changes (frozen -> now):",
          cls="missing")
    doc.code("\n".join(lines))


def model_sizes(df: pd.DataFrame, model_params: dict) -> list[str]:
    """Single model sizes (not scale slopes' 'a+b'), smallest first."""
    sizes = {str(s) for s in df["size"].dropna().unique() if "+" not in str(s)} if "size" in df else set()
    return sorted(sizes, key=lambda s: (log10_params(s, model_params) or float("inf"), s))


def answers_section(doc: Doc, df: pd.DataFrame, spec, missing: dict, alpha: float, figdir: Path,
                    figures: bool) -> dict[str, Path]:
    """One line per confirmatory test, grouped by finding; one forest plot of the family."""
    made: dict[str, Path] = {}
    doc.h(1, "Answers" + (" (amended after data)" if amended_lines(spec, missing) else ""))
    if df.empty:
        doc.p("No effects could be computed from the finished evals: nothing to answer.", cls="missing")
        return made
    declared = "declared in sweep.yaml" if spec.declared_family else "the default family"
    groups = answer_lines(df, spec.analysis.family_filters, model_sizes(df, spec.analysis.model_params), alpha)
    n_missing = sum(1 for _, lines in groups for line in lines if "not estimable" in line)
    doc.p(summary_line(df, alpha, declared, n_missing))
    for title, lines in groups:
        doc.h(2, title)
        doc.bullets(lines)
    conf = df[df["family"] == "confirmatory"]
    if figures:
        p = fig.forest(conf, "Confirmatory family", figdir / "forest_confirmatory.png")
        if p:
            made["forest_confirmatory"] = p
            doc.image(p, f"Every confirmatory test: estimate and 95% CI (filled = Holm-adjusted p < 0.05; "
                         f"scales differ between kinds: rates, z for specificity)")
    return made
