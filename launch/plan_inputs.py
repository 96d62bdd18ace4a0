"""The plan's checks of what a sweep reads: model pins, the pairs' source, benchmark files, the judge.

Each check records what it found in a ``PlanInputs`` (printed by launch.plan_view): revisions,
source, pair count, missing files and the one command that fetches them, and a rehearsal's
substitutions; and adds what is wrong to its ``problems`` (refused before anything is submitted).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from launch import feasibility, pins, rehearse as rehearsal
from launch.profiles import ClusterProfile
from launch.spec import SweepSpec

REHEARSAL_CLUSTER = rehearsal.DEFAULT_CLUSTER
REHEARSAL_MODEL = "tiny-qwen3"  # configs/models spec of the stand-in (sizes the rehearsal's memory plan)


@dataclass
class PlanInputs:
    """What the plan established about the sweep's inputs, and the one list of what is wrong with them.

    Every check (this module, launch.analysis_check, launch.feasibility, launch.plan) adds to
    ``problems``; launch.plan.make_plan alone decides when they refuse the sweep (PlanError, all at once).
    """

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)        # printed as NOTE lines; never refuse
    built_at_submit: set[str] = field(default_factory=set)   # model folders submit builds (build_tiny_models)
    rehearsal: dict | None = None     # {"notes": [...], "of": study name} when the plan is a rehearsal
    revisions: dict[str, dict] = field(default_factory=dict)  # model -> {"hub_id", "revision", "path"}
    dataset: dict | None = None       # the pairs' source (stages.datagen_source_facts), generator fit
    benchmarks: dict | None = None    # {"battery", "files", "missing", "fetch"}
    judge: dict | None = None         # {"backend", "model", "revision", "fit"} of the eval judge
    analysis_benchmarks: dict | None = None  # per benchmark: its declared primary metric (expected.json)
    family: dict | None = None        # the confirmatory family (frozen at submit)
    family_size: int | None = None


def _exists_or_built(model: str, inputs: PlanInputs) -> bool:
    return Path(model).exists() or model in inputs.built_at_submit


def check_model_pin(i: int, name: str, path_override: str, facts: dict, inputs: PlanInputs) -> None:
    """A sweep model_paths entry that is itself a hub id must be pinned via its model spec."""
    if path_override and pins.is_hub_id(path_override) and path_override != facts["source"]:
        inputs.problems.append(f"models[{i}] {name}: model_paths.{name}={path_override!r} is a hub id other than "
                               f"the model spec's ({facts['source'] or 'none'}), so no revision is pinned for it: add a "
                               f"configs/models/*.yaml with hub_id {path_override!r} and its revision, and name that "
                               f"model")


def check_dataset(spec: SweepSpec, source: dict, profile: ClusterProfile, inputs: PlanInputs) -> None:
    """The pairs' source is recorded; a study (device=gpu) refuses the shipped demo pairs; a local
    generator path must exist; the generator must fit its GPUs."""
    problems = inputs.problems
    inputs.dataset = source
    if source["shipped_demo"] and spec.device == "gpu":
        problems.append(f"dataset ({spec.dataset.config}): source.path={source['path']} is the shipped demo pairs, "
                        f"for demo/test sweeps only; point source.* at the study's pairs (a hub dataset id + "
                        f"source.revision=<commit>, or a local file + source.revision=<its sha256>)")
    if source["kind"] == "hub" and not pins.in_local_cache(source["path"], source["revision"], "dataset"):
        inputs.warnings.append(
            f"dataset source {source['path']}@{source['revision']} is pinned but UNVERIFIED from here (no hub access "
            f"at plan time; datagen verifies it when it downloads): check it with huggingface-cli download "
            f"{source['path']} --repo-type dataset --revision {source['revision']}")
    for role in ("generator", "judge"):
        gen = source.get(role)
        if not gen or gen["backend"] != "vllm":
            continue
        model = gen["model"]
        key = "generator" if role == "generator" else "filters.judge.generator"
        wrong = pins.misattributed(f"dataset ({spec.dataset.config}): {role}", model, f"{key}.revision",
                                   gen["revision"]) if pins.is_hub_id(model) else None
        if wrong:
            problems.append(wrong)
        if not pins.is_hub_id(model) and not _exists_or_built(model, inputs):
            problems.append(f"dataset ({spec.dataset.config}): {role} model {model!r} is neither a hub id nor an "
                            f"existing local folder")
        fit = feasibility.weights_fit(profile, "datagen", f"dataset ({spec.dataset.config}): {role} {model}",
                                      params_of(model), source["vllm_tp"], source["vllm_memory_fraction"], problems)
        gen["fit"] = fit


def note_unverified_pins(inputs: PlanInputs) -> None:
    """Model pins whose snapshot is not in this machine's hub cache cannot be checked here: say so."""
    unverified = sorted({f"{r['hub_id']}@{r['revision'][:12]}" for r in inputs.revisions.values()
                         if not pins.in_local_cache(r["hub_id"], r["revision"])})
    if unverified:
        inputs.warnings.append(f"model revisions pinned but not verified from here (not in the local hub cache): "
                                  f"{', '.join(unverified)}; the first task that loads each fails if a pin is wrong")


def check_benchmarks(battery: str, files: list[dict], inputs: PlanInputs, missing_ok: bool) -> None:
    """Every data file of the battery is present and matches its locked sha256, or the plan names each
    missing / corrupt one and the one command that fetches them (tracecause.benchmarks)."""
    from tracecause.benchmarks import ROOT_VAR, benchmarks_root, fetch_command, file_state, missing_files

    root = benchmarks_root()
    bad = missing_files(battery)
    missing = {(str(root / f.relpath) if root else f"${ROOT_VAR}/{f.relpath}")
               + ("" if file_state(f, root) == "missing" else " [CORRUPT: sha256 differs from the lock]"):
               list(f.benchmarks) for f in bad}
    bad_rel = {f.relpath for f in bad}
    for f in files:  # what the rehearsal must replace by a fixture
        f["present"] = f["present"] and f["relative"] not in bad_rel
    n_files = len({f["path"] for f in files})
    inputs.benchmarks = {"battery": battery, "files": files, "missing": missing,
                         "fetch": fetch_command(_battery_name(battery)) if missing else ""}
    if missing and not missing_ok:
        unset = "" if root else f" (${ROOT_VAR} is not set)"
        inputs.problems.append(f"eval.battery {battery}: {len(missing)} of {n_files} benchmark files are "
                               f"missing{unset}:\n"
                               + "\n".join(f"      {path}  ({', '.join(names)})" for path, names in missing.items())
                               + f"\n    fetch them: {inputs.benchmarks['fetch']}")


def _battery_name(battery: str) -> str:
    return Path(battery).stem if battery.endswith((".yaml", ".yml")) else battery


def check_judge(cfgs: list, profile: ClusterProfile, inputs: PlanInputs) -> None:
    """A vLLM judge named by hub id is pinned, a local one exists, and its weights fit the eval GPUs."""
    if inputs.judge is not None:  # every eval task shares the judge section: checked once
        return
    problems = inputs.problems
    for cfg in cfgs[:1]:
        j = cfg.judge
        inputs.judge = {"backend": j.backend, "model": j.model, "revision": j.revision}
        if j.backend != "vllm":
            continue
        bad = pins.unpinned("eval judge", "judge.model", j.model, "judge.revision", j.revision) or (
            pins.misattributed("eval judge", j.model, "judge.revision", j.revision) if pins.is_hub_id(j.model) else None)
        if bad:
            problems.append(bad)
        elif j.model and not pins.is_hub_id(j.model) and not _exists_or_built(j.model, inputs):
            problems.append(f"eval judge: judge.model={j.model!r} is neither a hub id nor an existing local folder")
        inputs.judge["fit"] = feasibility.weights_fit(profile, "eval", f"eval judge {j.model}", params_of(j.model),
                                                      j.engine.tensor_parallel_size,
                                                      j.engine.gpu_memory_utilization, problems)


def check_task_pins(jobs, model_pins: dict[str, str], inputs: PlanInputs) -> None:
    """``model_pins``: weights path -> revision of the sweep's hub models (a rehearsal: their stand-ins)."""
    inputs.problems.extend(pins.check_task_pins(jobs, model_pins))


def params_of(model: str) -> int:
    """Parameters of a generator/judge: its configs/models spec (by hub id), or a local config.json."""
    from tracecause.models import load_model_spec, spec_from_hf_config

    name = pins.model_spec_for_hub_id(model)
    if name:
        return load_model_spec(name).n_params
    cfg = Path(model) / "config.json"
    if cfg.is_file():
        import json

        try:
            return spec_from_hf_config(json.loads(cfg.read_text()), name="local").n_params
        except (KeyError, ValueError, TypeError):
            return 0
    return 0


def rehearse(spec: SweepSpec, root: Path, inputs: PlanInputs) -> SweepSpec:
    """The sweep's rehearsal spec (launch.rehearse), with its truncated battery written under the sweep."""
    from launch import stages

    judge_hub, judge_rev = _judge_of(spec)
    generator_hub, generator_rev = _generator_of(spec, root)
    judge_model = pins.model_spec_for_hub_id(judge_hub) if judge_hub else ""
    generator_model = pins.model_spec_for_hub_id(generator_hub) if generator_hub else ""
    out, notes = rehearsal.rehearse_spec(spec, root, judge_model, generator_model)
    # Pinned revisions stay on the command lines that name the stand-in models.
    if judge_model and judge_rev:
        out.eval.overrides.append(f"judge.revision={judge_rev}")
    if generator_model and generator_rev:
        out.dataset.overrides.append(f"generator.revision={generator_rev}")
    try:
        files = stages.check_battery(spec.eval.battery, spec.eval.judge)
        battery_yaml = stages.battery_path(spec.eval.battery)
        notes += rehearsal.write_battery(files, battery_yaml, root)
    except (FileNotFoundError, ValueError) as err:
        inputs.problems.append(f"rehearsal: {stages.describe(err)}")
    inputs.rehearsal = {"notes": notes, "of": spec.name}
    return out


def _judge_of(spec: SweepSpec) -> tuple[str, str]:
    """The judge model and revision the sweep's eval tasks would use (preset, then overrides)."""
    from configs import config_path
    from tracecause.config import read_yaml

    preset = read_yaml(config_path("judges", spec.eval.judge or "default")) or {}
    model, rev, backend = str(preset.get("model") or ""), str(preset.get("revision") or ""), preset.get("backend")
    for o in spec.eval.overrides:
        key, _, value = o.partition("=")
        model = value if key == "judge.model" else model
        rev = value if key == "judge.revision" else rev
        backend = value if key == "judge.backend" else backend
    return (model, rev) if backend in (None, "vllm") and pins.is_hub_id(model) else ("", "")


def _generator_of(spec: SweepSpec, root: Path) -> tuple[str, str]:
    from launch import stages

    cfg = stages.datagen_config(stages.datagen_yaml(spec.dataset.config),
                                [o.replace("{sweep}", str(root)) for o in spec.dataset.overrides])
    g = cfg.generator
    return (g.model, g.revision) if g.backend == "vllm" and pins.is_hub_id(g.model) else ("", "")
