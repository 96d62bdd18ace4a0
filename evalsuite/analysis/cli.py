"""python -m evalsuite analyze SWEEP_DIR [--resamples N] [--seed S] [--alpha A] [--no-wandb] [--amend] [key=value ...]"""
from __future__ import annotations

import argparse
import logging
import sys

from tracecause.config import ConfigError, load
from tracecause.contracts import require_sweep_folder

from .config import AnalysisConfig


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m evalsuite analyze",
                                 description="Causal effects with CIs from every finished eval of a sweep; writes "
                                             "SWEEP_DIR/analysis/ (effects.parquet, missing.json, report.md/html, "
                                             "figures/) and a W&B analysis run.")
    ap.add_argument("sweep_dir")
    ap.add_argument("--resamples", type=int, help="bootstrap resamples and sign flips (default 10000)")
    ap.add_argument("--seed", type=int, help="seed of all resampling (default 0)")
    ap.add_argument("--alpha", type=float, help="CI level is 1 - alpha (default 0.05)")
    ap.add_argument("--no-wandb", action="store_true", help="do not log a W&B analysis run")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    ap.add_argument("--amend", action="store_true",
                    help="analyse although the analysis section differs from the one frozen at submit "
                         "(labelled 'amended after data' everywhere)")
    ap.add_argument("overrides", nargs="*", help="AnalysisConfig overrides key=value (e.g. figures=false)")
    return ap


def main(argv: list[str] | None = None) -> int:
    try:
        args = parser().parse_intermixed_args(argv)
    except SystemExit as exit_:  # argparse already printed the usage error
        return int(exit_.code or 0)
    overrides = list(args.overrides)
    for flag, key in ((args.resamples, "resamples"), (args.seed, "seed"), (args.alpha, "alpha")):
        if flag is not None:
            overrides.append(f"{key}={flag}")
    if args.no_wandb:
        overrides.append("wandb=false")
    if args.no_progress:
        overrides.append("progress=false")
    if args.amend:
        overrides.append("amend=true")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        require_sweep_folder(args.sweep_dir)  # else a typo "analyses" 0 expected arms and exits 0
        cfg = load(AnalysisConfig, overrides=overrides)
        from .run import analyze

        result = analyze(args.sweep_dir, cfg)
    except (ConfigError, ValueError, FileNotFoundError) as err:
        print(f"analyze: error: {err}", file=sys.stderr)
        return 2
    except RuntimeError as err:
        print(f"analyze: error: {err}", file=sys.stderr)
        return 1
    m = result.missing
    print(f"{len(result.effects)} effects -> {result.out_dir}/effects.parquet; report: {result.out_dir}/report.html")
    if m["missing_arms"] or m["unfinished_evals"] or m["missing_evals"]:
        print(f"missing: {len(m['missing_arms'])} arms, {len(m['unfinished_evals'])} unfinished and "
              f"{len(m['missing_evals'])} absent evals (see {result.out_dir}/missing.json)")
    df = result.effects
    if len(df):
        unreliable = int((~df["reliable"].astype(bool)).sum())
        conditional = int(df["inference_note"].astype(str).str.startswith("conditional").sum())
        if unreliable or conditional:
            print(f"caveats: {unreliable} effects unreliable (judge failures; kept out of the confirmatory family), "
                  f"{conditional} with p and CI conditional on a single training run (see the report)")
    if result.run_id:
        print(f"W&B analysis run id: {result.run_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
