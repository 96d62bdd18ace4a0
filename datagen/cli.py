"""python -m datagen — build a reasoning-trace dataset whose answers are fixed byte for byte.

Usage (CONFIG is a YAML path or a name under configs/datagen/, e.g. ``demo``, whose generator is the
tiny random Qwen3: build it first, ``tracecause tiny-model ./runs/tiny-qwen3``)::

    python -m datagen CONFIG [key.sub=value ...]                          # every shard here, then merge
    python -m datagen CONFIG [...] --shard K --num-shards N               # one shard (a SLURM array task)
    python -m datagen CONFIG [...] --merge [--num-shards N]               # merge complete shards
    python -m datagen plan  CONFIG [...] [--num-shards N]                 # validate; print the plan as JSON
    python -m datagen shard CONFIG [...] --shard K [--num-shards N]       # = --shard form
    python -m datagen merge CONFIG [...] [--num-shards N] [--force]       # = --merge form
    python -m datagen run   CONFIG [...]                                  # = the first form

Output (``output.root`` is the sweep folder, default "."):
    <root>/data/<dataset-id>/data.jsonl       one record per pair (tracecause.contracts)
    <root>/data/<dataset-id>/manifest.json    source, generator, template hashes, counts, sha256s
    <root>/data/<dataset-id>/README.md        dataset card;  config.yaml  resolved config
    <root>/data/<dataset-id>/shards/shard-KKKKK-of-NNNNN/   (each with _COMPLETE)
    <root>/data/<dataset-id>/_COMPLETE        written last
The dataset id is ``output.dataset_id`` or ``dg-<hash of the resolved config>``.
Exit status: 0 done, 2 bad input (nothing started), 3 shards missing at merge (or set aside there as
damaged: no longer matching their seal), 4 empty dataset or a malformed shard line.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tracecause.config import ConfigError

if TYPE_CHECKING:
    from datagen.config import DatagenConfig

SUBCOMMANDS = ("run", "plan", "shard", "merge")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m datagen", usage="%(prog)s [run|plan|shard|merge] CONFIG [key=value ...] [options]",
                                description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="YAML file or name in configs/datagen/")
    p.add_argument("overrides", nargs="*", help="key.sub=value overrides")
    p.add_argument("--shard", type=int, help="run only shard K (0-based)")
    p.add_argument("--num-shards", type=int, help="number of shards (overrides the config's `shards`)")
    p.add_argument("--merge", action="store_true", help="merge complete shards")
    p.add_argument("--force", action="store_true", help="merge again even if the dataset is complete")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def parse_args(argv: list[str]) -> argparse.Namespace:
    argv = list(argv)
    command = argv.pop(0) if argv and argv[0] in SUBCOMMANDS else "run"
    args = _parser().parse_args(argv)  # the optional subcommand is taken off first: argparse can't tell it from CONFIG
    args.command = command
    if args.merge:
        args.command = "merge"
    elif args.shard is not None and command == "run":
        args.command = "shard"
    if args.command == "shard" and args.shard is None:
        raise ConfigError("command line", "--shard", "the shard command needs --shard K")
    if args.command == "merge" and args.shard is not None:
        raise ConfigError("command line", "--shard", "--merge and --shard exclude each other")
    return args


def require_local_models(cfg: DatagenConfig, source: str) -> None:
    """A vLLM generator named by a local folder that is not there stops here, saying how to make it,
    before any shard starts (vLLM would read the path as a hub id and fail on that)."""
    from tracecause.hub import is_hub_id

    gens = [("generator.model", cfg.generator)]
    if cfg.filters.judge.enabled:
        gens.append(("filters.judge.generator.model", cfg.filters.judge.generator))
    for key, gen in gens:
        path = Path(gen.model)
        if gen.backend != "vllm" or is_hub_id(gen.model) or path.exists():
            continue
        how = (f"build the tiny random Qwen3 first: tracecause tiny-model {gen.model}"
               if path.name.startswith("tiny") else "download or export the model there first")
        raise ConfigError(source, key, f"{gen.model!r}: no such model folder ({path.resolve()}); {how}")


def main(argv: list[str] | None = None) -> int:
    """Run the stage; SIGTERM/SIGUSR2 stop it with EXIT_REQUEUE, keeping every finished request."""
    from tracecause.preemption import run_preemptible

    return run_preemptible(lambda: _main(argv), "datagen")


def _main(argv: list[str] | None = None) -> int:
    from configs import config_path
    from datagen.merge import EmptyDatasetError, MalformedShardError, MissingShardsError, merge
    from datagen.plan import load_config, make_plan

    argv = sys.argv[1:] if argv is None else argv
    try:
        args = parse_args(argv)
        plan = make_plan(load_config(args.config, args.overrides), num_shards=args.num_shards)
        if args.command == "plan":
            print(json.dumps(plan.summary(), indent=2))
            return 0
        if args.command == "merge":
            merge(plan, force=args.force)
        else:
            from datagen.shard import ShardRunner

            require_local_models(plan.cfg, str(config_path("datagen", args.config)))
            runner = ShardRunner(plan, progress=not args.no_progress)
            shards = [args.shard] if args.command == "shard" else range(plan.num_shards)
            for k in shards:
                runner.run(k)
            if args.command == "run":
                merge(plan, force=args.force)
    except ConfigError as err:
        print(f"datagen: error: {err}", file=sys.stderr)
        return 2
    except MissingShardsError as err:
        print(f"datagen: error: {err}", file=sys.stderr)
        return 3
    except (EmptyDatasetError, MalformedShardError) as err:
        print(f"datagen: error: {err}", file=sys.stderr)
        return 4
    print(str(plan.data_dir))
    return 0
