"""``python -m trainer CONFIG.yaml [key.sub=value ...]`` — the same on every rank.

Under torchrun, or one process per rank from SLURM/submitit (no torchrun): see
trainer/distributed.py. Exit status: 0 done, 75 (EXIT_REQUEUE) after a signal-triggered save,
2 for bad input (config, data, checkpoint of another config), 1 for anything else.
"""
from __future__ import annotations

import argparse
import sys

from tracecause.config import ConfigError, load

from .config import TrainConfig

USAGE = __doc__


def parse(argv: list[str]) -> TrainConfig:
    from configs import config_path

    ap = argparse.ArgumentParser(prog="python -m trainer", description="DeepSpeed ZeRO-3 fine-tuning of one arm.",
                                 epilog="Keys: see trainer/config.py (model.path, data.path, data.rtype, data.paradigm, "
                                        "train.global_batch_rows, output.dir, ...)")
    ap.add_argument("config", nargs="?", help="YAML overrides (a path, or a name in configs/trainer/)")
    ap.add_argument("overrides", nargs="*", help="key.sub=value")
    ns = ap.parse_args(argv)
    files, overrides = [], list(ns.overrides)
    if ns.config:
        if "=" in ns.config:
            overrides.insert(0, ns.config)
        else:
            files.append(config_path("trainer", ns.config))
    return load(TrainConfig, files, overrides)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        cfg = parse(argv)
        from .loop import run  # torch and DeepSpeed load only for a config that parsed

        return run(cfg)
    except (ConfigError, FileNotFoundError, ValueError) as err:
        # printed once, not also logged: before run() configures logging, a log record falls to
        # logging's last-resort handler, which wrote the same message to stderr a second time
        print(f"trainer: error: {err}", file=sys.stderr)
        return 2
