"""How launch talks to each stage: config loaders (for the plan) and command lines (for tasks).

This is the only file that knows the stages' CLIs and config classes, so an interface change
in a stage is absorbed here. Stages are imported lazily: the login node needs their config
classes only, never torch or vLLM.
"""
from __future__ import annotations

import functools
import importlib
import re
from pathlib import Path
from typing import Any

from configs import config_path
from tracecause.config import ConfigError, from_dict, load, merge, parse_override, read_yaml
from tracecause.contracts import SweepLayout

STAGE_MODULE = {"datagen": "datagen", "merge": "datagen", "train": "trainer", "eval": "evalsuite",
                "analysis": "evalsuite"}


def run_stage_main(stage: str, argv: list[str], module_name: str = "") -> int:
    """Run ``<module>.cli.main(argv)`` in this process; a SystemExit becomes its status."""
    module = importlib.import_module(module_name or f"{STAGE_MODULE[stage]}.cli")
    try:
        rc = module.main(list(argv))
    except SystemExit as exit_:
        rc = exit_status(exit_.code)
    return int(rc or 0)


def exit_status(code) -> int:
    """The process status a ``SystemExit(code)`` stands for, as the interpreter would exit with it."""
    return code if isinstance(code, int) else (0 if code is None else 1)


# ----------------------------------------------------------------------------- datagen


def datagen_yaml(name: str) -> Path:
    return config_path("datagen", name)


def datagen_overrides(sweep_dir: Path, dataset_id: str, shards: int, extra: list[str]) -> list[str]:
    return [*extra, f"output.root={sweep_dir}", f"output.dataset_id={dataset_id}", f"shards={shards}"]


def datagen_config(yaml_path: Path, overrides: list[str]) -> Any:
    """datagen's resolved config (no source read): what the rehearsal substitutes."""
    from datagen.plan import load_config

    return load_config(str(yaml_path), overrides)


def datagen_plan(yaml_path: Path, overrides: list[str]) -> Any:
    """datagen's own plan: types, templates and a local source are loaded and checked; the id derived.
    A hub source is described, not downloaded (the login node may have no hub access)."""
    from datagen.plan import load_config, make_plan

    return make_plan(load_config(str(yaml_path), overrides), load_hub=False)


def datagen_source_facts(dg_plan: Any) -> dict:
    """What the plan prints about the pairs: kind, where, revision / sha256, pair count (None = unknown)."""
    from datagen.source import is_shipped_demo

    src, cfg = dg_plan.source, dg_plan.cfg.source
    return {"kind": cfg.kind, "path": cfg.path, "name": src.name, "revision": src.revision, "split": cfg.split,
            "columns": dict(cfg.columns), "pairs": len(src.pairs) if src.loaded else None,
            "duplicates_dropped": src.duplicates_dropped if src.loaded else None,
            # ~4 characters per token, plus the chat markup: a planning number for GPU-hours
            "qa_tokens": (sum(len(p.question) + len(p.answer) for p in src.pairs) / 4 / len(src.pairs) + 20
                          if src.loaded and src.pairs else None),
            "shipped_demo": is_shipped_demo(cfg), "dataset_id": dg_plan.dataset_id,
            "generator": {"backend": dg_plan.cfg.generator.backend, "model": dg_plan.cfg.generator.model,
                          "revision": dg_plan.cfg.generator.revision,
                          "max_tokens": dg_plan.cfg.generator.sampling.max_tokens,
                          "samples": dg_plan.cfg.generator.sampling.n, "types": len(dg_plan.cfg.types)},
            "judge": ({"backend": dg_plan.cfg.filters.judge.generator.backend,
                       "model": dg_plan.cfg.filters.judge.generator.model,
                       "revision": dg_plan.cfg.filters.judge.generator.revision}
                      if dg_plan.cfg.filters.judge.enabled else None),
            "vllm_tp": dg_plan.cfg.generator.vllm.tensor_parallel_size,
            "vllm_memory_fraction": dg_plan.cfg.generator.vllm.gpu_memory_utilization}


def dataset_id(name: str, yaml_path: Path, extra: list[str], explicit: str, sweep_dir: Path) -> str:
    """datagen's id for the config as the sweep sets it (``dg-<hash>``), unless the sweep names one."""
    if explicit:
        return explicit
    return datagen_plan(yaml_path, [*extra, f"output.root={sweep_dir}"]).dataset_id


def datagen_shard_argv(yaml_path: Path, overrides: list[str], shard: int, shards: int) -> list[str]:
    return [str(yaml_path), *overrides, "--shard", str(shard), "--num-shards", str(shards), "--no-progress"]


def datagen_merge_argv(yaml_path: Path, overrides: list[str], shards: int) -> list[str]:
    return [str(yaml_path), *overrides, "--merge", "--num-shards", str(shards)]


def datagen_shard_dir(layout: SweepLayout, dataset_id: str, shard: int, shards: int) -> Path:
    return layout.shards(dataset_id) / f"shard-{shard:05d}-of-{shards:05d}"


# ----------------------------------------------------------------------------- trainer


def trainer_yaml(name: str) -> Path:
    return config_path("trainer", name)


def load_train(yaml_paths: tuple[str, ...], overrides: tuple[str, ...]) -> Any:
    """The trainer's config exactly as ``python -m trainer`` builds it (layer by layer, precise errors)."""
    from trainer.config import TrainConfig

    cfg = load(TrainConfig, list(yaml_paths), list(overrides))
    _train_complete(cfg)
    return cfg


def _train_complete(cfg: Any) -> None:
    req = getattr(cfg, "require_complete", None)
    if callable(req):
        req()
    _deepspeed_file(cfg.deepspeed.config)


@functools.lru_cache(maxsize=64)
def _deepspeed_file(name: str) -> str:
    if Path(name).is_file():
        return name
    return str(config_path("deepspeed", name))  # raises FileNotFoundError naming the file


_SIMPLE = re.compile(r"[A-Za-z_/][\w./+\-]*")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def _parse_fast(text: str, cache: dict) -> tuple[list[str], Any]:
    """parse_override without YAML for plain words/paths (the same value YAML would give)."""
    if text in cache:
        return cache[text]
    key, _, raw = text.partition("=")
    if _SIMPLE.fullmatch(raw) and raw.lower() not in _YAML_WORDS:
        out = (key.strip().split("."), raw)
    else:
        out = parse_override(text)
    cache[text] = out
    return out


class TrainConfigs:
    """Validate thousands of arms' trainer configs fast: YAML read once, each arm merged and checked once.

    The same result as ``load_train``; when an arm fails, ``load_train`` reruns it for the precise,
    layer-naming error (and for the raw-string fallback of overrides, which only matters on error).
    """

    def __init__(self):
        from trainer.config import TrainConfig

        self.cls, self._yaml, self._parsed, self._shapes = TrainConfig, {}, {}, {}

    # Per-arm fields: arms that differ only in these share one full validation (seeds of one arm type).
    _PER_ARM = ("arm_id=", "train.seed=", "output.dir=")

    def load(self, yaml_paths: tuple[str, ...], overrides: tuple[str, ...]) -> Any:
        shape = (yaml_paths, tuple(o for o in overrides if not o.startswith(self._PER_ARM)))
        rep = self._shapes.get(shape)
        if rep is not None:
            derived = self._derive(rep, overrides)
            if derived is not None:
                return derived
        cfg = self._full(yaml_paths, overrides)
        self._shapes[shape] = cfg
        return cfg

    def _derive(self, rep: Any, overrides: tuple[str, ...]) -> Any:
        """``rep`` with this arm's own id, seed and folder; None if they need the full check."""
        import dataclasses

        values = {}
        for text in overrides:
            if text.startswith(self._PER_ARM):
                keys, value = _parse_fast(text, self._parsed)
                values[".".join(keys)] = value
        seed, arm_id, out = values.get("train.seed", rep.train.seed), values.get("arm_id", rep.arm_id), \
            values.get("output.dir", rep.output.dir)
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0 or not isinstance(arm_id, str) \
                or not isinstance(out, str) or not out:
            return None
        return dataclasses.replace(rep, arm_id=arm_id, train=dataclasses.replace(rep.train, seed=seed),
                                   output=dataclasses.replace(rep.output, dir=out))

    def _full(self, yaml_paths: tuple[str, ...], overrides: tuple[str, ...]) -> Any:
        data: dict = {}
        for p in yaml_paths:
            if p not in self._yaml:
                self._yaml[p] = read_yaml(p)
            data = merge(data, self._yaml[p])
        layer: dict = {}  # all overrides in one nested dict (later ones win), merged once
        for text in overrides:
            keys, value = _parse_fast(text, self._parsed)
            node = layer
            for k in keys[:-1]:
                if not isinstance(node.get(k), dict):
                    node[k] = {}
                node = node[k]
            old = node.get(keys[-1])
            node[keys[-1]] = merge(old, value) if isinstance(old, dict) and isinstance(value, dict) else value
        data = merge(data, layer)
        try:
            cfg = from_dict(self.cls, data, source="trainer config")
            _train_complete(cfg)
            return cfg
        except (ConfigError, ValueError, FileNotFoundError):
            return load_train(yaml_paths, overrides)  # raises the precise error


def train_argv(yaml_paths: tuple[str, ...], overrides: tuple[str, ...]) -> list[str]:
    return [*yaml_paths, *overrides]


# ----------------------------------------------------------------------------- models


def model_facts(name: str) -> dict:
    """n_params, largest layer and where the weights come from (tracecause.models.ModelSpec)."""
    from tracecause.models import load_model_spec

    spec = load_model_spec(name)  # FileNotFoundError lists the known models; ConfigError a bad YAML
    source = spec.hub_id or ""
    return {"n_params": int(spec.n_params), "largest_layer_params": int(spec.largest_layer_params),
            "source": source, "revision": spec.revision or "", "local_builder": spec.local_builder or "",
            "layers": spec.n_layers, "hidden": spec.hidden_size, "spec": spec}


# ----------------------------------------------------------------------------- evalsuite


def eval_argvs(sweep_dir: Path, arm_id: str, model_path: str, modes: list[str], battery: str, judge: str,
               shard: int, shards: int, overrides: list[str], revision: str = "") -> list[list[str]]:
    """generate -> judge -> score for one (arm, modes, battery shard), as evalsuite's key=value CLI."""
    common = [f"arm_id={arm_id}", f"model={model_path}", *([f"revision={revision}"] if revision else []),
              f"battery={battery}", f"modes=[{','.join(modes)}]",
              f"sweep_dir={sweep_dir}", f"shard.index={shard}", f"shard.count={shards}", "progress=false",
              *([f"judge_preset={judge}"] if judge else []), *overrides]
    return [[step, *common] for step in ("generate", "judge", "score")]


def analysis_argv(sweep_dir: Path, overrides: list[str]) -> list[str]:
    return ["analyze", str(sweep_dir), *overrides]





def battery_path(battery: str) -> Path:
    path = Path(battery)
    return path if path.is_file() else config_path("evals", battery)


def check_battery(battery: str, judge: str) -> list[dict]:
    """The battery loads as evalsuite loads it (every field and judge template); returns its data files:
    benchmark, path, whether present, and, for present files, the prompt count and sampling budget."""
    import os

    from evalsuite.battery import LLM_JUDGES, load_battery

    if judge:
        config_path("judges", judge)
    bat = load_battery(battery, check_files=False)
    root = os.environ.get("TRACECAUSE_BENCHMARKS", "")
    files = []
    for spec in bat.benchmarks:
        local = bat.resolve(spec)
        raw = spec.source.path
        rel = raw.split("${TRACECAUSE_BENCHMARKS}/", 1)[1] if raw.startswith("${TRACECAUSE_BENCHMARKS}/") else ""
        files.append({"benchmark": spec.name, "path": str(local) if local else f"hub:{spec.source.hub}",
                      "relative": rel, "env_root": root, "present": local is None or local.is_file(),
                      "samples": spec.samples, "limit": spec.limit,
                      "turns": 2 if spec.loader == "are_you_sure" and spec.options.get("turns") != "1" else 1,
                      "llm_judges": sum(len(j.spans) for j in spec.judges if j.name in LLM_JUDGES),
                      "max_tokens": {m: spec.mode_sampling(m).max_tokens for m in ("think", "no_think")}})
    return files


def check_analysis(battery: str, section: dict, source: str) -> dict[str, dict]:
    """Every benchmark declares its primary metric, and the sweep's ``analysis:`` section is what the
    analysis job will accept (names checked against the battery). Returns benchmark -> {axis, primary}."""
    from evalsuite.analysis.spec import AnalysisSpec
    from evalsuite.battery import known_metrics, load_battery

    bat = load_battery(battery, check_files=False)
    bat.require_primaries()
    benchmarks = bat.primaries()
    from_dict(AnalysisSpec, section, source=source, _path="analysis").check_battery(benchmarks, known_metrics(), source)
    return benchmarks


def confirmatory_family(section: dict, source: str, arms, modes, benchmarks: dict[str, dict],
                        analysis_overrides: list[str]) -> dict:
    """The pre-registration the analysis will hold this sweep to: its confirmatory family enumerated from
    the design (evalsuite.analysis.family), the alpha the analysis job runs at, and the section as resolved."""
    from evalsuite.analysis.config import AnalysisConfig
    from evalsuite.analysis.family import Design, describe_test
    from evalsuite.analysis.preregistration import freeze
    from evalsuite.analysis.spec import AnalysisSpec

    analysis = from_dict(AnalysisSpec, section, source=source, _path="analysis")
    alpha = load(AnalysisConfig, overrides=list(analysis_overrides)).alpha
    family, frozen = freeze(analysis, alpha, Design.from_arms(arms, modes, benchmarks))
    return {"frozen": frozen, "unmatched": family.unmatched,
            "tests": family.tests, "lines": [describe_test(t) for t in family.tests],
            "max_family": analysis.max_family, "alpha": alpha,
            "type_benchmark": family.type_bench, "declared": analysis.confirmatory is not None}


def count_prompts(battery: str) -> dict[str, dict]:
    """Prompts and mean K per benchmark whose file is present (the loaders' own count, limit applied);
    benchmarks whose file is missing are left out."""
    from evalsuite.battery import load_battery
    from evalsuite.loaders import load_benchmark

    bat = load_battery(battery, check_files=False)
    out = {}
    for spec in bat.benchmarks:
        local = bat.resolve(spec)
        if local is not None and not local.is_file():
            continue
        items = load_benchmark(spec, bat)
        out[spec.name] = {"prompts": len(items), "samples": sum(i.samples for i in items) / max(1, len(items)),
                          "clusters": len({i.cluster_id for i in items})}
    return out


def check_eval(argvs: list[list[str]]) -> list[Any]:
    """Each step's EvalConfig builds as ``python -m evalsuite`` builds it; the configs are returned."""
    from evalsuite.cli import build_config, parser

    return [build_config(parser().parse_args(list(argv))) for argv in argvs]


def describe(err: Exception) -> str:
    return str(err) if isinstance(err, (ConfigError, FileNotFoundError)) else f"{type(err).__name__}: {err}"
