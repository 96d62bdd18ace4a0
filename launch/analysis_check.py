"""What the analysis job will need, checked at plan time and recorded at submit (expected.json).

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


def check_analysis(spec, source: str, inputs: dict, problems: list[str]) -> None:
    """Battery primaries + sweep ``analysis:`` section (into problems); the few-seeds warning (into inputs)."""
    try:
        inputs["analysis_benchmarks"] = stages.check_analysis(spec.eval.battery, spec.analysis, source)
    except (ConfigError, FileNotFoundError, ValueError) as err:
        problems.append(f"analysis: {stages.describe(err)}")
    if len(spec.seeds) < MIN_SEEDS:
        how = "conditional on single training runs" if len(spec.seeds) == 1 else "t-based with very few df"
        inputs.setdefault("warnings", []).append(
            f"seeds: {len(spec.seeds)} per arm (< {MIN_SEEDS}): the confirmatory contrasts' p-values and CIs "
            f"will be {how}; set seeds: [0, 1, 2] to infer about the training procedure")


def write_expected(plan) -> None:
    """expected.json in the sweep folder: every arm x mode x benchmark the analysis should find."""
    benchmarks = plan.inputs.get("analysis_benchmarks")
    if benchmarks is None:
        benchmarks = stages.check_analysis(plan.spec.eval.battery, plan.spec.analysis, str(plan.layout.spec))
    atomic_write_json(SweepLayout(plan.sweep_dir).expected, {
        "arms": [ra.id for ra in plan.arms], "modes": list(plan.spec.eval.modes),
        "battery": plan.spec.eval.battery, "benchmarks": benchmarks})
