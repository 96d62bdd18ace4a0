"""``python -m evalsuite generate|judge|score|analyze …``

    python -m evalsuite generate [-c EVAL.yaml ...] [--judge PRESET] [--shard K --num-shards N] key=value ...
    python -m evalsuite judge ...     # the same arguments
    python -m evalsuite score ...     # the same arguments
    python -m evalsuite analyze SWEEP_DIR [--amend] [key=value ...]   # evalsuite.analysis.cli: see its --help

key=value overrides may come before, between or after the options.

Typical keys: model=<export dir> arm_id=qwen3-0.6b.evil.qta.s0 sweep_dir=<sweep> battery=smoke
modes=[think] engine.enforce_eager=true judge.backend=openai judge.base_url=http://host:8000/v1
judge.model=<name>. The config is validated (and every benchmark file loaded) before any engine starts.
"""
from __future__ import annotations

import argparse
import json
import sys

from tracecause.config import ConfigError, load, read_yaml

from evalsuite.config import EvalConfig

STAGES = ("generate", "judge", "score")


def build_config(args: argparse.Namespace) -> EvalConfig:
    from configs import config_path

    overrides = list(args.overrides)
    if args.shard is not None:
        overrides.append(f"shard.index={args.shard}")
    if args.num_shards is not None:
        overrides.append(f"shard.count={args.num_shards}")
    preset = args.judge
    for text in overrides:  # judge_preset=... on the command line works too
        if text.startswith("judge_preset="):
            preset = text.split("=", 1)[1]
    base = {"judge_preset": preset, "judge": read_yaml(config_path("judges", preset))}
    return load(EvalConfig, args.config or [], overrides, base=base)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m evalsuite", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("stage", choices=STAGES + ("analyze",))
    p.add_argument("-c", "--config", action="append", help="EvalConfig override YAML (repeatable)")
    p.add_argument("--judge", default="default", help="judge preset in configs/judges/ (default: default)")
    p.add_argument("--shard", type=int, default=None, help="this task's shard index K (0-based)")
    p.add_argument("--num-shards", type=int, default=None, help="number of shards N")
    p.add_argument("overrides", nargs="*", help="key.sub=value")
    return p


def parse(argv: list[str]) -> argparse.Namespace:
    """The command line as the stage reads it, nothing run. Intermixed, as `tracecause` parses: key=value
    overrides may follow options (`judge arm_id=X --judge openai judge.model=M`), as the usage line shows."""
    if argv[:1] == ["analyze"]:
        from evalsuite.analysis.cli import parser as analysis_parser  # lazily: another component

        return analysis_parser().parse_intermixed_args(argv[1:])
    return parser().parse_intermixed_args(argv)


def run_stage(stage: str, cfg: EvalConfig) -> dict:
    if stage == "generate":
        from evalsuite.generate import run_generate
        return run_generate(cfg)
    if stage == "judge":
        from evalsuite.judges.stage import run_judge
        return run_judge(cfg)
    from evalsuite.score import run_score
    return run_score(cfg)


def main(argv: list[str] | None = None) -> int:
    """Run the stage; SIGTERM/SIGUSR2 stop it with EXIT_REQUEUE, keeping every finished request."""
    from tracecause.preemption import run_preemptible

    return run_preemptible(lambda: _main(argv), "evalsuite")


def _main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "analyze":
        from evalsuite.analysis.cli import main as analyze_main  # lazily: another component
        return int(analyze_main(argv[1:]) or 0)
    args = parse(argv)
    try:
        cfg = build_config(args)
    except (ConfigError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        stats = run_stage(args.stage, cfg)
    except (ConfigError, FileNotFoundError, ValueError) as err:
        print(f"error: {args.stage}: {err}", file=sys.stderr)
        return 2
    print(json.dumps({"stage": args.stage, "arm_id": cfg.arm_id, **stats}, sort_keys=True))
    return 0
