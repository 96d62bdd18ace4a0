"""``tracecause``: plan, submit, status, resume, cancel, demo, tiny-model, benchmarks, wandb-sync."""
from __future__ import annotations

import argparse
import subprocess
import sys

from tracecause.config import ConfigError
from tracecause.contracts import require_sweep_folder



def _plan(args, sweep=None, sweep_dir=None, **kw):
    from launch.plan import make_plan

    kw.setdefault("cluster", args.cluster)
    return make_plan(sweep or args.sweep, list(getattr(args, "overrides", [])),
                     sweep_dir=sweep_dir or getattr(args, "out", None), **kw)


def cmd_plan(args) -> int:
    from launch.plan_view import format_plan

    if not args.rehearse:
        print(format_plan(_plan(args), pilot=args.pilot))
        return 0
    # The study's own numbers (pins, source, cost, MDE) on its own cluster, then the rehearsal's graph.
    study = _plan(args, cluster=None, sweep_dir=args.study_out, missing_benchmarks_ok=True)
    print(format_plan(study, pilot=args.pilot), "\n", flush=True)
    print(format_plan(_plan(args, rehearse=True)))
    return 0


def cmd_submit(args) -> int:
    from launch.plan_view import format_plan
    from launch.rehearse import record_notes
    from launch.submit import submit

    plan = _plan(args, rehearse=args.rehearse)
    print(format_plan(plan), "\n", flush=True)
    if args.rehearse and not args.dry_run:
        record_notes(plan.sweep_dir, plan.inputs.rehearsal["notes"])
    submit(plan, dry_run=args.dry_run)
    if not args.dry_run:
        print(f"\nwatch it: tracecause status {plan.sweep_dir} --watch")
    return 0


def cmd_resume(args) -> int:
    from launch.submit import submit

    root = require_sweep_folder(args.sweep_dir, need_spec=True).resolve()  # re-planning reads its sweep.yaml
    args.sweep, args.overrides, args.out = root / "sweep.yaml", [], root
    submit(_plan(args, sweep_dir=root), dry_run=args.dry_run)
    return 0


def cmd_status(args) -> int:
    from launch.status import show

    return show(args.sweep_dir, watch=args.watch)


def cmd_cancel(args) -> int:
    from launch import records

    recs = records.all_records(require_sweep_folder(args.sweep_dir))  # a typo must not "cancel nothing", exit 0
    ids = sorted({str(r["job_id"]) for uid, r in recs.items() if r.get("job_id")
                  and not str(r["job_id"]).startswith("local") and (not args.stage or uid.split("/")[0] in args.stage)
                  and r.get("state") not in (records.DONE,)})
    if not ids:
        print("nothing to cancel")
        return 0
    subprocess.run(["scancel", *ids], check=False)
    print(f"cancelled {len(ids)} task(s)")
    return 0


def cmd_demo(args) -> int:
    """The known-answer world end to end (launch/demo.py): pre-trained base, sweep, recovery table."""
    from launch.demo import run

    args.overrides = list(args.overrides)
    return run(args, _plan)


def cmd_wandb_sync(args) -> int:
    from tracecause.wandb_sync import report, sync

    print(report(sync(require_sweep_folder(args.sweep_dir), dry_run=args.dry_run), dry_run=args.dry_run))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tracecause", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)

    def sweep_args(sp, sweep=True, cluster="the sweep's cluster", out="sweeps/<name>"):
        if sweep:
            sp.add_argument("sweep", help="configs/sweeps/<name>.yaml or a name (paper, smoke)")
        sp.add_argument("overrides", nargs="*", help="key.sub=value on the sweep spec")
        sp.add_argument("--cluster", help=f"configs/clusters/<name>.yaml (default: {cluster})")
        sp.add_argument("--out", help=f"sweep folder (default: {out})")

    rehearse_help = ("the sweep's rehearsal: the same graph with tiny models, truncated data and benchmarks, "
                     "2 steps (on --cluster, default local-slurm; folder default sweeps/<name>-rehearsal)")
    sp = sub.add_parser("plan", help="validate everything and print the stage graph, cost and MDEs")
    sweep_args(sp)
    sp.add_argument("--rehearse", action="store_true", help=rehearse_help + "; printed after the study's plan")
    sp.add_argument("--pilot", help="a finished pilot sweep folder, analysed: MDEs from its variance components per "
                                    "benchmark's primary metric (default: stated assumptions)")
    sp.add_argument("--study-out", help=argparse.SUPPRESS)  # the study's folder when --out names the rehearsal's
    sp.set_defaults(fn=cmd_plan)
    sp = sub.add_parser("submit", help="submit the sweep (only what is missing)")
    sweep_args(sp)
    sp.add_argument("--rehearse", action="store_true", help=rehearse_help)
    sp.add_argument("--dry-run", action="store_true", help="write the sbatch scripts, submit nothing")
    sp.set_defaults(fn=cmd_submit)
    sp = sub.add_parser("status", help="arms x stages")
    sp.add_argument("sweep_dir")
    sp.add_argument("--watch", nargs="?", type=float, const=10.0, default=0.0, help="refresh every N s")
    sp.set_defaults(fn=cmd_status)
    sp = sub.add_parser("resume", help="resubmit whatever is failed or missing")
    sp.add_argument("sweep_dir")
    sp.add_argument("--cluster")
    sp.add_argument("--dry-run", action="store_true", help="write what it would submit, submit nothing")
    sp.set_defaults(fn=cmd_resume)
    sp = sub.add_parser("cancel", help="scancel the sweep's jobs")
    sp.add_argument("sweep_dir")
    sp.add_argument("--stage", action="append", choices=["datagen", "merge", "train", "eval", "analysis"])
    sp.set_defaults(fn=cmd_cancel)
    sp = sub.add_parser("demo", help="the known-answer world end to end: planted effects recovered?",
                        description=DEMO_DESCRIPTION)
    sweep_args(sp, sweep=False, cluster="local, this machine without SLURM; local-slurm for the local cluster",
               out="sweeps/demo-<YYYYmmdd-HHMMSS>, a new folder per run")
    sp.set_defaults(fn=cmd_demo, cluster="local")
    # listed for --help only: main() hands `tiny-model ...` to tracecause.tiny before any parsing
    sp = sub.add_parser("tiny-model", help="build the tiny random Qwen3 into OUT_DIR")
    sp.add_argument("rest", nargs="*", help="OUT_DIR [options of python -m tracecause.tiny]")
    from launch.benchmarks_cmd import add_parser as add_benchmarks_parser

    add_benchmarks_parser(sub)
    sp = sub.add_parser("wandb-sync", help="upload a sweep's offline W&B runs in order, each fragment once")
    sp.add_argument("sweep_dir")
    sp.add_argument("--dry-run", action="store_true", help="report what would be uploaded, upload nothing")
    sp.set_defaults(fn=cmd_wandb_sync)
    return p


DEMO_DESCRIPTION = (
    "The known-answer world end to end, on this machine or --cluster's: a 1.1M-parameter Qwen3 base "
    "pre-trained by the project's own trainer as one train task (first run only; cached under "
    ".state/world-base/), then the sweep configs/sweeps/demo.yaml through datagen -> train -> eval -> "
    "analysis, like any sweep. The last "
    "lines printed say how many planted effects the analysis recovered, how many false positives it found "
    "among the testable nulls, and where the report is. key=value overrides apply to the demo sweep.")


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def parse(argv: list[str]) -> argparse.Namespace:
    """The command line as its command reads it, nothing run; a bad one exits 2 with the usage, as
    argparse does. (`tiny-model` never gets here: main hands it to tracecause.tiny unparsed.)"""
    parser = build_parser()
    if not argv or argv[0] not in _subparsers(parser):
        parser.parse_args(argv)  # prints usage / help and exits
    # intermixed: `plan SWEEP --cluster X key=value` (overrides after options) works too
    command = _subparsers(parser)[argv[0]]
    nested = argv[0] == "benchmarks"  # has its own subcommands, which intermixed parsing cannot take
    args = command.parse_args(argv[1:]) if nested else command.parse_intermixed_args(argv[1:])
    args.cmd = argv[0]
    return args


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["tiny-model"]:  # its options belong to tracecause.tiny
        from tracecause.tiny import main as tiny_main

        return int(tiny_main(argv[1:]) or 0)
    args = parse(argv)
    from launch.plan import PlanError
    from launch.submit import SweepMismatch

    try:
        return int(args.fn(args) or 0)
    except (PlanError, ConfigError, SweepMismatch, FileNotFoundError) as err:
        print(f"tracecause {args.cmd}: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
