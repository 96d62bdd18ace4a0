"""What the analysis reads from the sweep folder: sweep.yaml's ``analysis:`` section, expected.json.

sweep.yaml belongs to launch; only these keys matter here and anything else is ignored:

    name: my-sweep
    arms: [qwen3-0.6b.none.base.s0, ...]   # optional (launch writes expected.json instead)
    modes: [think, no_think]
    analysis:                     # validated strictly, by launch at plan time and here again
      primary_metrics:            # override a battery's declaration: {metric, higher_is} (or a name
        em_free_form: {metric: misaligned_coherent, higher_is: worse}   # to keep the direction)
      confirmatory:               # filters on effect-row columns; a row matching any is confirmatory
        - {kind: amplification, mode: think, metric: primary}
      type_axis: {evil: evil, misleading: misleading, submissive: submission}
      model_params: {my-model: 1.5e9}
      unparsed_threshold: 0.05    # judge failures above this (or a gap between sides above it): unreliable

expected.json (written by launch at submit; tracecause.contracts.EXPECTED_FILE): the expected
arms, modes and benchmarks, and each benchmark's declared primary metric and direction.
"""
from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracecause.config import ConfigError, bounded, from_dict, one_of, read_yaml
from tracecause.contracts import EFFECT_KINDS, MODES, PARADIGMS, REASONING_TYPE_AXIS, Arm, SweepLayout
from tracecause.io import read_json

FILTER_KEYS = ("kind", "statistic", "benchmark", "axis", "metric", "mode", "size", "paradigm", "paradigm_b",
               "rtype_a", "rtype_b")

# Pre-declared default: the study's four findings, each one test per model size on each reasoning
# type's own benchmark (``type_primary``, family.py) and its primary metric; specificity one test per
# size. For the paper sweep: per size 3 amplification + 1 specificity + 6 answer-free + 3
# internalisation = 13 tests, 65 over five sizes (Holm's first step at 0.05/65).
DEFAULT_CONFIRMATORY = (
    {"kind": "amplification", "statistic": "difference", "mode": "think", "metric": "primary",
     "benchmark": "type_primary"},
    {"kind": "specificity", "statistic": "diagonal_dominance", "paradigm": "qta", "mode": "think"},
    {"kind": "answer_free", "statistic": "difference", "paradigm_b": "base", "mode": "think", "metric": "primary",
     "benchmark": "type_primary"},
    {"kind": "internalisation", "statistic": "no_think_effect", "paradigm": "qta", "metric": "primary",
     "benchmark": "type_primary"},
)
DEFAULT_TYPE_AXIS = dict(REASONING_TYPE_AXIS)
DIRECTIONS = ("worse", "better")
# Values a confirmatory filter may name, per effect column (the rest are names: sizes, types, ...).
FILTER_VALUES = {
    "kind": EFFECT_KINDS,
    "mode": (*MODES, "no_think_over_think", "think_minus_no_think"),
    "statistic": ("difference", "no_think_effect", "did", "ratio", "diagonal_dominance", "z")
    + tuple(f"slope_{k}_{s}" for k in EFFECT_KINDS for s in ("difference", "no_think_effect", "did")),
    "paradigm": PARADIGMS,
    "paradigm_b": PARADIGMS,
}


@dataclass
class AnalysisSpec:
    # benchmark -> {metric, higher_is} (or a metric name: keep the battery's direction)
    primary_metrics: dict[str, Any] = field(default_factory=dict)
    confirmatory: list[dict[str, Any]] | None = None  # None = DEFAULT_CONFIRMATORY
    type_axis: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_TYPE_AXIS))
    model_params: dict[str, float] = field(default_factory=dict)  # model name -> parameter count
    unparsed_threshold: float = bounded(0.05, ge=0.0, le=1.0, help="judge-failure rate that makes an effect unreliable")
    # reasoning type -> the benchmark its confirmatory tests read (default: the first battery benchmark
    # on the type's axis, in battery order; plan prints which)
    type_benchmark: dict[str, str] = field(default_factory=dict)
    max_family: int = bounded(100, ge=1, help="largest confirmatory family plan accepts (Holm's first step is alpha/N)")
    # one seed-variance component per model size, or per size x paradigm (seeds.py)
    seed_pool: str = one_of("size", ("size", "size_paradigm"), help="arms whose seed variance is pooled")
    # benchmark -> margin on its primary metric's scale: think - no-think within +-margin (TOST) is "equivalent"
    equivalence_margins: dict[str, float] = field(default_factory=dict)

    def validate(self):
        for i, f in enumerate(self.confirmatory or ()):
            if not isinstance(f, dict) or not f:
                raise ValueError(f"confirmatory[{i}] must be a non-empty mapping of effect columns to values")
            unknown = sorted(set(f) - set(FILTER_KEYS))
            if unknown:
                raise ValueError(f"confirmatory[{i}]: unknown keys {unknown}; allowed: {list(FILTER_KEYS)}")
            for key, allowed in FILTER_VALUES.items():
                wants = f.get(key, ())
                bad = [w for w in (wants if isinstance(wants, (list, tuple)) else [wants]) if w not in allowed]
                if bad:
                    raise ValueError(f"confirmatory[{i}].{key}: {bad} unknown; allowed: {list(allowed)}")
        for name, m in self.equivalence_margins.items():
            if not (isinstance(m, (int, float)) and not isinstance(m, bool) and m > 0):
                raise ValueError(f"equivalence_margins.{name}: must be a positive margin on the benchmark's primary "
                                 f"metric's scale, got {m!r}; fix: e.g. 0.05")
        for name, n in self.model_params.items():
            if not n > 0:
                raise ValueError(f"model_params.{name}: must be a positive parameter count, got {n}")
        for name, value in self.primary_metrics.items():
            if isinstance(value, str) and value:
                continue
            if not isinstance(value, dict) or set(value) != {"metric", "higher_is"} \
                    or value["higher_is"] not in DIRECTIONS or not value["metric"]:
                raise ValueError(f"primary_metrics.{name}: {value!r}; give {{metric: <name>, higher_is: "
                                 f"worse|better}} (or a metric name to keep the battery's direction)")

    def check_battery(self, benchmarks: dict[str, dict], known_metrics: list[str], where: str) -> None:
        """Names against the battery (benchmark -> {axis, primary}): what launch checks at plan time."""
        for name, value in self.primary_metrics.items():
            if name not in benchmarks:
                raise ConfigError(where, f"analysis.primary_metrics.{name}",
                                  f"no such benchmark in the battery; allowed: {sorted(benchmarks)}")
            metric = value if isinstance(value, str) else value["metric"]
            if metric not in known_metrics:
                raise ConfigError(where, f"analysis.primary_metrics.{name}",
                                  f"unknown metric {metric!r}; allowed: {known_metrics}")
        for i, f in enumerate(self.confirmatory or ()):
            axes = sorted({b["axis"] for b in benchmarks.values()})
            for key, names in (("benchmark", [*sorted(benchmarks), "type_primary"]), ("axis", axes),
                               ("metric", ["primary", *known_metrics])):
                wants = f.get(key, ())
                bad = [w for w in (wants if isinstance(wants, (list, tuple)) else [wants]) if w not in names]
                if bad:
                    raise ConfigError(where, f"analysis.confirmatory[{i}].{key}", f"{bad} unknown; allowed: {names}")
        for rtype, name in self.type_benchmark.items():
            if name not in benchmarks:
                raise ConfigError(where, f"analysis.type_benchmark.{rtype}",
                                  f"{name!r} is not a benchmark of the battery; allowed: {sorted(benchmarks)}")
        for name in self.equivalence_margins:
            if name not in benchmarks:
                raise ConfigError(where, f"analysis.equivalence_margins.{name}",
                                  f"no such benchmark; allowed: {sorted(benchmarks)}; fix: name a benchmark of the "
                                  f"battery or remove the margin")
        axes = sorted({b["axis"] for b in benchmarks.values()})
        for rtype, axis in self.type_axis.items():
            if axis not in axes:
                raise ConfigError(where, f"analysis.type_axis.{rtype}", f"axis {axis!r} is not in the battery; "
                                                                       f"allowed: {axes}")

    @property
    def family_filters(self) -> list[dict]:
        return [dict(f) for f in (self.confirmatory if self.confirmatory is not None else DEFAULT_CONFIRMATORY)]


@dataclass
class SweepSpec:
    name: str
    arms: list[str]
    modes: tuple[str, ...]
    analysis: AnalysisSpec
    sha256: str | None
    declared_family: bool
    expected: dict = field(default_factory=dict)  # expected.json ({} when launch wrote none)
    # preregistration.check_plan: the family frozen at submit (None: no analysis_plan.json) and, when the
    # analysis was amended after the data, what changed ("key: frozen -> now" lines)
    preregistered: bool = False
    amended: list[str] = field(default_factory=list)


def _arm_id(item: Any, where: str) -> str:
    try:
        if isinstance(item, str):
            return Arm.parse(item).id
        if isinstance(item, dict):
            keys = {k: item[k] for k in ("model", "rtype", "paradigm", "seed") if k in item}
            return Arm(**keys).id
    except (ValueError, TypeError) as err:
        raise ConfigError(where, "arms", str(err)) from None
    raise ConfigError(where, "arms", f"each arm must be an id string or a mapping, got {item!r}")


def read_sweep_spec(root: str | Path) -> SweepSpec:
    root = Path(root)
    path = root / "sweep.yaml"
    data: dict = read_yaml(path) if path.is_file() else {}
    where = str(path)
    arms = [_arm_id(a, where) for a in data.get("arms") or []]
    modes = tuple(data.get("modes") or MODES)
    bad = [m for m in modes if m not in MODES]
    if bad:
        raise ConfigError(where, "modes", f"{bad} not in {list(MODES)}")
    section = data.get("analysis") or {}
    if not isinstance(section, dict):
        raise ConfigError(where, "analysis", "must be a mapping")
    analysis = from_dict(AnalysisSpec, section, source=where, _path="analysis")
    digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
    expected_path = SweepLayout(root).expected
    expected = read_json(expected_path) if expected_path.is_file() else {}
    if expected:
        arms = arms or [_arm_id(a, str(expected_path)) for a in expected.get("arms", [])]
        modes = tuple(expected.get("modes") or modes)
    return SweepSpec(str(data.get("name") or root.name), arms, modes, analysis, digest,
                     declared_family=analysis.confirmatory is not None, expected=expected)


def spec_dict(spec: SweepSpec) -> dict:
    return {"name": spec.name, "modes": list(spec.modes), "analysis": dataclasses.asdict(spec.analysis),
            "family_filters": spec.analysis.family_filters, "declared_family": spec.declared_family,
            "sweep_yaml_sha256": spec.sha256, "expected": spec.expected, "preregistered": spec.preregistered,
            "amended": list(spec.amended)}
