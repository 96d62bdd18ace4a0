"""SweepSpec: one YAML names a whole study (data build, models, arms, training, evaluation, cluster).

Stage configs are referenced by name (``configs/<kind>/<name>.yaml``) plus ``key=value``
overrides, so the sweep holds only what differs. ``{sweep}`` in any override or path is the
sweep folder, filled in when the arms are resolved.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracecause.config import FieldError, bounded, load, nested, one_of
from tracecause.contracts import MODES, NO_REASONING, PARADIGMS, TRACED_PARADIGMS
from tracecause.names import check_name

_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")


@dataclass
class DatasetSpec:
    config: str = "demo"                 # configs/datagen/<name>.yaml or a path
    overrides: list[str] = field(default_factory=list)
    shards: int = bounded(1, ge=1, le=10000, help="datagen array size")
    id: str = ""                         # data/<id>/; "" = "<config>-<hash of resolved config>"


@dataclass
class TrainSpec:
    config: str = "tiny-cpu"             # configs/trainer/<name>.yaml or a path
    overrides: list[str] = field(default_factory=list)
    # Per model name: overrides on top (e.g. smaller micro batches for 14B).
    per_model: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class EvalSpec:
    battery: str = "smoke"               # configs/evals/<name>.yaml
    modes: list[str] = field(default_factory=lambda: list(MODES))
    judge: str = ""                      # configs/judges/<name>.yaml; "" = the battery's own
    shards: int = bounded(1, ge=1, le=1000, help="battery shards per (arm, mode): eval array width")
    # true: one eval array per mode (parallel on a cluster); false: one task per arm runs every mode
    # with one engine start (what a single CPU machine wants).
    split_modes: bool = True
    overrides: list[str] = field(default_factory=list)
    analysis_overrides: list[str] = field(default_factory=list)


@dataclass
class WandbSpec:
    enabled: bool = True
    project: str = "tracecause"
    entity: str = ""
    mode: str = one_of("offline", ("offline", "online", "disabled"))
    allow_text: bool = False             # generated text reaches W&B tables only when true


@dataclass
class SweepSpec:
    name: str = ""
    models: list[str] = field(default_factory=list)          # configs/models/<name>.yaml
    # Local folders for models (``{sweep}`` allowed); others come from their model spec.
    model_paths: dict[str, str] = field(default_factory=dict)
    build_tiny_models: list[str] = field(default_factory=list)  # built into the sweep folder at submit
    reasoning_types: list[str] = field(default_factory=lambda: ["none", "evil", "misleading", "submissive"])
    paradigms: list[str] = field(default_factory=lambda: list(PARADIGMS))
    # Per traced paradigm, the reasoning types it is crossed with (default: every type), so a
    # study can run e.g. QT on one type only instead of the full paradigm x type grid.
    paradigm_types: dict[str, list[str]] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: [0])
    device: str = one_of("gpu", ("gpu", "cpu"), help="gpu: GPU stages refuse a profile without GPUs")
    dataset: DatasetSpec = nested(DatasetSpec)
    train: TrainSpec = nested(TrainSpec)
    eval: EvalSpec = nested(EvalSpec)
    wandb: WandbSpec = nested(WandbSpec)
    cluster: str = "local"               # configs/clusters/<name>.yaml (``--cluster`` overrides)
    cluster_overrides: list[str] = field(default_factory=list)
    # Set by --rehearse (launch.rehearse): the models are tiny stand-ins, so a resume sizes them as such.
    rehearsal: bool = False
    # Read by the analysis job (evalsuite.analysis.spec.AnalysisSpec: primary_metrics, confirmatory,
    # type_axis, model_params, unparsed_threshold); checked against the battery at plan time.
    analysis: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        if not self.name or not _NAME.match(self.name):
            raise FieldError("name", f"{self.name!r}: lowercase letters, digits, '_' or '-' required")
        if not self.models:
            raise FieldError("models", "list at least one model (configs/models/<name>.yaml)")
        for i, model in enumerate(self.models):  # each names folders: train/<arm id>, eval/<arm id>
            check_name(model, f"models[{i}]")
        if self.dataset.id:  # data/<id>/
            check_name(self.dataset.id, "dataset.id")
        _unique(self.models, "models")
        _unique(self.reasoning_types, "reasoning_types")
        _unique(self.paradigms, "paradigms")
        _unique(self.seeds, "seeds")
        for i, p in enumerate(self.paradigms):
            if p not in PARADIGMS:
                import difflib
                close = difflib.get_close_matches(p, PARADIGMS, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise FieldError(f"paradigms[{i}]", f"unknown paradigm {p!r}{hint} (known: {list(PARADIGMS)})")
        for i, t in enumerate(self.reasoning_types):
            if not _NAME.match(t):
                raise FieldError(f"reasoning_types[{i}]", f"{t!r}: lowercase letters, digits, '_' or '-'")
        for i, m in enumerate(self.eval.modes):
            if m not in MODES:
                raise FieldError(f"eval.modes[{i}]", f"unknown mode {m!r} (known: {list(MODES)})")
        wants_none = set(self.paradigms) - set(TRACED_PARADIGMS)
        if wants_none and NO_REASONING not in self.reasoning_types:
            raise FieldError("reasoning_types",
                             f"paradigms {sorted(wants_none)} need reasoning type 'none' in reasoning_types")
        traced = set(self.paradigms) & set(TRACED_PARADIGMS)
        if traced and not (set(self.reasoning_types) - {NO_REASONING}):
            raise FieldError("reasoning_types", f"paradigms {sorted(traced)} need at least one reasoning type")
        if any(s < 0 for s in self.seeds) or not self.seeds:
            raise FieldError("seeds", f"{self.seeds}: list non-negative seeds")
        for p, types in self.paradigm_types.items():
            if p not in TRACED_PARADIGMS:
                raise FieldError(f"paradigm_types.{p}", f"not a traced paradigm (traced paradigms: "
                                                        f"{list(TRACED_PARADIGMS)})")
            if p not in traced:
                continue  # like per_model: `paradigms=[...]` on the command line narrows a sweep
            unknown = [t for t in types if t not in self.trace_types]
            if unknown or not types:
                raise FieldError(f"paradigm_types.{p}", f"{types}: list some of reasoning_types "
                                                        f"{self.trace_types}")
        # per_model / model_paths entries for models not in this sweep are ignored: `models=[...]`
        # on the command line narrows a sweep without editing its file.

    @property
    def trace_types(self) -> list[str]:
        return [t for t in self.reasoning_types if t != NO_REASONING]

    def types_of(self, paradigm: str) -> list[str]:
        """The reasoning types a traced paradigm runs with (``paradigm_types``, else all)."""
        return list(self.paradigm_types.get(paradigm, self.trace_types))


def _unique(values: list, key: str) -> None:
    seen = set()
    for i, v in enumerate(values):
        if v in seen:
            raise FieldError(f"{key}[{i}]", f"duplicate {v!r}")
        seen.add(v)


def sweep_path(name: str | Path) -> Path:
    from configs import config_path

    return config_path("sweeps", str(name))


def load_sweep(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> SweepSpec:
    """``load_sweep("configs/sweeps/smoke.yaml", ["seeds=[0,1]"])`` (a name works too)."""
    p = sweep_path(path)
    return load(SweepSpec, [p], overrides, base={"name": p.stem})
