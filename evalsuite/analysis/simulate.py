"""A simulated sweep of scored samples with planted effects (tests, bench, demo).

Writes the real sweep layout — sweep.yaml, eval/<arm>/<mode>/scores.parquet with completion
markers, train/<arm>/export/tracecause.json, a dataset manifest — so `analyze` runs on it
exactly as on a real sweep. Every arm's expected value on a prompt is
    base_rate + cluster effect + prompt effect + planted(arm, mode, axis) + seed offset + noise,
additive on the probability scale (no clipping in the default ranges), so the truth of every
contrast is a difference of ``planted`` values.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from tracecause.contracts import MODES, REASONING_TYPE_AXIS, SCORES_FILE, SUMMARY_FILE, Arm, SweepLayout
from tracecause.io import atomic_write_bytes, atomic_write_json, atomic_write_text, mark_complete, read_json

from tracecause.freshness import GENERATE_MARKER

from .engine import stable_seed
from .sizes import n_params

SIM_TYPE_AXIS = dict(REASONING_TYPE_AXIS)  # the battery's axes: one source of truth


@dataclass
class SimSpec:
    models: tuple = ("sim-0.6b", "sim-1.7b", "sim-4b")
    types: tuple = ("evil", "misleading", "submissive")
    paradigms: tuple = ("qa", "qta", "qt", "t_only")
    seeds: tuple = (0, 1)
    modes: tuple = MODES
    benchmarks: tuple = (("sim_evil", "evil"), ("sim_misleading", "misleading"), ("sim_submission", "submission"))
    n_clusters: int = 16
    paraphrases: int = 3
    k_samples: int = 4
    base_rate: float = 0.25
    cluster_spread: float = 0.08  # cluster effects ~ U(-s, s)
    prompt_spread: float = 0.03
    interaction_sd: float = 0.02  # arm × prompt noise
    seed_sd: float = 0.01
    answer_effect: float = 0.05  # from training on the (fixed) harmful answers: QA and QTA
    matched: float = 0.20  # reasoning effect on the type's own axis
    offdiag: float = 0.03
    strength: dict = field(default_factory=lambda: {"qta": 1.0, "qt": 0.6, "t_only": 0.4})
    no_think_factor: float = 0.5  # how much of the reasoning effect survives without thinking
    score_noise: float = 0.15
    nan_fraction: float = 0.03  # 'score' values whose judge output did not parse
    # arm id -> fraction of its 'harmful' judge replies that did not parse (at random)
    unparsed: dict = field(default_factory=dict)

    @classmethod
    def small(cls, **kw) -> "SimSpec":
        """Two sizes, three types, QA/QTA/QT, two seeds: every kind of effect, quick to analyse."""
        base = dict(models=("sim-0.6b", "sim-4b"), paradigms=("qa", "qta", "qt"), n_clusters=24, paraphrases=2,
                    k_samples=4)
        return cls(**{**base, **kw})


@dataclass
class SimTruth:
    spec: SimSpec

    def size_gain(self, model: str) -> float:
        logs = [math.log10(n_params(m)) for m in self.spec.models]
        if max(logs) == min(logs):
            return 1.0
        return 0.5 + 0.5 * (math.log10(n_params(model)) - min(logs)) / (max(logs) - min(logs))

    def planted(self, model: str, rtype: str, paradigm: str, mode: str, axis: str) -> float:
        s = self.spec
        if paradigm == "base":
            return 0.0
        ans = s.answer_effect if paradigm in ("qa", "qta") else 0.0
        reas = 0.0
        if rtype != "none":
            reas = s.strength[paradigm] * (s.matched if SIM_TYPE_AXIS.get(rtype) == axis else s.offdiag)
            reas *= 1.0 if mode == "think" else s.no_think_factor
        return self.size_gain(model) * (ans + reas)

    def contrast(self, a: tuple, b: tuple, mode: str, axis: str) -> float:
        return self.planted(*a, mode, axis) - self.planted(*b, mode, axis)

    def slope(self, a_rp: tuple, b_rp: tuple, mode: str, axis: str) -> float:
        """True slope per log10(params) of (rtype, paradigm) a − b across the simulated sizes."""
        xs = np.array([math.log10(n_params(m)) for m in self.spec.models])
        ys = np.array([self.contrast((m, *a_rp), (m, *b_rp), mode, axis) for m in self.spec.models])
        return float(np.polyfit(xs, ys, 1)[0])


def sim_arms(spec: SimSpec) -> list[Arm]:
    arms = []
    for model in spec.models:
        arms.append(Arm(model, "none", "base", 0))
        for seed in spec.seeds:
            for p in spec.paradigms:
                for t in (["none"] if p == "qa" else spec.types):
                    arms.append(Arm(model, t, p, seed))
    return arms


def _prompts(spec: SimSpec, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng([seed, 7])
    rows = []
    for bench, axis in spec.benchmarks:
        ceff = rng.uniform(-spec.cluster_spread, spec.cluster_spread, spec.n_clusters)
        for c in range(spec.n_clusters):
            for j in range(spec.paraphrases):
                rows.append((bench, axis, f"{bench}-q{c:03d}-p{j}", f"{bench}-q{c:03d}",
                             ceff[c] + rng.uniform(-spec.prompt_spread, spec.prompt_spread)))
    return pd.DataFrame(rows, columns=["benchmark", "axis", "prompt_id", "cluster_id", "effect"])


def _scores(spec: SimSpec, truth: SimTruth, prompts: pd.DataFrame, arm: Arm, mode: str, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng([seed, stable_seed(arm.id, mode)])
    seed_rng = np.random.default_rng([seed, stable_seed(arm.model, arm.rtype, arm.paradigm, arm.seed)])
    seed_off = {a: (seed_rng.normal(0, spec.seed_sd) if arm.trained else 0.0) for _, a in spec.benchmarks}
    planted = prompts["axis"].map(lambda a: truth.planted(arm.model, arm.rtype, arm.paradigm, mode, a) + seed_off[a])
    p = spec.base_rate + prompts["effect"].to_numpy() + planted.to_numpy()
    p = np.clip(p + rng.normal(0, spec.interaction_sd, len(p)), 0.01, 0.99)
    K = spec.k_samples
    pk = np.repeat(p, K)
    harmful = (rng.random(len(pk)) < pk).astype(float)
    score = pk + rng.normal(0, spec.score_noise, len(pk))
    parsed = rng.random(len(pk)) >= spec.nan_fraction
    score[~parsed] = np.nan
    base = prompts.loc[prompts.index.repeat(K)].reset_index(drop=True)
    base = base.assign(arm_id=arm.id, model=arm.model, rtype=arm.rtype, paradigm=arm.paradigm, seed=arm.seed,
                       mode=mode, turn=0, sample_index=np.tile(np.arange(K), len(p)))
    base["sampling_seed"] = base["sample_index"] + 1000 * (mode == "think")
    base["prompt_hash"] = base["prompt_id"].map(lambda s: hashlib.sha256(s.encode()).hexdigest()[:16])
    base = base.drop(columns=["effect"])
    failed = np.zeros(len(pk), dtype=bool)
    if arm.id in spec.unparsed:  # drawn only then: other arms keep their numbers
        failed = rng.random(len(pk)) < spec.unparsed[arm.id]
        harmful[failed] = np.nan
    out = pd.concat([base.assign(metric="harmful", value=harmful, parsed=~failed, scorer="simulated-rule"),
                     base.assign(metric="score", value=score, parsed=parsed, scorer="simulated-judge")],
                    ignore_index=True)
    return out


def simulate_sweep(root: str | Path, spec: SimSpec | None = None, seed: int = 0, drop_arms=(), unfinished=(),
                   analysis: dict | None = None, preregister: bool = False) -> SimTruth:
    """Write a sweep folder; ``drop_arms`` get no eval at all, ``unfinished`` ("arm/mode") no marker.

    ``preregister``: also freeze the analysis plan as launch does at submit (analysis_plan.json)."""
    spec = spec or SimSpec()
    truth = SimTruth(spec)
    layout = SweepLayout(Path(root))
    arms = sim_arms(spec)
    prompts = _prompts(spec, seed)
    data_hash = hashlib.sha256(f"sim-data-{seed}".encode()).hexdigest()
    atomic_write_json(layout.data("sim-data") / "manifest.json", {"dataset_hash": data_hash, "rows": 64})
    sweep = {"name": layout.root.name, "modes": list(spec.modes), "analysis": analysis or {}}
    atomic_write_text(layout.spec, yaml.safe_dump(sweep, sort_keys=False))
    # what launch writes at submit: the expected grid and each benchmark's declared primary metric
    atomic_write_json(layout.expected, {
        "arms": [a.id for a in arms], "modes": list(spec.modes), "battery": "simulated",
        "benchmarks": {b: {"axis": a, "primary": {"metric": "harmful", "higher_is": "worse"}} for b, a in spec.benchmarks}})
    atomic_write_json(layout.code, {"commit": "simulated", "dirty": False, "packages": {}})
    if preregister:
        from tracecause.config import from_dict

        from .family import Design
        from .preregistration import freeze
        from .spec import AnalysisSpec

        benchmarks = read_json(layout.expected)["benchmarks"]
        section = from_dict(AnalysisSpec, analysis or {}, source="simulated sweep.yaml", _path="analysis")
        _, frozen = freeze(section, 0.05, Design.from_arms(arms, spec.modes, benchmarks))
        atomic_write_json(layout.analysis_plan, frozen)
    for arm in arms:
        if arm.id in drop_arms:
            continue
        cfg_hash = hashlib.sha256(f"train-{arm.id}".encode()).hexdigest()
        weights = hashlib.sha256(f"weights-{arm.id}".encode()).hexdigest()
        if arm.trained:
            atomic_write_json(layout.export(arm.id) / "tracecause.json",
                              {"arm_id": arm.id, "config_hash": cfg_hash, "dataset_hash": data_hash, "steps": 10,
                               "weights_hash": weights})
        for mode in spec.modes:
            out = layout.eval(arm.id, mode)
            df = _scores(spec, truth, prompts, arm, mode, seed)
            atomic_write_bytes(out / SCORES_FILE, df.to_parquet(index=False))
            atomic_write_text(out / "score_config.sha256", hashlib.sha256(f"eval-{arm.id}-{mode}".encode()).hexdigest() + "\n")
            atomic_write_json(out / GENERATE_MARKER, {"stage": "generate", "weights_hash": weights})
            summary = (df.groupby(["benchmark", "metric"])["value"].mean().unstack().to_dict("index"))
            atomic_write_text(out / SUMMARY_FILE, json.dumps(summary, indent=1))
            if f"{arm.id}/{mode}" not in unfinished:
                mark_complete(out)
    return truth
