"""``tracecause benchmarks fetch|list``: a battery's upstream files, pinned and checked (tracecause.benchmarks)."""
from __future__ import annotations

import argparse
import sys

from tracecause.benchmarks import LOCK_FILE, ROOT_VAR, SOURCES_FILE, battery_files, benchmarks_root, file_state


def add_parser(sub) -> None:
    sp = sub.add_parser("benchmarks", help="fetch / list a battery's benchmark files (pinned, sha256-locked)")
    bsub = sp.add_subparsers(dest="benchmarks_cmd", required=True)
    for name, text in (("fetch", "download every file of a battery from its pinned upstream and verify it"),
                       ("list", "each file of a battery: ok, missing, corrupt or unverified (lock unset)")):
        p = bsub.add_parser(name, help=text)
        p.add_argument("--battery", default="default", help="configs/evals/<name>.yaml or a path (default: default)")
        p.add_argument("--dest", help=f"benchmarks root (default: ${ROOT_VAR})")
        p.add_argument("--lock", default=str(LOCK_FILE), help=argparse.SUPPRESS)  # tests: a copy of the lock
        p.add_argument("--sources", default=str(SOURCES_FILE), help=argparse.SUPPRESS)
        if name == "fetch":
            p.add_argument("--update-lock", action="store_true",
                           help="record the sha256 of files whose lock entry is unset (first fetch)")
            p.add_argument("--mirror", default="", help="base URL serving <repo>/<commit>/<path> instead of upstream")
    sp.set_defaults(fn=cmd_benchmarks)


def cmd_benchmarks(args) -> int:
    root = benchmarks_root(args.dest)
    if args.benchmarks_cmd == "list":
        files = battery_files(args.battery, args.sources, args.lock)
        print(f"battery {args.battery}: {len(files)} upstream file(s) under {root or f'${ROOT_VAR} (not set)'}")
        for f in files:
            pin = f"{f.repo}@{f.commit[:12]}" if f.commit else f"{f.repo} (NOT PINNED)"
            lock = "" if f.sha256 else "  [lock unset]"
            print(f"  {file_state(f, root):10s} {f.relpath}  <- {pin}{lock}")
        return 0
    if root is None:
        print(f"tracecause benchmarks fetch: give --dest DIR or set ${ROOT_VAR}", file=sys.stderr)
        return 2
    from tracecause.benchmark_fetch import fetch_battery

    print(f"fetching battery {args.battery} into {root}", flush=True)
    report = fetch_battery(args.battery, root, update_lock=args.update_lock, mirror=args.mirror,
                           sources=args.sources, lock=args.lock, log=lambda m: print(m, flush=True))
    print(f"{len(report.fetched)} fetched, {len(report.present)} already present, "
          f"{len(report.locked)} newly locked, {len(report.unverified)} unverified, {len(report.errors)} failed")
    if report.errors:
        print("\n".join(f"error: {e}" for e in report.errors), file=sys.stderr)
        return 1
    print(f"use it: export {ROOT_VAR}={root}")
    return 0
