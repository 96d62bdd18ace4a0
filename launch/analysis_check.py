"""What the analysis job will need, checked at plan time and recorded at submit (expected.json, and the
pre-registration analysis_plan.json: the confirmatory family, frozen).

The analysis reads each benchmark's declared primary metric and the full expected grid
(arms x modes x benchmarks) from expected.json, so it can name every missing cell instead of
treating whatever eval folders exist as the study.
"""
from __future__ import annotations

from tracecause.config import ConfigError
from tracecause.contracts import SweepLayout
from tracecause.io import atomic_write_json

from launch import stages

MIN_SEEDS = 3  # below this, seed-to-seed variation is barely estimable (t with S-1 df)


def check_analysis(spec, source: str, inputs, arms=()) -> None:
    """Battery primaries + sweep ``analysis:`` section and its confirmatory family (into
    ``inputs.problems``); the family itself and the few-seeds warning (into ``inputs``, a
    launch.plan_inputs.PlanInputs)."""
    problems = inputs.problems
    try:
        inputs.analysis_benchmarks = stages.check_analysis(spec.eval.battery, spec.analysis, source)
    except (ConfigError, FileNotFoundError, ValueError) as err:
        problems.append(f"analysis: {stages.describe(err)}")
        return
    if arms:
        try:
            inputs.family = family = confirmatory_family(spec, source, arms, inputs.analysis_benchmarks)
        except (ConfigError, ValueError) as err:
            problems.append(f"analysis: {stages.describe(err)}")
            return
        inputs.family_size = len(family["tests"])
        problems.extend(family_problems(family, source))
    if len(spec.seeds) < MIN_SEEDS:
        how = "conditional on single training runs" if len(spec.seeds) == 1 else "t-based with very few df"
        inputs.warnings.append(
            f"seeds: {len(spec.seeds)} per arm (< {MIN_SEEDS}): the confirmatory contrasts' p-values and CIs "
            f"will be {how}; set seeds: [0, 1, 2] to infer about the training procedure")


def confirmatory_family(spec, source: str, arms, benchmarks: dict) -> dict:
    return stages.confirmatory_family(spec.analysis, source, [ra.arm for ra in arms], spec.eval.modes, benchmarks,
                                      spec.eval.analysis_overrides)


def family_problems(family: dict, source: str) -> list[str]:
    """A filter that names no test of this design, and a family too large for Holm to answer."""
    out = []
    where = "analysis.confirmatory" if family["declared"] else "analysis.confirmatory (the default family)"
    # a default filter that names no test of this design (no QT arms, one mode) simply has none; a
    # declared one is a pre-registration of a test that cannot exist
    for i in family["unmatched"] if family["declared"] else ():
        out.append(f"{source}: {where}[{i}] matches no test this sweep's arms, modes and battery give: fix its "
                   f"values (kind, paradigm, benchmark, mode, ...) or remove it")
    n, cap = len(family["tests"]), family["max_family"]
    if n > cap:
        out.append(f"{source}: {where}: {n} confirmatory tests, more than analysis.max_family={cap}: Holm's first "
                   f"step would need p < {family['alpha']}/{n} = {family['alpha'] / n:.1e}. Narrow the filters "
                   f"(one test per finding per size), or raise analysis.max_family if that is really the plan")
    if n == 0:
        out.append(f"{source}: {where}: the confirmatory family is empty: the study could not answer anything; "
                   f"declare analysis.confirmatory filters that name tests of this design")
    return out


def write_expected(plan) -> None:
    """expected.json in the sweep folder: every arm x mode x benchmark the analysis should find."""
    benchmarks = plan.inputs.analysis_benchmarks
    if benchmarks is None:
        benchmarks = stages.check_analysis(plan.spec.eval.battery, plan.spec.analysis, str(plan.layout.spec))
    atomic_write_json(SweepLayout(plan.sweep_dir).expected, {
        "arms": [ra.id for ra in plan.arms], "modes": list(plan.spec.eval.modes),
        "battery": plan.spec.eval.battery, "benchmarks": benchmarks})
    frozen = SweepLayout(plan.sweep_dir).analysis_plan
    if not frozen.is_file():  # frozen at the first submit: a resume never rewrites the pre-registration
        family = plan.inputs.family or confirmatory_family(plan.spec, str(plan.layout.spec), plan.arms,
                                                                  benchmarks)
        atomic_write_json(frozen, family["frozen"])
