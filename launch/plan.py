"""Plan: validate a sweep completely, then lay out its stage graph. Nothing runs, nothing is submitted.

Every error names the arm (or stage) and the field, and all of them are reported at once.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from tracecause.config import ConfigError
from tracecause.contracts import SweepLayout

from launch import analysis_check, feasibility, plan_inputs, stages
from launch.arms import ResolvedArm, fill, resolve_arms
from launch.rehearse import read_notes as rehearsal_notes
from launch.graph import Job, Resources, Task, order
from launch.plan_inputs import PlanInputs
from launch.profiles import ClusterProfile, load_profile
from launch.spec import SweepSpec, load_sweep, sweep_path
from launch.sweep_identity import spec_hash, wandb_group


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
    # What the plan established about its inputs: revisions, the pairs' source, benchmark files,
    # memory/fit facts, warnings, the confirmatory family, and the rehearsal's substitutions (if one).
    inputs: PlanInputs = field(default_factory=PlanInputs)
    wandb_group: str = ""             # recorded in the sweep folder at submit (launch.sweep_identity)

    @property
    def layout(self) -> SweepLayout:
        return SweepLayout(self.sweep_dir)

    def job(self, name: str) -> Job:
        return next(j for j in self.jobs if j.name == name)


def default_sweep_dir(spec: SweepSpec, rehearse: bool = False) -> Path:
    return Path("sweeps") / (f"{spec.name}-rehearsal" if rehearse else spec.name)


def make_plan(sweep: str | Path, overrides: list[str] = (), cluster: str | None = None,
              sweep_dir: str | Path | None = None, cluster_overrides: list[str] = (),
              check_stage_configs: bool = True, rehearse: bool = False,
              missing_benchmarks_ok: bool = False) -> Plan:
    """Load, validate and lay out. Raises PlanError (every problem) or ConfigError (the spec itself).

    ``rehearse``: the rehearsal of the sweep (launch.rehearse) on ``cluster`` (default local-slurm); it
    writes its truncated battery and benchmark copies under ``<sweep>/rehearsal/``.
    ``missing_benchmarks_ok``: unfetched benchmark files are listed in ``inputs``, not refused (the
    study's numbers printed beside a rehearsal)."""
    spec, profile, root = _spec_and_profile(sweep, overrides, cluster, sweep_dir, cluster_overrides, rehearse)
    inputs = PlanInputs()
    if rehearse and not spec.rehearsal:  # (a recorded rehearsal, resumed, is one already)
        spec = plan_inputs.rehearse(spec, root, inputs)
    elif spec.rehearsal:
        inputs.rehearsal = {"notes": rehearsal_notes(root), "of": spec.name}
    inputs.built_at_submit = {fill(spec.model_paths[m], root) for m in spec.build_tiny_models if m in spec.model_paths}
    model_paths, facts = _check_models(spec, root, inputs)
    _refuse_if_any(inputs)
    ds_id, dg_yaml, dg_over = _check_dataset(spec, root, profile, inputs, check_stage_configs)
    try:
        tr_yaml = stages.trainer_yaml(spec.train.config)
    except FileNotFoundError as err:
        raise PlanError([f"train.config: {err}"]) from None
    group, sweep_hash = wandb_group(root, spec.name), spec_hash(spec)[:12]
    revisions = {m: f["revision"] for m, f in facts.items() if f["source"] and f["revision"]}
    inputs.revisions = {m: {"hub_id": facts[m]["source"], "revision": r, "path": model_paths[m]}
                        for m, r in revisions.items()}
    plan_inputs.note_unverified_pins(inputs)
    arms = resolve_arms(spec, root, SweepLayout(root).data(ds_id), model_paths, tr_yaml, group, sweep_hash=sweep_hash,
                        revisions=revisions)
    train_cfgs = _check_train_configs(arms, inputs) if check_stage_configs else {}
    jobs = _build_jobs(spec, profile, root, ds_id, dg_yaml, dg_over, arms, facts, train_cfgs, inputs.problems,
                       eval_wandb_overrides(spec, group, sweep_hash))
    if check_stage_configs:
        _check_eval(spec, jobs, profile, inputs, missing_benchmarks_ok)
    analysis_check.check_analysis(spec, str(sweep_path(sweep)) if isinstance(sweep, str) else str(sweep), inputs,
                                  arms)
    plan_inputs.check_task_pins(jobs, {model_paths[m]: r for m, r in revisions.items()}, inputs)
    _refuse_if_any(inputs)
    return Plan(spec, profile, root, ds_id, arms, order(jobs), model_paths, wandb_group=group, inputs=inputs)


def _refuse_if_any(inputs: PlanInputs) -> None:
    if inputs.problems:
        raise PlanError(inputs.problems)


def _spec_and_profile(sweep, overrides, cluster, sweep_dir, cluster_overrides,
                      rehearse: bool) -> tuple[SweepSpec, ClusterProfile, Path]:
    """The sweep spec, the cluster profile it runs on (recorded into the spec) and its folder."""
    spec = load_sweep(sweep, list(overrides))
    if rehearse:
        cluster = cluster or plan_inputs.REHEARSAL_CLUSTER
    try:
        profile = load_profile(cluster or spec.cluster, [*spec.cluster_overrides, *cluster_overrides])
    except FileNotFoundError as err:
        raise PlanError([f"cluster: {err}"]) from None
    # What ran is what resume must rerun: the profile actually used is part of the recorded spec.
    spec.cluster = str(cluster or spec.cluster)
    spec.cluster_overrides = [*spec.cluster_overrides, *cluster_overrides]
    return spec, profile, Path(sweep_dir or default_sweep_dir(spec, rehearse)).resolve()


def _check_models(spec: SweepSpec, root: Path, inputs: PlanInputs) -> tuple[dict[str, str], dict[str, dict]]:
    """Each model's weights path (filled) and facts (its configs/models spec: source, revision, size)."""
    problems = inputs.problems
    model_paths, facts = {}, {}
    for i, name in enumerate(spec.models):
        try:
            facts[name] = stages.model_facts(name)
        except (FileNotFoundError, ConfigError) as err:
            problems.append(f"models[{i}] {name!r}: {stages.describe(err)}")
            continue
        if spec.rehearsal:  # sized as the tiny stand-in it is; the real model's hub id and pin are kept
            facts[name] = {**stages.model_facts(plan_inputs.REHEARSAL_MODEL), "source": facts[name]["source"],
                           "revision": facts[name]["revision"]}
        path = spec.model_paths.get(name) or facts[name]["source"]
        model_paths[name] = fill(path, root)
        plan_inputs.check_model_pin(i, name, spec.model_paths.get(name, ""), facts[name], inputs)
        if not path:
            problems.append(f"models[{i}] {name}: no weights: the model spec has no hub_id (local_builder "
                            f"{facts[name]['local_builder']!r}); set model_paths.{name} (and build_tiny_models)")
        elif name not in spec.build_tiny_models and (path.startswith("/") or path.startswith(".")) \
                and not Path(fill(path, root)).exists():
            problems.append(f"model {name}: model_paths.{name}={path} does not exist")
    return model_paths, facts


def _check_dataset(spec: SweepSpec, root: Path, profile: ClusterProfile, inputs: PlanInputs,
                   check_stage_configs: bool) -> tuple[str, Path, list[str]]:
    """Datagen as the sweep sets it: (dataset id, its config file, its overrides). A config that does
    not load is refused at once (nothing after it can be laid out)."""
    try:
        dg_yaml = stages.datagen_yaml(spec.dataset.config)
        extra = [fill(o, root) for o in spec.dataset.overrides]
        ds_id = stages.dataset_id(spec.dataset.config, dg_yaml, extra, spec.dataset.id, root)
        dg_over = stages.datagen_overrides(root, ds_id, spec.dataset.shards, extra)
        if check_stage_configs:
            dg_plan = stages.datagen_plan(dg_yaml, dg_over)
            dg_cfg = dg_plan.cfg
            plan_inputs.check_dataset(spec, stages.datagen_source_facts(dg_plan), profile, inputs)
            missing = sorted(set(spec.trace_types) - set(getattr(dg_cfg, "types", spec.trace_types)))
            if missing:
                inputs.problems.append(f"dataset: reasoning_types {missing} are not built by datagen config "
                                       f"{dg_yaml.name} (its types: {dg_cfg.types}); add them to types")
    except (FileNotFoundError, ConfigError, ValueError) as err:
        raise PlanError([f"dataset ({spec.dataset.config}): {stages.describe(err)}"]) from None
    return ds_id, dg_yaml, dg_over


def _check_train_configs(arms: list[ResolvedArm], inputs: PlanInputs) -> dict:
    """Each trained arm's trainer config, loaded as its task will load it: arm id -> TrainConfig."""
    train_cfgs = {}
    loader = stages.TrainConfigs()
    for ra in arms:
        if not ra.arm.trained:
            continue
        try:
            train_cfgs[ra.id] = loader.load(ra.train_yaml, ra.train_overrides)
        except (ConfigError, FileNotFoundError, ValueError) as err:
            inputs.problems.append(f"arm {ra.id}: trainer config: {stages.describe(err)}")
    return train_cfgs


def _check_eval(spec: SweepSpec, jobs: list[Job], profile: ClusterProfile, inputs: PlanInputs,
                missing_benchmarks_ok: bool) -> None:
    """The battery's files and the eval configs. Eval tasks differ only in arm id, model folder, mode and
    shard: one task per mode and shard is checked."""
    seen = set()
    try:
        files = stages.check_battery(spec.eval.battery, spec.eval.judge)
        plan_inputs.check_benchmarks(spec.eval.battery, files, inputs, missing_benchmarks_ok)
        for job in (j for j in jobs if j.stage == "eval"):
            kind = (job.name.startswith("eval-base"), job.notes["mode"], job.notes["shard"])
            if kind not in seen:
                seen.add(kind)
                where = f"arm {job.tasks[0].arm}"
                cfgs = stages.check_eval([list(a) for a in job.tasks[0].argvs])
                plan_inputs.check_judge(cfgs, profile, inputs)
    except (ConfigError, FileNotFoundError, ValueError) as err:
        inputs.problems.append(f"{where if seen else 'eval.battery'}: eval config: {stages.describe(err)}")


def eval_wandb_overrides(spec: SweepSpec, group: str, sweep_hash: str) -> list[str]:
    """Each eval task's W&B run: the sweep's group, project and mode; text tables only if the sweep allows."""
    w = spec.wandb
    return [f"wandb.enabled={'true' if w.enabled and w.mode != 'disabled' else 'false'}", f"wandb.project={w.project}",
            f"wandb.group={group}", f"wandb.mode={w.mode}", f"wandb.sweep_hash={sweep_hash}",
            *(["wandb.sample_tables=text"] if w.allow_text else [])]


def stage_resources(profile: ClusterProfile, stage: str, nodes: int = 1) -> Resources:
    r = profile.resources(stage)
    return Resources(nodes=nodes, tasks_per_node=profile.processes_per_node(stage), gpus_per_node=r.gpus,
                     cpus_per_task=r.cpus, mem_gb=r.mem_gb, time_min=r.time_min, python=r.python,
                     setup=tuple(f"export {k}={shlex.quote(str(v))}" for k, v in profile.env.items())
                     + tuple(profile.setup) + tuple(r.setup))


def _needs_gpu(spec: SweepSpec, profile: ClusterProfile, stage: str, who: str, problems: list[str]) -> None:
    if spec.device == "gpu" and profile.resources(stage).gpus == 0:
        problems.append(f"{who}: stage {stage} needs GPUs (sweep device=gpu) but cluster profile "
                        f"{profile.name!r} gives stages.{stage}.gpus=0 (use a GPU profile, or device=cpu)")


def _build_jobs(spec, profile, root, ds_id, dg_yaml, dg_over, arms, facts, train_cfgs, problems,
                eval_wandb: list[str] = ()) -> list[Job]:
    layout = SweepLayout(root)
    jobs: list[Job] = []
    n = spec.dataset.shards
    _needs_gpu(spec, profile, "datagen", "dataset", problems)
    jobs.append(Job("datagen", "datagen", [
        Task("datagen", f"shard-{k:05d}", (tuple(stages.datagen_shard_argv(dg_yaml, dg_over, k, n)),),
             str(stages.datagen_shard_dir(layout, ds_id, k, n))) for k in range(n)],
        stage_resources(profile, "datagen")))
    jobs.append(Job("merge", "merge", [Task("merge", "merge", (tuple(stages.datagen_merge_argv(dg_yaml, dg_over, n)),),
                                            str(layout.data(ds_id)))],
                    stage_resources(profile, "merge"), after=["datagen"]))
    eval_jobs: list[Job] = []
    for model in spec.models:
        trained = [a for a in arms if a.arm.model == model and a.arm.trained]
        base = [a for a in arms if a.arm.model == model and not a.arm.trained]
        if trained:
            who = f"arm {trained[0].id} (and every {model} arm)"
            _needs_gpu(spec, profile, "train", who, problems)
            cfg = train_cfgs.get(trained[0].id)
            nodes, mem = feasibility.train_nodes(profile, facts[model]["spec"], cfg, who, problems)
            notes = {"memory": mem, "n_params": facts[model]["n_params"]}
            if cfg is not None:  # what launch.cost turns into tokens and GPU-hours
                notes["budget"] = {"max_steps": cfg.train.max_steps, "epochs": cfg.train.epochs,
                                   "global_batch_rows": cfg.train.global_batch_rows, "row_tokens": cfg.data.max_tokens}
            train_root = str(layout.root / "train")
            jobs.append(Job(f"train.{model}", "train", [
                Task("train", a.id, (tuple(stages.train_argv(a.train_yaml, a.train_overrides)),),
                     f"{train_root}/{a.id}/export", arm=a.id, upstream="merge/merge") for a in trained],
                stage_resources(profile, "train", nodes), after=["merge"], notes=notes))
        for group, members in ((f"eval.{model}", trained), (f"eval-base.{model}", base)):
            if not members:
                continue
            _needs_gpu(spec, profile, "eval", f"arm {members[0].id}", problems)
            ev = profile.resources("eval")
            feasibility.weights_fit(profile, "eval", f"arm {members[0].id}: stage eval", facts[model]["n_params"],
                                    ev.gpus, 0.9, problems)
            mode_groups = [[m] for m in spec.eval.modes] if spec.eval.split_modes else [list(spec.eval.modes)]
            ev_over = [*eval_wandb, *(fill(o, root) for o in spec.eval.overrides)]
            eval_root = str(layout.root / "eval")  # plain strings: thousands of tasks, pathlib is slow
            for modes in mode_groups:
                label = modes[0] if len(modes) == 1 else "all"
                for shard in range(spec.eval.shards):
                    tasks = [Task("eval", f"{a.id}.{label}.{shard}",
                                  tuple(tuple(v) for v in stages.eval_argvs(
                                      root, a.id, a.model_path, modes, spec.eval.battery, spec.eval.judge, shard,
                                      spec.eval.shards, ev_over, revision=a.model_revision)),
                                  f"{eval_root}/{a.id}/{modes[0]}", arm=a.id,
                                  upstream=f"train/{a.id}" if a.arm.trained else "",
                                  also_done=tuple(f"{eval_root}/{a.id}/{m}" for m in modes[1:])) for a in members]
                    job = Job(f"{group}.{label}.{shard}", "eval", tasks, stage_resources(profile, "eval"),
                              after_corr=f"train.{model}" if group == f"eval.{model}" else "",
                              notes={"mode": label, "shard": shard})
                    eval_jobs.append(job)
    jobs.extend(eval_jobs)
    jobs.append(Job("analysis", "analysis", [Task("analysis", "analysis", (tuple(stages.analysis_argv(
        root, [fill(o, root) for o in spec.eval.analysis_overrides])),), str(layout.analysis))],
        stage_resources(profile, "analysis"), after=[j.name for j in eval_jobs]))
    for job in jobs:
        if profile.resources(job.stage).gpus == 0 and job.resources.gpus_per_node:
            problems.append(f"stage {job.stage}: inconsistent GPU request")
    return jobs
