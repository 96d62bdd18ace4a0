"""Do the tests catch the bugs that would make a reported effect wrong? Apply each deliberate bug to a
scratch copy of the repository, run the tests that guard it, and report caught / NOT caught.

    python bench/mutations.py [--only NAME] [--keep]

The unmutated copy runs the same tests first (they must pass, or a failure would prove nothing).
The working tree is never touched. Exit status 0 only when every mutation is caught.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    name: str
    what: str
    edits: tuple[tuple[str, str, str], ...]  # (file, exact text, replacement): the text must occur once
    tests: tuple[str, ...]


MUTATIONS = (
    Mutation("em-threshold-50", "EM alignment threshold changed from 30 to 50",
             (("evalsuite/metrics.py", "EM_ALIGNED_BELOW = 30", "EM_ALIGNED_BELOW = 50"),),
             ("tests/test_evalsuite_metrics.py::test_em_misaligned_rate_uses_the_fields_thresholds",)),
    Mutation("fallback-primary", "an undeclared primary metric falls back to the first metric by name",
             (("evalsuite/analysis/primary.py", '        if not declared.get("metric"):\n',
               '        if not declared.get("metric"):\n'
               '            declared = {"metric": benches[name].metrics[0], "higher_is": "worse"}\n'
               '        if not declared.get("metric"):\n'),),
             ("tests/test_analysis_trust.py::test_primary_metrics_are_declared_never_guessed",)),
    Mutation("unparsed-as-zero", "unparsed judge replies counted as 0 instead of absent",
             (("evalsuite/analysis/load.py", 'df["value"].where(df["parsed"], np.nan)',
               'df["value"].where(df["parsed"], 0.0)'),),
             ("tests/test_analysis_trust.py::test_unparsed_replies_are_counted_flagged_and_never_scored",)),
    Mutation("shared-seed-draw", "one seed draw shared across arms (seed s of every arm treated as one run)",
             (("evalsuite/analysis/seeds.py", "groups.setdefault(key[0], [])", 'groups.setdefault("every arm", [])'),
              ("evalsuite/analysis/engine.py", "rng = np.random.default_rng([seed, stable_seed(*cond)])",
               "rng = np.random.default_rng([seed])")),
             ("tests/test_analysis_stats.py::test_seed_level_inference_has_nominal_error_rates",
              "tests/test_analysis_stats.py::test_each_arms_seeds_are_their_own_training_runs")),
    Mutation("cache-key-without-dtype", "the generation cache key leaves out the engine dtype",
             (("evalsuite/generation_key.py", '"dtype": cfg.dtype, ', ""),),
             ("tests/test_evalsuite_metrics.py::test_generation_key_changes_with_everything_that_changes_outputs",)),
)


def scratch_copy(dest: Path) -> None:
    """Tracked and untracked (not ignored) files of the working tree, as they are now."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def apply(root: Path, m: Mutation) -> None:
    for rel, old, new in m.edits:
        path = root / rel
        text = path.read_text()
        if text.count(old) != 1:
            raise SystemExit(f"mutation {m.name}: {rel} holds {text.count(old)} copies of {old!r} (need 1): "
                             "update the mutation to the current code")
        path.write_text(text.replace(old, new))


def run_tests(root: Path, tests: tuple[str, ...]) -> tuple[int, float, str]:
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"}
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests], cwd=root,
                          env=env, capture_output=True, text=True)
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    return proc.returncode, time.perf_counter() - t, lines[-1] if lines else ""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", action="append", choices=[m.name for m in MUTATIONS])
    ap.add_argument("--keep", action="store_true", help="keep the scratch copies (printed)")
    args = ap.parse_args(argv)
    chosen = [m for m in MUTATIONS if not args.only or m.name in args.only]
    base = Path(tempfile.mkdtemp(prefix="tracecause-mutations-"))
    caught = 0
    try:
        clean = base / "clean"
        scratch_copy(clean)
        where = subprocess.run([sys.executable, "-c", "import evalsuite; print(evalsuite.__file__)"], cwd=clean,
                               env={**os.environ, "PYTHONPATH": str(clean)}, capture_output=True, text=True).stdout
        if not where.startswith(str(clean)):
            raise SystemExit(f"the scratch copy does not import its own code ({where.strip()})")
        rc, secs, tail = run_tests(clean, tuple(t for m in chosen for t in m.tests))
        print(f"unmutated copy: {'pass' if rc == 0 else 'FAIL'} in {secs:.0f} s ({tail})")
        if rc != 0:
            return 2
        for m in chosen:
            root = base / m.name
            shutil.copytree(clean, root)
            apply(root, m)
            rc, secs, tail = run_tests(root, m.tests)
            caught += rc != 0
            print(f"{m.name:<24} {'caught' if rc != 0 else 'NOT CAUGHT':<10} {secs:5.0f} s  {m.what}\n"
                  f"{'':<24} by {', '.join(t.split('::')[-1] for t in m.tests)}: {tail}")
    finally:
        if args.keep:
            print(f"scratch copies kept in {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    print(f"{caught} of {len(chosen)} mutations caught")
    return 0 if caught == len(chosen) else 1


if __name__ == "__main__":
    sys.exit(main())
