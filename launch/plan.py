"""Plan: validate a sweep completely, then lay out its stage graph. Nothing runs, nothing is submitted.

Every error names the arm (or stage) and the field, and all of them are reported at once.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from tracecause.config import ConfigError, config_hash
from tracecause.contracts import SweepLayout

from launch import stages
from launch.arms import ResolvedArm, fill, resolve_arms
from launch.graph import Job, Resources, Task, order
from launch.profiles import ClusterProfile, load_profile
from launch.spec import SweepSpec, load_sweep

GiB = 2 ** 30


class PlanError(ValueError):
    """One or more problems with a sweep; the message lists each with its arm/stage and field."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("the sweep cannot run:\n  - " + "\n  - ".join(problems))


@dataclass
class Plan:
    spec: SweepSpec
    profile: ClusterProfile
    sweep_dir: Path
    dataset_id: str
    arms: list[ResolvedArm]
    jobs: list[Job]
    model_paths: dict[str, str] = field(default_factory=dict)

    @property
    def layout(self) -> SweepLayout:
        return SweepLayout(self.sweep_dir)

    def job(self, name: str) -> Job:
        return next(j for j in self.jobs if j.name == name)


def default_sweep_dir(spec: SweepSpec) -> Path:
    return Path("sweeps") / spec.name


def make_plan(sweep: str | Path, overrides: list[str] = (), cluster: str | None = None,
              sweep_dir: str | Path | None = None, cluster_overrides: list[str] = (),
              check_stage_configs: bool = True) -> Plan:
    """Load, validate and lay out. Raises PlanError (every problem) or ConfigError (the spec itself)."""
    spec = load_sweep(sweep, list(overrides))
    try:
        profile = load_profile(cluster or spec.cluster, [*spec.cluster_overrides, *cluster_overrides])
    except FileNotFoundError as err:
        raise PlanError([f"cluster: {err}"]) from None
    # What ran is what resume must rerun: the profile actually used is part of the recorded spec.
    spec.cluster = str(cluster or spec.cluster)
    spec.cluster_overrides = [*spec.cluster_overrides, *cluster_overrides]
    root = Path(sweep_dir or default_sweep_dir(spec)).resolve()
    problems: list[str] = []
    layout = SweepLayout(root)

    model_paths, facts = {}, {}
    for i, name in enumerate(spec.models):
        try:
            facts[name] = stages.model_facts(name)
        except (FileNotFoundError, ConfigError) as err:
            problems.append(f"models[{i}] {name!r}: {stages.describe(err)}")
            continue
        path = spec.model_paths.get(name) or facts[name]["source"]
        model_paths[name] = fill(path, root)
        if not path:
            problems.append(f"models[{i}] {name}: no weights: the model spec has no hub_id (local_builder "
                            f"{facts[name]['local_builder']!r}); set model_paths.{name} (and build_tiny_models)")
        elif name not in spec.build_tiny_models and (path.startswith("/") or path.startswith(".")) \
                and not Path(fill(path, root)).exists():
            problems.append(f"model {name}: model_paths.{name}={path} does not exist")
    if problems:
        raise PlanError(problems)

    # datagen: its config as the sweep sets it
    try:
        dg_yaml = stages.datagen_yaml(spec.dataset.config)
        extra = [fill(o, root) for o in spec.dataset.overrides]
        ds_id = stages.dataset_id(spec.dataset.config, dg_yaml, extra, spec.dataset.id, root)
        dg_over = stages.datagen_overrides(root, ds_id, spec.dataset.shards, extra)
        if check_stage_configs:
            dg_cfg = stages.datagen_plan(dg_yaml, dg_over).cfg
            missing = sorted(set(spec.trace_types) - set(getattr(dg_cfg, "types", spec.trace_types)))
            if missing:
                problems.append(f"dataset: reasoning_types {missing} are not built by datagen config "
                                f"{dg_yaml.name} (its types: {dg_cfg.types}); add them to types")
    except (FileNotFoundError, ConfigError, ValueError) as err:
        raise PlanError([f"dataset ({spec.dataset.config}): {stages.describe(err)}"]) from None

    try:
        tr_yaml = stages.trainer_yaml(spec.train.config)
    except FileNotFoundError as err:
        raise PlanError([f"train.config: {err}"]) from None
    group = f"{spec.name}-{config_hash({'sweep': str(root)}, 6)}"
    arms = resolve_arms(spec, root, layout.data(ds_id), model_paths, tr_yaml, group)

    train_cfgs = {}
    if check_stage_configs:
        loader = stages.TrainConfigs()
        for ra in arms:
            if not ra.arm.trained:
                continue
            try:
                train_cfgs[ra.id] = loader.load(ra.train_yaml, ra.train_overrides)
            except (ConfigError, FileNotFoundError, ValueError) as err:
                problems.append(f"arm {ra.id}: trainer config: {stages.describe(err)}")

    jobs = _build_jobs(spec, profile, root, ds_id, dg_yaml, dg_over, arms, facts, train_cfgs, problems)
    if check_stage_configs:
        # Eval tasks differ only in arm id, model folder, mode and shard: check one per mode and shard.
        seen = set()
        try:
            stages.check_battery(spec.eval.battery, spec.eval.judge)
            for job in (j for j in jobs if j.stage == "eval"):
                kind = (job.name.startswith("eval-base"), job.notes["mode"], job.notes["shard"])
                if kind not in seen:
                    seen.add(kind)
                    where = f"arm {job.tasks[0].arm}"
                    stages.check_eval([list(a) for a in job.tasks[0].argvs])
        except (ConfigError, FileNotFoundError, ValueError) as err:
            problems.append(f"{where if seen else 'eval.battery'}: eval config: {stages.describe(err)}")
    if problems:
        raise PlanError(problems)
    return Plan(spec, profile, root, ds_id, arms, order(jobs), model_paths)


def _res(profile: ClusterProfile, stage: str, nodes: int = 1) -> Resources:
    r = profile.resources(stage)
    return Resources(nodes=nodes, tasks_per_node=profile.processes_per_node(stage), gpus_per_node=r.gpus,
                     cpus_per_task=r.cpus, mem_gb=r.mem_gb, time_min=r.time_min, python=r.python,
                     setup=tuple(f"export {k}={shlex.quote(str(v))}" for k, v in profile.env.items())
                     + tuple(profile.setup) + tuple(r.setup))


def _needs_gpu(spec: SweepSpec, profile: ClusterProfile, stage: str, who: str, problems: list[str]) -> None:
    if spec.device == "gpu" and profile.resources(stage).gpus == 0:
        problems.append(f"{who}: stage {stage} needs GPUs (sweep device=gpu) but cluster profile "
                        f"{profile.name!r} gives stages.{stage}.gpus=0 (use a GPU profile, or device=cpu)")


def _train_nodes(spec, profile, model, facts, cfg, problems, who) -> tuple[int, dict]:
    """Fewest nodes whose ZeRO-3 model states + activation margin fit (GPU memory or node RAM)."""
    res = profile.resources("train")
    offload = bool(getattr(getattr(cfg, "deepspeed", None), "offload_optimizer", False))
    per_node = profile.processes_per_node("train")
    if res.gpus:
        budget = profile.gpu_memory_gb * GiB * (1 - profile.activation_margin)
        where = f"GPU memory {profile.gpu_memory_gb} GiB x (1 - activation_margin {profile.activation_margin})"
    else:
        budget = res.mem_gb * GiB * (1 - profile.activation_margin) / per_node
        where = f"stages.train.mem_gb {res.mem_gb} / {per_node} processes x (1 - activation_margin)"
    candidates = [res.nodes] if res.nodes else list(range(1, res.max_nodes + 1))
    for nodes in candidates:
        need = stages.zero3_bytes(facts["n_params"], facts["largest_layer_params"], nodes * per_node, offload)
        if need <= budget:
            return nodes, {"state_gib_per_process": need / GiB, "budget_gib": budget / GiB, "offload": offload}
    need = stages.zero3_bytes(facts["n_params"], facts["largest_layer_params"], candidates[-1] * per_node, offload)
    problems.append(f"{who}: ZeRO-3 memory plan does not fit: {need / GiB:.1f} GiB of model states per process on "
                    f"{candidates[-1]} node(s) x {per_node} > {budget / GiB:.1f} GiB ({where}); raise "
                    f"stages.train.max_nodes, set deepspeed.offload_optimizer=true, or use a larger GPU")
    return candidates[-1], {}


def _build_jobs(spec, profile, root, ds_id, dg_yaml, dg_over, arms, facts, train_cfgs, problems) -> list[Job]:
    layout = SweepLayout(root)
    jobs: list[Job] = []
    n = spec.dataset.shards
    _needs_gpu(spec, profile, "datagen", "dataset", problems)
    jobs.append(Job("datagen", "datagen", [
        Task("datagen", f"shard-{k:05d}", (tuple(stages.datagen_shard_argv(dg_yaml, dg_over, k, n)),),
             str(stages.datagen_shard_dir(layout, ds_id, k, n))) for k in range(n)], _res(profile, "datagen")))
    jobs.append(Job("merge", "merge", [Task("merge", "merge", (tuple(stages.datagen_merge_argv(dg_yaml, dg_over, n)),),
                                            str(layout.data(ds_id)))], _res(profile, "merge"), after=["datagen"]))
    eval_jobs: list[Job] = []
    for model in spec.models:
        trained = [a for a in arms if a.arm.model == model and a.arm.trained]
        base = [a for a in arms if a.arm.model == model and not a.arm.trained]
        if trained:
            who = f"arm {trained[0].id} (and every {model} arm)"
            _needs_gpu(spec, profile, "train", who, problems)
            cfg = train_cfgs.get(trained[0].id)
            nodes, mem = _train_nodes(spec, profile, model, facts[model], cfg, problems, who)
            notes = {"memory": mem, "n_params": facts[model]["n_params"]}
            if cfg is not None and getattr(cfg.train, "max_steps", 0):
                notes["tokens"] = cfg.train.max_steps * cfg.train.global_batch_rows * cfg.data.max_tokens
            train_root = str(layout.root / "train")
            jobs.append(Job(f"train.{model}", "train", [
                Task("train", a.id, (tuple(stages.train_argv(a.train_yaml, a.train_overrides)),),
                     f"{train_root}/{a.id}/export", arm=a.id, upstream="merge/merge") for a in trained],
                _res(profile, "train", nodes), after=["merge"], notes=notes))
        for group, members in ((f"eval.{model}", trained), (f"eval-base.{model}", base)):
            if not members:
                continue
            _needs_gpu(spec, profile, "eval", f"arm {members[0].id}", problems)
            ev = profile.resources("eval")
            weights = 2 * facts[model]["n_params"] / GiB  # bf16, what vLLM loads before any KV cache
            budget = ev.gpus * profile.gpu_memory_gb * 0.9  # vLLM's KV cache takes what is left
            if ev.gpus and weights > budget:
                problems.append(f"arm {members[0].id}: stage eval: {weights:.1f} GiB of bf16 weights exceed "
                                f"{budget:.1f} GiB on stages.eval.gpus={ev.gpus}; raise stages.eval.gpus "
                                f"(and engine.tensor_parallel_size)")
            mode_groups = [[m] for m in spec.eval.modes] if spec.eval.split_modes else [list(spec.eval.modes)]
            ev_over = [fill(o, root) for o in spec.eval.overrides]
            eval_root = str(layout.root / "eval")  # plain strings: thousands of tasks, pathlib is slow
            for modes in mode_groups:
                label = modes[0] if len(modes) == 1 else "all"
                for shard in range(spec.eval.shards):
                    tasks = [Task("eval", f"{a.id}.{label}.{shard}",
                                  tuple(tuple(v) for v in stages.eval_argvs(
                                      root, a.id, a.model_path, modes, spec.eval.battery, spec.eval.judge, shard,
                                      spec.eval.shards, ev_over)),
                                  f"{eval_root}/{a.id}/{modes[0]}", arm=a.id,
                                  upstream=f"train/{a.id}" if a.arm.trained else "",
                                  also_done=tuple(f"{eval_root}/{a.id}/{m}" for m in modes[1:])) for a in members]
                    job = Job(f"{group}.{label}.{shard}", "eval", tasks, _res(profile, "eval"),
                              after_corr=f"train.{model}" if group == f"eval.{model}" else "",
                              notes={"mode": label, "shard": shard})
                    eval_jobs.append(job)
    jobs.extend(eval_jobs)
    jobs.append(Job("analysis", "analysis", [Task("analysis", "analysis", (tuple(stages.analysis_argv(
        root, [fill(o, root) for o in spec.eval.analysis_overrides])),), str(layout.analysis))],
        _res(profile, "analysis"), after=[j.name for j in eval_jobs]))
    for job in jobs:
        if profile.resources(job.stage).gpus == 0 and job.resources.gpus_per_node:
            problems.append(f"stage {job.stage}: inconsistent GPU request")
    return jobs
