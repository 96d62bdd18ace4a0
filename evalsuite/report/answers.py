"""The report's first screen: each confirmatory test answered in one line of words.

One line per confirmatory row (family == "confirmatory"), grouped by the study's finding and
ordered by model size: estimate, 95% CI, Holm-adjusted p and a verdict — "yes" (Holm p < alpha),
"no evidence" (a difference not shown; never "no effect" or "equal"), or "not estimable" (a size
the family covers with no test). "Equivalent" is said only from a TOST row (equivalence.py), for
a margin declared before the data. A row whose p and CI are conditional on single training runs
says so in its verdict: it answers for those runs, not for the training method.
"""
from __future__ import annotations

import math

import pandas as pd

from evalsuite.analysis.equivalence import STATISTIC as TOST, equivalent

FINDINGS = (
    ("Finding 1 — CoT amplification", ("amplification",)),
    ("Finding 2 — reasoning content and specificity", ("content", "specificity")),
    ("Finding 3 — answer-free signal", ("answer_free",)),
    ("Finding 4 — internalisation", ("internalisation",)),
)
PARADIGM_NAMES = {"qa": "QA", "qta": "QTA", "qt": "QT", "t_only": "T-only", "base": "base"}
MODE_WORDS = {"think": "think", "no_think": "no-think", "no_think_over_think": "no-think / think",
              "think_minus_no_think": "think − no-think"}


def side(rtype: str, paradigm: str) -> str:
    """'QTA evil', 'QA', 'base': how a person names an arm."""
    name = PARADIGM_NAMES.get(str(paradigm), str(paradigm))
    return name if str(rtype) in ("none", "", "nan") else f"{name} {rtype}"


def _num(x: float) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{x:+.3g}"


def _p(x: float) -> str:
    return "–" if x is None or not math.isfinite(x) else (f"{x:.2g}" if x >= 1e-3 else f"{x:.1e}")


def _ci(r: dict) -> str:
    return f"[{_num(r['ci_lo'])}, {_num(r['ci_hi'])}]"


def _conditional(r: dict) -> bool:
    return str(r.get("inference_note", "")).startswith("conditional")


def _verdict(r: dict, alpha: float) -> str:
    word = "yes" if r["p_adj"] < alpha else "no evidence"
    return word + (" (conditional: one training run per arm)" if _conditional(r) else "")


def _claim(r: dict, alpha: float) -> str:
    """The row's question and numbers in words."""
    a, b = side(r["rtype_a"], r["paradigm"]), side(r["rtype_b"], r["paradigm_b"])
    on = f"{r['benchmark']} {r['metric']}"
    nums = f"{_num(r['estimate'])} {_ci(r)}, Holm p {_p(r['p_adj'])}"
    stat = r["statistic"]
    if stat in ("difference", "no_think_effect"):
        mode = "no-think, persistence vs base" if stat == "no_think_effect" else MODE_WORDS.get(r["mode"], r["mode"])
        if r["p_adj"] < alpha:
            verb = "raises" if r["estimate"] > 0 else "lowers"
            return f"{a} {verb} {on} vs {b} by {nums} ({mode})"
        return f"{a} vs {b} on {on} ({mode}): {nums} — not shown to differ"
    if stat == "did":
        what = f"{a} − {b} on {on}, think − no-think (difference-in-differences)"
    elif stat == "ratio":
        what = f"{a} − {b} on {on}, no-think / think ratio (H0: ratio 1, the effect fully survives)"
    elif stat == "diagonal_dominance":
        what = f"{PARADIGM_NAMES.get(r['paradigm'], r['paradigm'])} reasoning types shift their own axis most " \
               f"(diagonal dominance, {MODE_WORDS.get(r['mode'], r['mode'])})"
    else:
        what = f"{stat} {r['arm_a']} − {r['arm_b']} on {on} ({r['mode']})"
    tail = "" if r["p_adj"] < alpha else " — not shown to differ"
    return f"{what}: {nums}{tail}"


def _tost_note(r: dict, tost: pd.DataFrame, alpha: float) -> str:
    """For an internalisation row: what the declared equivalence margin says of think − no-think."""
    if tost.empty:
        return ""
    same = tost[(tost["size"] == r["size"]) & (tost["benchmark"] == r["benchmark"]) & (tost["metric"] == r["metric"])
                & (tost["arm_a"] == r["arm_a"]) & (tost["arm_b"] == r["arm_b"])]
    if same.empty:
        return ""
    t = same.iloc[0].to_dict()
    m = f"±{t['margin']:g}"
    ci = f"{1 - 2 * alpha:.0%} CI {_ci(t)}"
    if equivalent(t, alpha):
        return f"; think − no-think equivalent within {m} (TOST, {ci}, Holm p {_p(t['p_adj'])})"
    return f"; think − no-think not shown equivalent within {m} (TOST, {ci}, Holm p {_p(t['p_adj'])})"


def answer_line(r: dict, alpha: float, tost: pd.DataFrame | None = None) -> str:
    line = f"**{r['size']}** — {_verdict(r, alpha)}: {_claim(r, alpha)}"
    if r["kind"] == "internalisation" and tost is not None:
        line += _tost_note(r, tost, alpha)
    return line


def _targets(filters: list[dict], kinds: tuple) -> bool:
    for f in filters:
        want = f.get("kind")
        if want is None or set(want if isinstance(want, (list, tuple)) else [want]) & set(kinds):
            return True
    return False


def _missing_test(df: pd.DataFrame, kinds: tuple, size: str) -> str:
    """Why a finding the family covers has no test at a size, as far as the effects table tells."""
    here = df[df["kind"].isin(kinds) & (df["size"] == size)]
    if here.empty:
        return (f"**{size}** — not estimable: no effect of this kind at this size (its arms were not run or not "
                f"evaluated, or no prompt had every series: see Notes)")
    return (f"**{size}** — not estimable: no confirmatory test at this size (the matching effect is unreliable "
            f"or has no p: see Caveats and Notes)")


def answer_lines(df: pd.DataFrame, filters: list[dict], sizes: list[str], alpha: float) -> list[tuple[str, list[str]]]:
    """[(finding title, lines)]: every confirmatory row, and every size a targeted finding lacks a test at."""
    conf = df[df["family"] == "confirmatory"]
    tost = df[df["statistic"] == TOST] if "statistic" in df else df.iloc[:0]
    out = []
    groups = list(FINDINGS)
    other = tuple(sorted(set(conf["kind"]) - {k for _, ks in FINDINGS for k in ks}))
    if other:
        groups.append(("Other confirmatory tests", other))
    for title, kinds in groups:
        rows = conf[conf["kind"].isin(kinds)].sort_values(["kind", "statistic", "benchmark", "arm_a", "arm_b", "mode"])
        targeted = _targets(filters, kinds)
        lines = [] if targeted else ["not tested: the confirmatory family declares no test of this finding"]
        for s in [*sizes, *sorted(set(rows["size"].astype(str)) - set(sizes))]:  # then pooled sizes ('a+b')
            here = rows[rows["size"].astype(str) == s]
            lines += [answer_line(r, alpha, tost) for r in here.to_dict("records")]
            if here.empty and targeted and s in sizes:
                lines.append(_missing_test(df, kinds, s))
        out.append((title, lines))
    return out


def summary_line(df: pd.DataFrame, alpha: float, declared: str, n_not_estimable: int) -> str:
    conf = df[df["family"] == "confirmatory"]
    yes = int((conf["p_adj"] < alpha).sum())
    cond = int(sum(_conditional(r) for r in conf.to_dict("records")))
    text = (f"{len(conf)} confirmatory tests ({declared}), Holm-adjusted within the family at alpha {alpha}: "
            f"{yes} yes, {len(conf) - yes} no evidence (not shown to differ, which is not evidence of no difference)"
            + (f", {n_not_estimable} finding × size without a test (not estimable)" if n_not_estimable else "") + ".")
    if cond:
        text += (f" {cond} of them are conditional on single training runs (one seed per arm): they answer for "
                 f"those runs, not for the training method.")
    return text
