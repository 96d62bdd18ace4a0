"""The confirmatory family as a pre-registration: which tests it holds, known before any data.

The family is the set of effect rows matching the sweep's ``analysis.confirmatory`` filters. Plan
enumerates it from the design alone (arms, modes, the battery's benchmarks and primaries) by running
the analysis's own contrast enumeration on empty benchmarks, so the tests plan prints and freezes
at submit are, key for key, the rows ``analyze`` adjusts with Holm — never a family computed beside it.

A filter's ``benchmark: type_primary`` names, for a row, the benchmark its reasoning type is tested
on: ``analysis.type_benchmark[rtype]`` where declared, else the first battery benchmark on the type's
axis (``type_axis``), in battery order.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .contrasts import internalisation_effects, pairwise_effects, replicate_splits, scale_effects
from .load import Benchmark
from .sizes import log10_params
from .specificity_cells import planned_specificity_cells
from .spec import FILTER_KEYS, AnalysisSpec

TYPE_PRIMARY = "type_primary"  # a filter value of ``benchmark``: the row's type's own benchmark
# The columns that name a test: two rows with the same key are the same test.
KEY_COLUMNS = ("kind", "statistic", "benchmark", "metric", "mode", "size", "paradigm", "paradigm_b", "rtype_a",
               "rtype_b")


def family_key(row: dict) -> str:
    if row.get("kind") == "specificity":  # one test per size, mode and paradigm, whichever types it spans
        return "|".join(str(row.get(c, "")) for c in ("kind", "statistic", "mode", "size", "paradigm"))
    return "|".join(str(row.get(c, "")) for c in KEY_COLUMNS)


def type_benchmarks(analysis: AnalysisSpec, benchmarks: dict[str, dict]) -> dict[str, str]:
    """rtype -> the benchmark its confirmatory tests read (declared, else first on its axis)."""
    out = {}
    for rtype, axis in analysis.type_axis.items():
        on_axis = [name for name, b in benchmarks.items() if b["axis"] == axis]
        if on_axis:
            out[rtype] = on_axis[0]
    out.update(analysis.type_benchmark)
    return out


def matches(row: dict, flt: dict, primary: dict, type_bench: dict | None = None) -> bool:
    """Does an effect row match one filter (``metric: primary`` and ``benchmark: type_primary`` resolved)?"""
    for key in FILTER_KEYS:
        if key not in flt:
            continue
        want = flt[key]
        wants = [str(w) for w in (want if isinstance(want, (list, tuple)) else [want])]
        if key == "metric":
            wants = [primary.get(row["benchmark"], "") if w == "primary" else w for w in wants]
        if key == "benchmark":
            wants = [(type_bench or {}).get(str(row.get("rtype_a")), "") if w == TYPE_PRIMARY else w for w in wants]
        if str(row.get(key)) not in wants:
            return False
    return True


@dataclass
class Design:
    """What a sweep will produce, before it runs: conds (model, rtype, paradigm) -> seeds, modes, and the
    battery's benchmarks (name -> {axis, primary: {metric, higher_is}}), in battery order."""

    conds: dict[tuple, list[int]]
    modes: tuple[str, ...]
    benchmarks: dict[str, dict]

    @classmethod
    def from_arms(cls, arms, modes, benchmarks: dict[str, dict]) -> "Design":
        conds: dict[tuple, list[int]] = {}
        for a in arms:  # anything with model, rtype, paradigm, seed (tracecause.contracts.Arm)
            conds.setdefault((a.model, a.rtype, a.paradigm), []).append(int(a.seed))
        return cls({c: sorted(s) for c, s in conds.items()}, tuple(modes), dict(benchmarks))


def _empty_benchmark(name: str, axis: str, metric: str, design: Design) -> Benchmark:
    """A benchmark with one prompt and the design's series of its primary metric: what the analysis's
    enumeration needs to name every effect it would compute (values are never read)."""
    series = {(cond, mode, metric): {s: np.zeros(1) for s in seeds}
              for cond, seeds in design.conds.items() for mode in design.modes}
    return Benchmark(name, axis, np.array(["p0"]), np.zeros(1, dtype=int), 1, series,
                     {c: list(s) for c, s in design.conds.items()}, {metric: True}, {})


def planned_rows(design: Design, analysis: AnalysisSpec) -> list[dict]:
    """Every effect row's identifying columns that ``analyze`` would produce from this design's primaries."""
    rows: list[dict] = []
    logp = {m: x for m in {c[0] for c in design.conds} if (x := log10_params(m, analysis.model_params)) is not None}
    for name, b in design.benchmarks.items():
        bench = _empty_benchmark(name, b["axis"], b["primary"]["metric"], design)
        effects = pairwise_effects(bench, []) + internalisation_effects(bench)
        effects += scale_effects(bench, effects, logp)
        effects += replicate_splits(bench)[1]
        rows += [dict(e.meta) for e in effects]
    runs = [(*cond, s) for cond, seeds in design.conds.items() for s in seeds]
    axes = {n: b["axis"] for n, b in design.benchmarks.items()}
    for cell in planned_specificity_cells(runs, design.modes, axes, analysis.type_axis):
        rows.append({"kind": "specificity", "statistic": "diagonal_dominance", "benchmark": "all",
                     "metric": "primary", "mode": cell.mode, "size": cell.size, "paradigm": cell.paradigm,
                     "paradigm_b": cell.paradigm, "rtype_a": "+".join(cell.types), "rtype_b": "permuted"})
    return rows


@dataclass
class Family:
    tests: list[dict]                 # the planned rows in the family, in enumeration order
    unmatched: list[int]              # indices of filters that match no planned test
    type_bench: dict[str, str]

    @property
    def keys(self) -> list[str]:
        return [family_key(t) for t in self.tests]


def plan_family(design: Design, analysis: AnalysisSpec) -> Family:
    """The confirmatory family this design gives under the sweep's filters (plan time, no data)."""
    primary = {n: b["primary"]["metric"] for n, b in design.benchmarks.items()}
    type_bench = type_benchmarks(analysis, design.benchmarks)
    rows = planned_rows(design, analysis)
    filters = analysis.family_filters
    hit = [[matches(r, f, primary, type_bench) for f in filters] for r in rows]
    order = {k: i for i, k in enumerate(("amplification", "specificity", "content", "answer_free", "internalisation"))}
    size = {m: log10_params(m, analysis.model_params) or 0.0 for m in {c[0] for c in design.conds}}
    tests = sorted((r for r, h in zip(rows, hit) if any(h)),
                   key=lambda r: (size.get(r["size"], 0.0), r["size"], order.get(r["kind"], 9), r["paradigm"],
                                  r["rtype_a"], r["benchmark"]))
    unmatched = [i for i in range(len(filters)) if not any(h[i] for h in hit)]
    return Family(tests, unmatched, type_bench)


def describe_test(t: dict) -> str:
    """One line a reader can check against the pre-registration."""
    kind = t["kind"]
    if kind == "specificity":
        return f"specificity  {t['size']}  {t['paradigm']} types on their own axes  ({t['mode']})"
    a = f"{t['paradigm']} {t['rtype_a']}".replace(" none", "")
    b = f"{t['paradigm_b']} {t['rtype_b']}".replace(" none", "")
    return f"{kind}  {t['size']}  {a} - {b}  on {t['benchmark']} {t['metric']}  ({t['mode']}, {t['statistic']})"
