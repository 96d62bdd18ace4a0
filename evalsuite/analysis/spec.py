"""What the analysis reads from sweep.yaml: the expected arms and the pre-declared family.

sweep.yaml belongs to launch; only these keys matter here and anything else is ignored:

    name: my-sweep
    arms: [qwen3-0.6b.none.base.s0, qwen3-0.6b.evil.qta.s0, ...]   # or mappings model/rtype/paradigm/seed
    modes: [think, no_think]
    analysis:                     # validated strictly (unknown keys fail before any work)
      primary_metrics: {em_free: misaligned_coherent}
      confirmatory:               # filters on effect-row columns; a row matching any is confirmatory
        - {kind: amplification, mode: think, metric: primary}
      type_axis: {evil: misalignment, misleading: deception, submissive: sycophancy}
      model_params: {my-model: 1.5e9}
"""
from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracecause.config import ConfigError, from_dict, read_yaml
from tracecause.contracts import MODES, Arm

FILTER_KEYS = ("kind", "statistic", "benchmark", "axis", "metric", "mode", "size", "paradigm", "paradigm_b",
               "rtype_a", "rtype_b")

# Pre-declared default: one primary contrast per finding, on each benchmark's primary metric
# (so one per behaviour axis), at every model size.
DEFAULT_CONFIRMATORY = (
    {"kind": "amplification", "statistic": "difference", "mode": "think", "metric": "primary"},
    {"kind": "content", "statistic": "difference", "paradigm": "qta", "mode": "think", "metric": "primary"},
    {"kind": "answer_free", "statistic": "difference", "paradigm_b": "base", "mode": "think", "metric": "primary"},
    {"kind": "internalisation", "statistic": "did", "paradigm": "qta", "metric": "primary"},
)
DEFAULT_TYPE_AXIS = {"evil": "misalignment", "misleading": "deception", "submissive": "sycophancy"}


@dataclass
class AnalysisSpec:
    primary_metrics: dict[str, str] = field(default_factory=dict)  # benchmark -> metric; else the first by name
    confirmatory: list[dict[str, Any]] | None = None  # None = DEFAULT_CONFIRMATORY
    type_axis: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_TYPE_AXIS))
    model_params: dict[str, float] = field(default_factory=dict)  # model name -> parameter count

    def validate(self):
        for i, f in enumerate(self.confirmatory or ()):
            if not isinstance(f, dict) or not f:
                raise ValueError(f"confirmatory[{i}] must be a non-empty mapping of effect columns to values")
            unknown = sorted(set(f) - set(FILTER_KEYS))
            if unknown:
                raise ValueError(f"confirmatory[{i}]: unknown keys {unknown}; allowed: {list(FILTER_KEYS)}")
        for name, n in self.model_params.items():
            if not n > 0:
                raise ValueError(f"model_params.{name}: must be a positive parameter count, got {n}")

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
    return SweepSpec(str(data.get("name") or root.name), arms, modes, analysis, digest,
                     declared_family=analysis.confirmatory is not None)


def spec_dict(spec: SweepSpec) -> dict:
    return {"name": spec.name, "modes": list(spec.modes), "analysis": dataclasses.asdict(spec.analysis),
            "family_filters": spec.analysis.family_filters, "declared_family": spec.declared_family,
            "sweep_yaml_sha256": spec.sha256}
