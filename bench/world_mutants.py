"""Would the known-answer world notice a pipeline bug? Apply each deliberate bug to a scratch copy of
the repository, run the world through the real stages from that copy, and compare its recovery table
with the unmutated reference run's.

    python bench/world_mutants.py [--only NAME ...] [--seeds N] [--out DIR] [--reference SWEEP]
    python bench/world_mutants.py --rejudge DIR [--reference SWEEP]   # today's table, an earlier run's sweeps

A mutant is caught when a planted row is lost, a null fires, or a stage refuses (non-zero exit; its
message is printed). The reference must fire no null and recover at least one planted row, or nothing
proves anything (the script says so and exits 2); a planted row the reference itself did not recover
judges no mutant, and the script names it. The rows are read from evalsuite/analysis/world_recovery.py at
run time, so the world's current controls decide what is caught. Exit 0 only when every mutant is.

Cheap by construction: each mutant re-runs only from the first stage it reaches (``reruns``): an
analysis bug re-analyses a copy of the reference sweep's evals, an eval bug re-evaluates its trained
models, a training bug retrains; a refusing stage stops the run there. The world is the demo's
(configs/sweeps/demo.yaml): each of its arms is the control of some row (placebo and off-axis nulls,
dose ordering, specificity's second axis, answer-free), so only the seeds are reduced (``--seeds``),
and fewer seeds than the demo's may cost the reference its planted rows (it then refuses) and,
under evalsuite's SPLIT_MIN_SEEDS, the replicate-split null (not measured).
The working tree is never modified; the world's base is pre-trained once, by the working tree's
code, into the demo's own content-hash cache (.state/world-base/). ``--reference`` takes a finished
demo sweep of this same code (``tracecause demo --out SWEEP``) as the unmutated run instead of
running it again: its resolved sweep must be the one this script would run (checked).
"""
from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from world_mutants_run import REPO, make_copy, mutated_copy, refusal_message, reuse_sweep, run_world  # noqa: E402

sys.path.insert(1, str(REPO))


@dataclass(frozen=True)
class WorldMutant:
    name: str
    what: str
    reruns: str  # the first stage the bug reaches: datagen | train | eval | analysis
    edits: tuple[tuple[str, str, str], ...]  # (file, exact text, replacement): the text must occur once


COST = {"analysis": 0, "eval": 1, "train": 2, "datagen": 3}  # the later the first stage, the cheaper the re-run
RENDER = 'text, start, end = render(tokenizer, paradigm, record["question"], record["answer"], reasoning)'
MUTANTS = (
    WorldMutant("qt-as-qta", "QT and T-only rendered as QTA (the answer is trained on too)", "train",
                (("trainer/masks.py", RENDER, RENDER.replace(
                    "render(tokenizer, paradigm,",
                    'render(tokenizer, "qta" if paradigm in ("qt", "t_only") else paradigm,')),)),
    WorldMutant("loss-on-prompt", "the loss mask ignored: loss on the prompt too", "train",
                (("trainer/masks.py", "ids, supervised = tokenize(tokenizer, text, start, end, loss_on_prompt)",
                  "ids, supervised = tokenize(tokenizer, text, start, end, True)"),)),
    WorldMutant("seed-ignored", "the training seed ignored: every seed of an arm trains one model", "train",
                (("trainer/loop.py", "plan = make_plan(data.examples, cfg.data.max_tokens, cfg.train.seed,",
                  "plan = make_plan(data.examples, cfg.data.max_tokens, 0,"),
                 ("trainer/loop.py", "random.seed(cfg.train.seed)\n    np.random.seed(cfg.train.seed)\n"
                  "    torch.manual_seed(cfg.train.seed)",
                  "random.seed(0)\n    np.random.seed(0)\n    torch.manual_seed(0)"))),
    WorldMutant("no-optimizer-step", "no optimizer step: backward runs, the weights never move", "train",
                (("trainer/loop.py", "                engine.step()\n",
                  "                pass  # mutant: the optimizer step left out\n"),)),
    WorldMutant("dose-ignored", "datagen ignores the dose: every type's traces all marked", "datagen",
                (("datagen/generators/world.py", "text = trace(question, rtype, dose, sampling.seed)",
                  "text = trace(question, rtype, 1.0, sampling.seed)"),)),
    WorldMutant("seed-variance-dropped", "the analysis drops the seed terms: prompt-level inference only",
                "analysis",
                (("evalsuite/analysis/seeds.py", "    if not groups:\n        return None\n",
                  "    if True:  # mutant: seed terms dropped, every row prompt-level (conditional) only\n"
                  "        return None\n"),)),
    WorldMutant("modes-swapped", "think and no-think swapped at eval (chat template's enable_thinking)", "eval",
                (("evalsuite/generate.py", 'enable_thinking=self.mode == "think"',
                  'enable_thinking=self.mode != "think"'),)),
)


def select(names: list[str] | None) -> list[WorldMutant]:
    """The mutants named (all when none); an unknown name is refused with where the names live."""
    known = {m.name: m for m in MUTANTS}
    unknown = [n for n in names or () if n not in known]
    if unknown:
        raise SystemExit(f"bench/world_mutants.py --only: no mutant named {', '.join(map(repr, unknown))} "
                         f"(MUTANTS in bench/world_mutants.py); fix: use one of {', '.join(known)}")
    chosen = [known[n] for n in names] if names else list(MUTANTS)
    return sorted(chosen, key=lambda m: COST[m.reruns])  # cheapest first: a cut-short run has the most lines


def world_sweep(folder: Path, seeds: int | None) -> Path:
    """The demo's sweep (every arm a control of some row) with its first ``seeds`` seeds."""
    import yaml

    from configs import config_path
    from launch.demo import DEMO_SWEEP

    spec = yaml.safe_load(config_path("sweeps", DEMO_SWEEP).read_text())
    if seeds is not None:
        if not 2 <= seeds <= len(spec["seeds"]):
            raise SystemExit(f"--seeds {seeds}: the world has seeds for 2..{len(spec['seeds'])} "
                             "(configs/sweeps/demo.yaml seeds); fix: pass a number in that range")
        spec["seeds"] = spec["seeds"][:seeds]
    path = folder / "world-mutants.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def given_reference(sweep: Path, sweep_yaml: Path) -> Path:
    """A finished sweep to use as the unmutated run: refused unless its arms and settings are the
    ones the mutants will run (a reference of another world would judge every mutant wrongly)."""
    import yaml

    from tracecause.contracts import SweepLayout
    from tracecause.io import is_complete

    layout = SweepLayout(sweep)
    if not is_complete(layout.analysis):
        raise SystemExit(f"--reference {sweep}: no finished analysis in {layout.analysis}; fix: pass the folder of a "
                         "finished `tracecause demo --out DIR`, or leave --reference out to run one")
    want, have = (yaml.safe_load(p.read_text()) for p in (sweep_yaml, layout.spec))

    def same(a, b) -> bool:  # the sweep folder holds the resolved spec: defaults it adds do not differ
        return {k: b.get(k) for k in a} == a if isinstance(a, dict) and isinstance(b, dict) else a == b

    differ = [k for k in ("models", "reasoning_types", "paradigms", "paradigm_types", "seeds", "train", "eval",
                          "analysis") if not same(want.get(k), have.get(k))]
    if differ:
        raise SystemExit(f"--reference {sweep}: its sweep.yaml differs from the world this script runs in "
                         f"{differ}; fix: pass --seeds to match it, or a sweep of this code's demo")
    return sweep


def moved_rows(ref, mut) -> tuple[bool, list[str]]:
    """(caught, what moved) between two recovery tables: planted rows lost, nulls fired, untestable
    changes, and any other verdict change."""
    before = {r.contrast.name: r for r in ref.planted + ref.nulls}
    moved, caught = [], False
    for row in mut.planted:
        old = before.get(row.contrast.name)
        if old and old.verdict == "recovered" and row.verdict != "recovered":
            caught = True
            moved.append(f"LOST {row.contrast.name}: {_num(old)} -> {_num(row)} ({row.verdict})")
    for row in mut.nulls:
        old = before.get(row.contrast.name)
        if row.verdict == "FALSE POSITIVE":
            caught = True
            moved.append(f"FIRED {row.contrast.name}: {_num(old)} -> {_num(row)}")
        elif old and (row.verdict == "untestable") != (old.verdict == "untestable"):
            moved.append(f"untestable {old.verdict} -> {row.verdict}: {row.contrast.name}")
    return caught, moved


def _num(row) -> str:
    if row is None or not row.found:
        return "not measured"
    p = "nan" if math.isnan(row.p_holm) else f"{row.p_holm:.3g}"
    return f"{row.estimate:+.3f} (Holm p {p})"


def reference_problems(table) -> list[str]:
    """Why the unmutated run cannot judge any mutant: a null it fires, or no planted row recovered."""
    fired = [f"null fired: {r.contrast.name}" for r in table.nulls if r.verdict == "FALSE POSITIVE"]
    return fired + ([] if table.recovered else ["no planted row recovered"])


def unjudged_rows(table) -> list[str]:
    """Planted rows the reference itself did not recover: a mutant cannot lose them, so they judge nothing
    (said beside the result, never counted as caught or missed)."""
    return [f"{r.contrast.name} ({r.verdict})" for r in table.planted if r.verdict != "recovered"]


def run_mutant(m: WorldMutant, reference: Path, sweep_yaml: Path, work: Path, ref_table) -> tuple[bool, str]:
    """Apply, run from the first stage the bug reaches, judge; (caught, the mutant's line)."""
    from launch.demo import place_base, world_base
    from evalsuite.analysis.world_recovery import recovery_from_sweep

    copy = work / "code" / m.name  # mutated_copy made it before the reference ran
    sweep = work / "sweeps" / m.name
    if m.reruns == "datagen":
        place_base(world_base(log=lambda *_: None)[0], sweep)
    else:
        reuse_sweep(reference, sweep, m.reruns)
    t0 = time.time()
    rc, message = run_world(copy, sweep_yaml, sweep, work / "logs" / f"{m.name}.log")
    if rc != 0 and "SweepMismatch" in message:  # launch refused the harness's folder: nothing was judged
        raise SystemExit(f"{m.name}: the harness's sweep folder was refused before any stage ran ({message})")
    return judge(m, sweep, ref_table, f"{time.time() - t0:5.0f} s", message if rc != 0 else "")


def judge(m: WorldMutant, sweep: Path, ref_table, took: str, refusal: str) -> tuple[bool, str]:
    """(caught, the mutant's line): a stage's refusal, else its recovery table against the reference's."""
    from evalsuite.analysis.world_recovery import recovery_from_sweep

    if refusal:
        return True, f"{m.name:<22} caught   {took}  stage refused: {refusal}"
    caught, moved = moved_rows(ref_table, recovery_from_sweep(sweep))
    verdict = "caught  " if caught else "MISSED  "
    return caught, f"{m.name:<22} {verdict} {took}  {m.what}; " + ("; ".join(moved) if moved else "no row moved")


def rejudge(m: WorldMutant, work: Path, ref_table) -> tuple[bool | None, str]:
    """Judge a mutant's sweep kept by an earlier ``--out WORK`` run again, with today's recovery table
    (the rows evolve; the sweeps cost minutes to hours). (None, why) when that run left no judgeable
    sweep for it: never run, or cut short (no finished analysis and no refusal in its logs)."""
    from tracecause.contracts import SweepLayout
    from tracecause.io import is_complete

    sweep = work / "sweeps" / m.name
    if not sweep.is_dir():
        return None, f"{m.name:<22} not run in {work}"
    if is_complete(SweepLayout(sweep).analysis):
        return judge(m, sweep, ref_table, "re-judged", "")
    # a stage's refusal is in its job logs, or (launch's own, or the analysis run in place) in the run's log
    refusal = refusal_message([*sorted((sweep / "jobs").rglob("*")), work / "logs" / f"{m.name}.log"])
    if not refusal:
        return None, f"{m.name:<22} unfinished in {work} (no analysis, no refusal): run it again with --only"
    return judge(m, sweep, ref_table, "re-judged", refusal)


def usable_reference(ref_table, heading: str) -> bool:
    """Print the reference's lines; False (said why) when it cannot judge any mutant."""
    from evalsuite.analysis.world_recovery import summary_lines

    print(heading, *summary_lines(ref_table, "-")[:-1], sep="\n  ")
    problems = reference_problems(ref_table)
    if problems:
        print("the reference itself is wrong, so no mutant can be judged:\n  " + "\n  ".join(problems))
        return False
    unjudged = unjudged_rows(ref_table)
    if unjudged:
        print("planted rows the reference did not recover (they judge no mutant):\n  " + "\n  ".join(unjudged))
    return True


def rejudge_all(work: Path, reference: str | None, chosen: list[WorldMutant]) -> int:
    from evalsuite.analysis.world_recovery import recovery_from_sweep

    ref = Path(reference) if reference else work / "sweeps" / "reference"
    if not (work / "sweeps").is_dir() or not ref.is_dir():
        raise SystemExit(f"--rejudge {work}: no sweeps/ there, or no reference {ref}; fix: name the --out folder of "
                         "an earlier run, and --reference the demo it judged against")
    ref_table = recovery_from_sweep(ref)
    if not usable_reference(ref_table, f"reference (unmutated) {ref}, re-judged:"):
        return 2
    verdicts = []
    for m in chosen:
        ok, line = rejudge(m, work, ref_table)
        print(line, flush=True)
        verdicts += [] if ok is None else [ok]
    print(f"mutants caught: {sum(verdicts)} of {len(verdicts)}"
          + (f" ({len(chosen) - len(verdicts)} not judged)" if len(verdicts) < len(chosen) else ""))
    return 0 if verdicts and all(verdicts) and len(verdicts) == len(chosen) else 1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", metavar="NAME",
                    help=f"mutants to run (default all: {', '.join(m.name for m in MUTANTS)})")
    ap.add_argument("--seeds", type=int, help="seeds per arm (default: the demo's)")
    ap.add_argument("--out", help="work folder, kept (default: a temporary folder, removed)")
    ap.add_argument("--reference", help="a finished demo sweep of this code to judge against (default: run one)")
    ap.add_argument("--rejudge", metavar="WORK", help="run nothing: judge the sweeps an earlier --out WORK run kept "
                    "again, with today's recovery table (against --reference, default WORK/sweeps/reference)")
    args = ap.parse_args(argv)
    chosen = select(args.only)
    if args.rejudge:
        return rejudge_all(Path(args.rejudge).resolve(), args.reference, chosen)
    from launch.demo import place_base, world_base
    from evalsuite.analysis.world_recovery import recovery_from_sweep
    from tracecause.contracts import SweepLayout

    work = Path(args.out).resolve() if args.out else Path(tempfile.mkdtemp(prefix="tracecause-world-mutants-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        clean = make_copy(work / "code" / "reference")
        for m in chosen:  # every mutant must apply before the (long) reference run starts
            mutated_copy(clean, work / "code" / m.name, m)
        sweep_yaml = world_sweep(work, args.seeds)
        t0 = time.time()
        if args.reference:
            reference = given_reference(Path(args.reference), sweep_yaml)
            # its resolved spec, not the demo's YAML: the sweep folder is re-used, and launch refuses a
            # folder that holds another sweep (a refusal of the harness, never a mutant caught)
            sweep_yaml = work / "reference-sweep.yaml"
            shutil.copyfile(SweepLayout(reference).spec, sweep_yaml)
        else:
            reference = work / "sweeps" / "reference"
            place_base(world_base()[0], reference)
            rc, message = run_world(clean, sweep_yaml, reference, work / "logs" / "reference.log")
            if rc != 0:
                print(f"the unmutated reference run failed: {message}")
                return 2
        ref_table = recovery_from_sweep(reference)
        if not usable_reference(ref_table, f"reference (unmutated) {time.time() - t0:.0f} s:"):
            return 2
        caught = 0
        for m in chosen:
            ok, line = run_mutant(m, reference, sweep_yaml, work, ref_table)
            caught += ok
            print(line, flush=True)
    finally:
        if not args.out:
            shutil.rmtree(work, ignore_errors=True)
    print(f"mutants caught: {caught} of {len(chosen)}")
    return 0 if caught == len(chosen) else 1


if __name__ == "__main__":
    sys.exit(main())
