"""Each benchmark's primary metric: declared (battery via expected.json, or sweep.yaml), never guessed.

The confirmatory family is built on primary metrics, so a guess would silently change which
tests are confirmatory (e.g. a metric that exists in one mode only drops the other mode's
tests). No primary, or a primary absent for some arm × mode, is an error naming them.
"""
from __future__ import annotations

from tracecause.config import ConfigError

from .load import Benchmark, cond_label
from .spec import SweepSpec


def declared_primaries(spec: SweepSpec, benches: dict[str, Benchmark]) -> dict[str, dict]:
    """benchmark -> {metric, higher_is} for every benchmark with data; error if any is undeclared."""
    battery = {name: b.get("primary") or {} for name, b in spec.expected.get("benchmarks", {}).items()}
    out = {}
    for name in benches:
        declared = dict(battery.get(name) or {})
        override = spec.analysis.primary_metrics.get(name)
        if isinstance(override, str):
            if not declared.get("higher_is"):
                raise ConfigError("sweep.yaml", f"analysis.primary_metrics.{name}",
                                  f"{override!r} has no direction (the battery declares none for {name}): "
                                  "give {metric: <name>, higher_is: worse|better}")
            declared["metric"] = override
        elif override:
            declared = dict(override)
        if not declared.get("metric"):
            raise ConfigError("sweep.yaml", f"analysis.primary_metrics.{name}",
                              f"benchmark {name!r} has no declared primary metric (expected.json from the "
                              "battery has none): declare primary: {metric, higher_is} in the battery or here")
        out[name] = {"metric": declared["metric"], "higher_is": declared["higher_is"]}
    return out


def check_primaries_present(benches: dict[str, Benchmark], primaries: dict[str, dict]) -> None:
    """Every arm × mode with data on a benchmark has its primary metric; the error names them all."""
    problems = []
    for name, bench in benches.items():
        metric = primaries[name]["metric"]
        runs = {(cond, seed, mode) for (cond, mode, _), by_seed in bench.series.items() for seed in by_seed}
        have = {(cond, seed, mode) for (cond, mode, m), by_seed in bench.series.items() if m == metric
                for seed in by_seed}
        for cond, seed, mode in sorted(runs - have):
            problems.append(f"benchmark {name!r}: primary metric {metric!r} is absent for arm "
                            f"{cond_label(cond, [seed])} in mode {mode} (it has {bench.metrics})")
    if problems:
        raise ValueError("declared primary metrics missing from scores:\n  - " + "\n  - ".join(problems))
