"""The plan as people read it: inputs and pins, the stage graph with resources, what it costs
(GPU-hours from FLOPs beside the time-limit cap) and what it can detect (MDE per contrast)."""
from __future__ import annotations

from launch import cost
from launch.graph import Job
from launch.plan import Plan
from launch.plan_inputs import PlanInputs, params_of


def gpu_hours(job: Job) -> float:
    """Upper bound: every task runs to its time limit."""
    return job.size * job.resources.gpus * job.resources.time_min / 60


def deps_text(job: Job) -> str:
    parts = []
    if job.after:
        parts.append("afterok:" + ("+".join(job.after) if len(job.after) <= 3 else f"{len(job.after)} jobs"))
    if job.after_corr:
        parts.append(f"aftercorr:{job.after_corr}")
    return " ".join(parts) or "-"


def format_plan(plan: Plan, pilot: str | None = None) -> str:
    p, spec = plan.profile, plan.spec
    counts: dict[str, int] = {}
    for a in plan.arms:
        counts[a.arm.paradigm] = counts.get(a.arm.paradigm, 0) + 1
    lines = [f"sweep {spec.name}  ->  {plan.sweep_dir}",
             f"cluster {p.name} ({p.scheduler}{', partition ' + p.partition if p.partition else ''})   "
             f"dataset {plan.dataset_id}",
             f"arms: {len(plan.arms)} (" + ", ".join(f"{k} {v}" for k, v in counts.items()) + ")"]
    lines += _inputs_lines(plan)
    lines += ["", f"{'job':<34} {'tasks':>5} {'nodes x procs':>13} {'gpu/node':>8} {'cpu/proc':>8} {'mem GB':>7} "
                  f"{'time':>6} {'GPU-h max':>9}  depends on"]
    total = 0.0
    for job in plan.jobs:
        r = job.resources
        gh = gpu_hours(job)
        total += gh
        lines.append(f"{job.name:<34} {job.size:>5} {f'{r.nodes} x {r.tasks_per_node}':>13} {r.gpus_per_node:>8} "
                     f"{r.cpus_per_task:>8} {r.mem_gb:>7.0f} {r.time_min:>5}m {gh:>9.1f}  {deps_text(job)}")
        mem = job.notes.get("memory")
        if mem:
            terms = ", ".join(f"{k} {v:.1f}" for k, v in mem.get("terms_gib", {}).items())
            lines.append(f"{'':<36}memory {mem['need_gib_per_process']:.1f} GiB/process ({terms}) <= budget "
                         f"{mem['budget_gib']:.1f}; host {mem['host_gib_per_node']:.0f} GiB/node <= "
                         f"{mem['host_budget_gib']:.0f}{' (optimizer offload)' if mem['offload'] else ''}")
    lines += ["", f"GPU-hours cap: at most {total:.0f} (every task to its time limit)"]
    if plan.inputs.rehearsal:
        lines.append("(a rehearsal: the study's GPU-hours and detectable effects are in the study's own plan)")
    else:
        lines += _cost_lines(plan)
        lines += _family_lines(plan)
        lines += _power_lines(plan, pilot)
    return "\n".join(lines)


def _family_lines(plan: Plan) -> list[str]:
    """The pre-registered confirmatory family: its size, Holm's steps and every test (frozen at submit)."""
    family = plan.inputs.family
    if not family:
        return []
    n, alpha = len(family["tests"]), family["alpha"]
    how = "declared in analysis.confirmatory" if family["declared"] else "the default: each finding per size"
    out = ["", f"confirmatory family: {n} tests ({how}; frozen into the sweep folder at submit)",
           f"  Holm at alpha {alpha}: the smallest p must be < {alpha}/{n} = {alpha / n:.2g}, the k-th smallest "
           f"< {alpha}/({n}+1-k), the largest < {alpha}",
           "  each type is tested on its own benchmark: " + ", ".join(
               f"{t} -> {b}" for t, b in sorted(family["type_benchmark"].items()))]
    if len(plan.spec.seeds) < 2:
        out.append("  one seed per arm: every confirmatory p and CI is CONDITIONAL on these training runs, not "
                   "about the training procedure")
    out += [f"  {i + 1:>3}. {line}" for i, line in enumerate(family["lines"])]
    return out


def _inputs_lines(plan: Plan) -> list[str]:
    inputs = plan.inputs
    out = []
    reh = inputs.rehearsal
    if reh:
        out += ["", f"REHEARSAL of sweep {reh['of']} (the same arms, tasks, command lines and dependencies):"]
        out += [f"  - {n}" for n in reh["notes"]]
    revs = inputs.revisions
    if revs:
        out += ["", "models (pinned hub revisions, passed to every stage that loads them):"]
        out += [f"  {m:<14} {r['hub_id']}@{r['revision']}" + (f"  (weights: {r['path']})" if r["path"] != r["hub_id"]
                                                                else "") for m, r in revs.items()]
    judge = inputs.judge
    if judge:
        out.append(f"  judge          {judge['backend']}: {judge['model']}" + (f"@{judge['revision']}"
                                                                              if judge.get("revision") else ""))
    ds = inputs.dataset
    if ds:
        g = ds["generator"]
        out.append(f"  generator      {g['backend']}: {g['model']}" + (f"@{g['revision']}" if g.get("revision") else ""))
        where = f"hub dataset {ds['path']}@{ds['revision']} [{ds['split']}]" if ds["kind"] == "hub" else \
            f"local {ds['kind']} {ds['path']} (sha256 {ds['revision'][:16]}...)"
        pairs = f"{ds['pairs']:,} pairs" + (f" ({ds['duplicates_dropped']} duplicate questions dropped)"
                                            if ds.get("duplicates_dropped") else "") if ds["pairs"] is not None \
            else "pair count unknown until datagen reads it"
        out += ["", f"dataset {ds['dataset_id']}: {where}; columns {ds['columns']}; {pairs}"
                + ("; SHIPPED DEMO PAIRS" if ds["shipped_demo"] else "")]
    bench = inputs.benchmarks
    if bench:
        n_files = len({f["path"] for f in bench["files"]})
        if bench["missing"]:
            out += [f"benchmarks ({bench['battery']}): {len(bench['missing'])} of {n_files} files missing:"]
            out += [f"  {path}  ({', '.join(names)})" for path, names in bench["missing"].items()]
            out.append(f"  fetch them: {bench['fetch']}")
        else:
            out.append(f"benchmarks ({bench['battery']}): all {n_files} files present")
    for w in [] if reh else inputs.warnings:  # a rehearsal's warnings are the study's, shown there
        out.append(f"NOTE: {w}")
    return out


def _benchmarks(plan: Plan) -> dict[str, dict]:
    """Per benchmark: prompts (counted when the file is present, else its limit, else unknown), K, budget."""
    from launch import stages

    files = (plan.inputs.benchmarks or {}).get("files") or []
    try:
        counted = stages.count_prompts(plan.spec.eval.battery)
    except (FileNotFoundError, ValueError):
        counted = {}
    out = {}
    for f in files:
        c = counted.get(f["benchmark"], {})
        out[f["benchmark"]] = {**f, "prompts": c.get("prompts") or f["limit"] or None,
                               "clusters": c.get("clusters"), "samples": c.get("samples") or f["samples"] or 1}
    return out


def _cost_lines(plan: Plan) -> list[str]:
    p, inputs = plan.profile, plan.inputs
    mfu = cost.planning_mfu()
    ds = inputs.dataset or {}
    reasoning = (ds.get("generator") or {}).get("max_tokens", 0)
    qa = ds.get("qa_tokens") or cost.QA_TOKENS_DEFAULT
    per_1k = ds.get("pairs") is None
    out = ["", f"GPU-hours estimate from FLOPs / ({p.gpu_tflops:g} TFLOP/s peak x MFU); MFU train {mfu.train:.0%}, "
               f"inference {mfu.eval:.0%}: {mfu.source}"]
    if not p.resources("train").gpus:
        return out + ["  (no GPUs in this profile: nothing to estimate)"]
    benchmarks = _benchmarks(plan)
    judge_n = _judge_params(inputs)
    arms = {a.id: a.arm for a in plan.arms}
    g = ds.get("generator") or {}
    gen_tokens = (ds.get("pairs") or 1000) * g.get("types", 0) * g.get("samples", 1) * (reasoning + qa + 200)
    total = cost.gpu_hours(2 * params_of(g.get("model", "")) * gen_tokens, p.gpu_tflops, mfu.eval)
    cap = sum(gpu_hours(j) for j in plan.jobs if j.stage == "datagen")
    out.append(f"  {'datagen':<32} ~{total:,.1f} GPU-h{' per 1,000 pairs' if per_1k else ''}  [cap {cap:,.0f}]  "
               f"({g.get('types', 0)} types x {g.get('samples', 1)} candidates, ~{reasoning + qa + 200:.0f} tokens each)")
    for job in plan.jobs:
        n = job.notes.get("n_params")
        if job.stage == "train" and n and job.notes.get("budget"):
            hours, how = 0.0, ""
            for t in job.tasks:
                paradigm = arms[t.arm].paradigm
                tokens, how = cost.train_tokens(job.notes["budget"], ds.get("pairs") or (1000 if per_1k else None),
                                                reasoning, qa, paradigm)
                hours += cost.gpu_hours(6 * n * (tokens or 0), p.gpu_tflops, mfu.train)
            total += hours
            unit = " per 1,000 pairs (pair count unknown)" if per_1k and not job.notes["budget"]["max_steps"] else ""
            out.append(f"  {job.name:<32} ~{hours:,.1f} GPU-h{unit}  [cap {gpu_hours(job):,.0f}]  ({how})")
    eval_hours, unknown = 0.0, sorted(b for b, v in benchmarks.items() if not v["prompts"])
    for job in (j for j in plan.jobs if j.stage == "eval"):
        params = _model_params(arms[job.tasks[0].arm].model)
        modes = plan.spec.eval.modes if job.notes["mode"] == "all" else [job.notes["mode"]]
        for mode in modes:
            gen, judged = cost.eval_tokens(benchmarks, mode)
            flops = 2 * params * gen + 2 * judge_n * judged * (cost.JUDGE_PROMPT_TOKENS + 512)
            eval_hours += job.size * cost.gpu_hours(flops, p.gpu_tflops, mfu.eval) / plan.spec.eval.shards
    cap = sum(gpu_hours(j) for j in plan.jobs if j.stage == "eval")
    out.append(f"  {'eval (all arms, modes)':<32} ~{eval_hours:,.1f} GPU-h  [cap {cap:,.0f}]  (generations at max_tokens"
               + (f"; not counted, files missing: {unknown}" if unknown else "") + ")")
    total += eval_hours
    out.append(f"  {'total estimate':<32} ~{total:,.1f} GPU-h" + (" (training and datagen per 1,000 pairs)"
                                                                    if per_1k else ""))
    return out


def _model_params(model: str) -> int:
    from tracecause.models import load_model_spec

    return load_model_spec(model).n_params


def _judge_params(inputs: PlanInputs) -> int:
    judge = inputs.judge or {}
    return params_of(judge.get("model", "")) if judge.get("backend") == "vllm" else 0


def _power_lines(plan: Plan, pilot: str | None) -> list[str]:
    from launch.power_view import power_lines

    return power_lines(plan, pilot, _benchmarks(plan))
