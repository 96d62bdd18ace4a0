"""How launch talks to each stage: config loaders (for the plan) and command lines (for tasks).

This is the only file that knows the stages' CLIs and config classes, so an interface change
in a stage is absorbed here. Stages are imported lazily: the login node needs their config
classes only, never torch or vLLM.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from configs import config_path
from tracecause.config import ConfigError, config_hash, load
from tracecause.contracts import SweepLayout

STAGE_MODULE = {"datagen": "datagen", "merge": "datagen", "train": "trainer", "eval": "evalsuite",
                "analysis": "evalsuite"}


def run_stage_main(stage: str, argv: list[str], module_name: str = "") -> int:
    """Run ``<module>.cli.main(argv)`` in this process; a SystemExit becomes its status."""
    module = importlib.import_module(module_name or f"{STAGE_MODULE[stage]}.cli")
    try:
        rc = module.main(list(argv))
    except SystemExit as exit_:
        code = exit_.code
        rc = code if isinstance(code, int) else (0 if code is None else 1)
    return int(rc or 0)


# ----------------------------------------------------------------------------- datagen


def datagen_yaml(name: str) -> Path:
    return config_path("datagen", name)


def datagen_overrides(sweep_dir: Path, dataset_id: str, shards: int, extra: list[str]) -> list[str]:
    return [*extra, f"output.root={sweep_dir}", f"output.dataset_id={dataset_id}", f"shards={shards}"]


def datagen_plan(yaml_path: Path, overrides: list[str]) -> Any:
    """datagen's own plan: types, templates and the source are loaded and checked; the id derived."""
    from datagen.plan import load_config, make_plan

    return make_plan(load_config(str(yaml_path), overrides))


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
    from trainer.config import TrainConfig

    cfg = load(TrainConfig, list(yaml_paths), list(overrides))
    req = getattr(cfg, "require_complete", None)
    if callable(req):
        req()
    ds = Path(cfg.deepspeed.config)
    if not ds.is_file():
        config_path("deepspeed", cfg.deepspeed.config)  # raises FileNotFoundError naming the file
    return cfg


def train_argv(yaml_paths: tuple[str, ...], overrides: tuple[str, ...]) -> list[str]:
    return [*yaml_paths, *overrides]


def zero3_bytes(n_params: int, largest_layer: int, n_gpus: int, offload: bool) -> int:
    try:
        from trainer.memory import zero3_model_state_bytes
    except ImportError:  # the formula of ../shared/design/NOTES.md (DeepSpeed's estimator)
        if offload:
            return int(4 * largest_layer + 2 * n_params / n_gpus)
        return int(4 * largest_layer + 18 * n_params / n_gpus)
    return int(zero3_model_state_bytes(n_params, largest_layer, n_gpus, offload))


# ----------------------------------------------------------------------------- models


def model_facts(name: str) -> dict:
    """n_params, largest layer, layers, hidden size and where the weights come from."""
    path = config_path("models", name)  # FileNotFoundError lists known models
    try:
        from tracecause.models import load_model_spec
    except ImportError:
        from tracecause.config import read_yaml

        data = read_yaml(path)
        return {"n_params": int(data.get("n_params", 0)), "largest_layer_params": int(data.get("largest_layer_params", 0)),
                "source": str(data.get("hub_id") or data.get("path") or ""), "layers": int(data.get("num_hidden_layers", 0)),
                "hidden": int(data.get("hidden_size", 0))}
    spec = load_model_spec(name)
    get = lambda *names, default=0: next((getattr(spec, n) for n in names if getattr(spec, n, None) not in (None, "")), default)
    n_params = get("n_params")
    n_params = n_params() if callable(n_params) else n_params
    largest = get("largest_layer_params", "largest_layer", "embedding_params")
    largest = largest() if callable(largest) else largest
    return {"n_params": int(n_params), "largest_layer_params": int(largest),
            "source": str(get("hub_id", "path", "repo", "source", default="")),
            "layers": int(get("num_hidden_layers", "layers")), "hidden": int(get("hidden_size", "hidden"))}


# ----------------------------------------------------------------------------- evalsuite


def eval_argvs(sweep_dir: Path, arm_id: str, model_path: str, mode: str, battery: str, judge: str,
               shard: int, shards: int, overrides: list[str]) -> list[list[str]]:
    """generate -> judge -> score for one (arm, mode, battery shard), as evalsuite's key=value CLI."""
    common = [f"arm_id={arm_id}", f"model={model_path}", f"battery={battery}", f"modes=[{mode}]",
              f"sweep_dir={sweep_dir}", f"shard.index={shard}", f"shard.count={shards}", "progress=false",
              *([f"judge_preset={judge}"] if judge else []), *overrides]
    return [[step, *common] for step in ("generate", "judge", "score")]


def eval_done_dir(layout: SweepLayout, arm_id: str, mode: str, shard: int, shards: int) -> Path:
    return layout.eval(arm_id, mode)


def analysis_argv(sweep_dir: Path, overrides: list[str]) -> list[str]:
    return ["analyze", str(sweep_dir), *overrides]


def load_eval(argv: list[str]) -> Any:
    """evalsuite's EvalConfig from one task's key=value list (after the step word)."""
    from evalsuite.config import EvalConfig

    return load(EvalConfig, [], [a for a in argv[1:] if "=" in a])


def check_eval(battery: str, judge: str, modes: list[str]) -> None:
    """Load the battery and judge configs the way evalsuite does (files, templates, benchmarks)."""
    config_path("evals", battery)
    if judge:
        config_path("judges", judge)
    try:
        mod = importlib.import_module("evalsuite.battery")
    except ImportError:
        return
    loader = getattr(mod, "load_battery", None)
    if callable(loader):
        loader(battery)


def describe(err: Exception) -> str:
    return str(err) if isinstance(err, (ConfigError, FileNotFoundError)) else f"{type(err).__name__}: {err}"
