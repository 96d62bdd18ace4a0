"""Which (size, mode, paradigm) cells get a specificity test: one rule, for the plan and for the data.

A cell is one model size × eval mode × typed paradigm (QTA, QT, T-only). Its test compares the
reasoning types trained in that paradigm on the benchmarks that have every one of them, with the
training runs (type, seed) as the units; it exists when at least two of those types have their own
axis (sweep.yaml ``analysis.type_axis``) among the benchmarks' axes. ``planned_specificity_cells``
enumerates the cells of a design before any data exist (every run on every benchmark and mode);
``specificity.specificity`` calls ``specificity_cells`` with the runs that have data, so a planned
test and the test that is run come from the same rule.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import factorial, prod
from typing import Iterable, Mapping

from tracecause.contracts import TRACED_PARADIGMS

Run = tuple  # (model, rtype, paradigm, seed): one training run


@dataclass(frozen=True)
class SpecificityCell:
    size: str
    mode: str
    paradigm: str
    types: tuple[str, ...]              # every type compared, sorted (with or without an axis of its own)
    seeds: tuple[tuple[int, ...], ...]  # per type: the seeds of its runs in the test
    benchmarks: tuple[str, ...]         # the benchmarks that have every run of the test
    axes: tuple[str, ...]               # their axes, sorted
    matched: tuple[str, ...]            # types whose own axis is among ``axes`` (the diagonal)

    @property
    def key(self) -> tuple[str, str, str]:
        return self.size, self.mode, self.paradigm

    @property
    def n_assignments(self) -> int:
        """Distinct ways to hand the type labels to the runs (the permutation distribution's size)."""
        sizes = [len(s) for s in self.seeds]
        return factorial(sum(sizes)) // prod(factorial(n) for n in sizes)

    @property
    def min_p(self) -> float:
        """The smallest p the run-level permutation test can give (1 seed per type: 1 / T!)."""
        return 1.0 / self.n_assignments


def specificity_cells(runs: Mapping[tuple[str, str], Iterable[Run]], bench_axes: Mapping[str, str],
                      type_axis: Mapping[str, str], notes: list[str] | None = None) -> list[SpecificityCell]:
    """The cells with a specificity test, sorted by (size, mode, paradigm).

    ``runs``: (benchmark, mode) -> the training runs (model, rtype, paradigm, seed) with that
    benchmark's primary metric in that mode. ``bench_axes``: benchmark -> behaviour axis.
    A run enters a cell only if every benchmark of the cell has it (a run carries all its results
    together when type labels are permuted); a cell with fewer than two types that have their own
    axis there is left out, said in ``notes``.
    """
    have: dict[tuple, dict[str, dict[str, set]]] = {}  # (size, mode, paradigm) -> benchmark -> type -> seeds
    for (bench, mode), items in runs.items():
        if bench not in bench_axes:
            continue
        for model, rtype, paradigm, seed in items:
            if paradigm in TRACED_PARADIGMS:
                have.setdefault((model, mode, paradigm), {}).setdefault(bench, {}).setdefault(rtype, set()).add(seed)
    cells = []
    for (size, mode, paradigm), by_bench in sorted(have.items()):
        benchmarks = sorted(by_bench)
        types = sorted(set.intersection(*(set(by_bench[b]) for b in benchmarks)))
        seeds = {t: sorted(set.intersection(*(by_bench[b][t] for b in benchmarks))) for t in types}
        where = f"specificity {size}/{mode}/{paradigm}"
        partial = sorted(f"{t}.s{s}" for b in benchmarks for t in types for s in by_bench[b][t] - set(seeds[t]))
        if partial and notes is not None:
            notes.append(f"{where}: runs without every benchmark are left out of the test: {sorted(set(partial))}")
        types = [t for t in types if seeds[t]]
        axes = sorted({bench_axes[b] for b in benchmarks})
        matched = [t for t in types if type_axis.get(t) in axes]
        if len(types) < 2 or len(matched) < 2:
            if notes is not None:
                notes.append(f"{where}: needs ≥2 types with a matching axis (types {types}, axes {axes}, "
                             f"type_axis {dict(type_axis)}); skipped")
            continue
        cells.append(SpecificityCell(size, mode, paradigm, tuple(types), tuple(tuple(seeds[t]) for t in types),
                                     tuple(benchmarks), tuple(axes), tuple(matched)))
    return cells


def planned_specificity_cells(runs: Iterable[Run], modes: Iterable[str], bench_axes: Mapping[str, str],
                              type_axis: Mapping[str, str], notes: list[str] | None = None) -> list[SpecificityCell]:
    """The design's cells, before any data: every planned run evaluated on every benchmark in every mode."""
    runs = list(runs)
    return specificity_cells({(b, m): runs for b in bench_axes for m in modes}, bench_axes, type_axis, notes)
