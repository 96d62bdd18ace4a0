"""The plan's power section: the MDE of every confirmatory contrast kind on each benchmark's primary
metric, at the alpha, df and seeds of the test ``analyze`` runs (launch.power), beside what 1, 2 and
3 seeds per arm would give, with each variance component's source (pilot-measured or assumed)."""
from __future__ import annotations

from dataclasses import replace

from launch import power

SEED_COLUMNS = (1, 2, 3)
UNKNOWN_PROMPTS = 100  # MDE shown per 100 prompts when a benchmark file is not fetched


def pooled_arms(plan) -> tuple[int, str]:
    """Trained arms sharing one seed-variance estimate (the smallest pool of the sweep), and the pool's name."""
    by = (plan.spec.analysis or {}).get("seed_pool", "size")
    pools: dict[tuple, set] = {}
    for ra in plan.arms:
        a = ra.arm
        if a.trained:
            key = (a.model, a.paradigm) if by == "size_paradigm" else (a.model,)
            pools.setdefault(key, set()).add((a.rtype, a.paradigm))
    return (min(len(v) for v in pools.values()) if pools else 0), ("model size x paradigm" if by == "size_paradigm"
                                                                   else "model size")


def power_lines(plan, pilot: str | None, benchmarks: dict[str, dict], resamples: int = 10_000) -> list[str]:
    alpha = float((plan.inputs.family or {}).get("alpha") or power.ALPHA)
    family = plan.inputs.family_size
    n = int(family) if family else 1
    level = power.holm_first_step(alpha, n)
    seeds = len(plan.spec.seeds)
    arms, pool = pooled_arms(plan)
    out = ["", f"minimum detectable effect ({power.POWER:.0%} power, two-sided), on each benchmark's primary metric, "
               f"for the test analyze runs:"]
    if family:
        out.append(f"  alpha {alpha:g} / {n} = {level:.2g}: Holm's first step over the confirmatory family of {n} "
                   f"tests (every MDE at this level: conservative, later Holm steps need less)")
    else:
        out.append(f"  alpha {alpha:g} unadjusted: confirmatory family not built (N = 1 assumed): the MDEs below "
                   f"are optimistic for a family of N tests (alpha / N)")
    out.append(f"  seeds: {seeds} per arm; seed variance pooled over the {arms} trained arms of each {pool} "
               f"({arms} x (S - 1) df); df: Satterthwaite between prompt clusters (C - 1) and pooled seeds")
    if seeds == 1:
        out.append("  ONE SEED: the confirmatory p-values and CIs will be CONDITIONAL on these training runs (cluster "
                   "sign-flip over prompts, no seed variance): the 1-seed MDE is about these runs, not the training "
                   "method; the 2- and 3-seed columns are what more seeds buy")
        if level < power.smallest_signflip_p(resamples):
            out.append(f"  NOTE: alpha / N = {level:.2g} is below the smallest sign-flip p over {resamples:,} "
                       f"resamples ({power.smallest_signflip_p(resamples):.2g}): no one-seed test can reject")
    rows = contrast_rows(plan, benchmarks)
    comps = _components(plan, pilot, [b for b in benchmarks if any(r[0] == b for r in rows)])
    out.append("  variance components (sd on the primary metric's scale):")
    for name, (metric, c) in comps.items():
        out.append(f"    {name} ({metric}): sample {c.sample:.3f}, prompt x arm {c.prompt:.3f} (icc {c.icc:.2f}), "
                   f"seed {c.seed:.3f} -- {_sources(c)}")
    out += _table(plan, rows, comps, benchmarks, seeds, arms, alpha, n)
    return out


def _components(plan, pilot, benchmarks: list[str]) -> dict[str, tuple[str, power.Components]]:
    """benchmark -> (primary metric, components): the pilot's where it measured the same primary."""
    from launch import pilot as pilots

    declared = {b: ((v or {}).get("primary") or {}).get("metric") or "primary"
                for b, v in (plan.inputs.analysis_benchmarks or {}).items()}
    measured = pilots.pilot_components(pilot) if pilot else {}
    out = {}
    for name in benchmarks:
        metric = declared.get(name, "primary")
        got = measured.get(name)
        if got and got[0] == metric:
            out[name] = got
            continue
        why = ("" if not pilot else f": the pilot's primary is {got[0]!r}" if got else ": not in the pilot")
        c = power.default_components()
        out[name] = (metric, replace(c, sources=tuple((k, power.ASSUMED + why) for k in power.DEFAULTS)))
    return out


def _sources(c: power.Components) -> str:
    by: dict[str, list[str]] = {}
    for name in ("sample", "prompt", "icc", "seed"):
        by.setdefault(c.source(name), []).append(name)
    return "; ".join(f"{', '.join(names)}: {src}" for src, names in by.items())


def contrast_rows(plan, benchmarks: dict[str, dict]) -> list[tuple[str, str, power.Shape, int]]:
    """(benchmark, contrast label, shape, tests) to show: the confirmatory family's own contrasts (one row
    per distinct contrast, counting its tests over sizes), or every kind on every benchmark before the
    family is built."""
    tests = (plan.inputs.family or {}).get("tests")
    if not tests:
        return [(b, kind, shape, 0) for b in benchmarks for kind, (_, shape) in power.CONTRASTS.items()]
    rows: dict[tuple, int] = {}
    for t in tests:
        shape = power.shape_of(t)
        if shape is not None and t.get("benchmark") in benchmarks:
            label = f"{t['kind']} {t.get('paradigm')}-{t.get('paradigm_b')} {t.get('mode')}"
            key = (t["benchmark"], label, shape)
            rows[key] = rows.get(key, 0) + 1
    order = list(benchmarks)
    return sorted(((*k, n) for k, n in rows.items()), key=lambda r: order.index(r[0]))


def _table(plan, rows, comps, benchmarks, seeds: int, arms: int, alpha: float, n: int) -> list[str]:
    cols = sorted({*SEED_COLUMNS, seeds})
    width = max([16] + [len(label) + 2 for _, label, _, _ in rows])
    head = "  ".join(f"{f'{s} seed' + ('s' if s > 1 else '') + ('*' if s == seeds else ''):>16}" for s in cols)
    out = [f"  {'benchmark':<24} {'prompts':>7} {'clusters':>8} {'K':>4}  {'contrast':<{width}}{'tests':>5}  {head}",
           f"  {'':<24} {'':>7} {'':>8} {'':>4}  {'':<{width}}{'':>5}  " + "  ".join(f"{'MDE (df)':>16}" for _ in cols)]
    unknown = False
    for name, label, shape, tests in rows:
        b, c = benchmarks[name], comps[name][1]
        prompts = b["prompts"] or UNKNOWN_PROMPTS
        clusters = b.get("clusters") or prompts
        unknown |= not b["prompts"]
        d = power.Design(prompts, clusters, b["samples"], seeds, arms)
        cells = power.mde_by_seeds(shape, c, d, cols, alpha, n)
        out.append(f"  {name[:24]:<24} {(b['prompts'] or '100?'):>7} {clusters if b['prompts'] else '?':>8} "
                   f"{b['samples']:>4g}  {label:<{width}}{tests or '':>5}  "
                   + "  ".join(f"{_cell(cells[s]):>16}" for s in cols))
    out.append("  * this sweep's seeds per arm; c = conditional on the training runs (one seed: no seed term)")
    if any(power.shape_of(t) is None for t in (plan.inputs.family or {}).get("tests") or ()):
        out.append("  (specificity tests: a permutation test over training runs, not a linear contrast: no MDE here)")
    if unknown:
        out.append(f"  (100? = file not fetched: the MDE shown is for {UNKNOWN_PROMPTS} prompts, one per cluster)")
    return out


def _cell(m: power.Mde) -> str:
    if m.value != m.value:  # nan: a variance part without df (one cluster, no pooled arm): no t test
        return "n/a (no df)"
    df = "inf" if m.df == float("inf") else f"{m.df:.0f}"
    return f"{m.value:.3f} ({df}{' c' if m.conditional else ''})"
