"""Which effects the study asks for, as linear combinations of prompt-level series.

For every model size, mode, metric and paradigm present in a benchmark:
  training        arm − base model
  amplification   QTA type r − QA                                   (finding 1)
  content         type r − type r′, same paradigm                     (finding 2)
  answer_free     QT / T-only type r − base, and − QA                 (finding 3)
  internalisation training effect in no-think; think − no-think
                  difference-in-differences; ratio no-think / think   (finding 4; ratio derived later)
  scale           slope of any of the above against log10(parameters) across sizes
  replicate_split one trained arm's seeds in two halves, one half − the other: a null with a known
                  answer of zero (nothing differs but training noise), so a significant split says
                  the seed-level inference is too optimistic
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from itertools import combinations

import numpy as np

from tracecause.contracts import TRACED_PARADIGMS, Arm

from .engine import LinearEffect, label
from .load import Benchmark
from .load import cond_label as label_for

ANSWER_FREE = ("qt", "t_only")
# Halves of 2 and 3 seeds at least. A one-seed side's variance is unknown (inference conditional on
# that run calls plain training noise significant), and with 2 seeds a side the seed-level t runs
# hot: over 1500 simulated null splits (evalsuite/analysis/simulate_seeds.py) 2 v 2 rejected 7.9 %
# at alpha 5 %, 2 v 3 5.0 %, 3 v 3 4.1 %.
SPLIT_MIN_SEEDS = 5
INTERNAL_MODES = {"no_think_effect": "no_think", "did": "think_minus_no_think", "ratio": "no_think_over_think"}


def _meta(bench, kind, statistic, metric, mode, model, a, b, **extra) -> dict:
    return {"kind": kind, "statistic": statistic, "benchmark": bench.name, "axis": bench.axis, "metric": metric,
            "mode": mode, "size": model, "paradigm": a[2], "paradigm_b": b[2], "rtype_a": a[1], "rtype_b": b[1],
            "arm_a": label(bench, a), "arm_b": label(bench, b), **extra}


def _pair(bench, kind, metric, mode, model, a, b) -> LinearEffect:
    terms = [((a, mode, metric), 1.0), ((b, mode, metric), -1.0)]
    return LinearEffect(terms, _meta(bench, kind, "difference", metric, mode, model, a, b),
                        rate_pair=bench.is_rate.get(metric, False))


def pairwise_effects(bench: Benchmark, notes: list[str]) -> list[LinearEffect]:
    out: list[LinearEffect] = []
    modes = sorted({k[1] for k in bench.series})
    for metric in bench.metrics:
        for mode in modes:
            conds = bench.conds(mode, metric)
            for model in sorted({c[0] for c in conds}):
                have = {c for c in conds if c[0] == model}
                base, qa = (model, "none", "base"), (model, "none", "qa")
                trained = sorted(c for c in have if c[2] != "base")
                if base in have:
                    out += [_pair(bench, "training", metric, mode, model, c, base) for c in trained]
                elif trained:
                    notes.append(f"{bench.name}/{metric}/{mode}: no base eval for {model}; training and "
                                 f"answer-free vs base effects skipped")
                types = lambda p: sorted(c for c in have if c[2] == p)  # noqa: E731
                if qa in have:
                    out += [_pair(bench, "amplification", metric, mode, model, c, qa) for c in types("qta")]
                    for p in ANSWER_FREE:
                        out += [_pair(bench, "answer_free", metric, mode, model, c, qa) for c in types(p)]
                elif types("qta"):
                    notes.append(f"{bench.name}/{metric}/{mode}: no QA eval for {model}; amplification skipped")
                if base in have:
                    for p in ANSWER_FREE:
                        out += [_pair(bench, "answer_free", metric, mode, model, c, base) for c in types(p)]
                for p in TRACED_PARADIGMS:
                    for a, b in combinations(types(p), 2):
                        out.append(_pair(bench, "content", metric, mode, model, a, b))
    return out


def internalisation_effects(bench: Benchmark) -> list[LinearEffect]:
    """No-think training effect and the think − no-think difference-in-differences."""
    out = []
    for metric in bench.metrics:
        both = set(bench.conds("think", metric)) & set(bench.conds("no_think", metric))
        for c in sorted(x for x in both if x[2] != "base"):
            base = (c[0], "none", "base")
            if base not in both:
                continue
            nt = [((c, "no_think", metric), 1.0), ((base, "no_think", metric), -1.0)]
            did = [((c, "think", metric), 1.0), ((base, "think", metric), -1.0),
                   ((c, "no_think", metric), -1.0), ((base, "no_think", metric), 1.0)]
            out.append(LinearEffect(nt, _meta(bench, "internalisation", "no_think_effect", metric,
                                              INTERNAL_MODES["no_think_effect"], c[0], c, base),
                                    rate_pair=bench.is_rate.get(metric, False)))
            out.append(LinearEffect(did, _meta(bench, "internalisation", "did", metric, INTERNAL_MODES["did"],
                                               c[0], c, base)))
    return out


def scale_effects(bench: Benchmark, effects: list[LinearEffect], log_params: dict) -> list[LinearEffect]:
    """Least-squares slope of each effect against log10(parameters), itself a linear effect."""
    groups = defaultdict(dict)
    for eff in effects:
        m = eff.meta
        x = log_params.get(m["size"])
        if x is None:
            continue
        sig = (m["kind"], m["statistic"], m["metric"], m["mode"], m["rtype_a"], m["paradigm"], m["rtype_b"],
               m["paradigm_b"])
        groups[sig][m["size"]] = (x, eff)
    out, seen = [], set()
    priority = {k: i for i, k in enumerate(("training", "amplification", "content", "answer_free", "internalisation"))}
    for sig, by_size in sorted(groups.items(), key=lambda kv: (priority.get(kv[0][0], 9), kv[0])):
        same_numbers = sig[2:]  # e.g. answer-free QT − base is also a training effect: one slope
        if len(by_size) < 2 or same_numbers in seen:
            continue
        seen.add(same_numbers)
        xs = np.array([v[0] for v in by_size.values()])
        if np.ptp(xs) == 0:
            continue
        a = (xs - xs.mean()) / ((xs - xs.mean()) ** 2).sum()
        terms = [(key, float(w * coef)) for w, (_, eff) in zip(a, by_size.values()) for key, coef in eff.terms]
        kind, statistic, metric, mode, ra, pa, rb, pb = sig
        meta = {"kind": "scale", "statistic": f"slope_{kind}_{statistic}", "benchmark": bench.name, "axis": bench.axis,
                "metric": metric, "mode": mode, "size": "+".join(sorted(by_size, key=lambda s: log_params[s])),
                "paradigm": pa, "paradigm_b": pb, "rtype_a": ra, "rtype_b": rb,
                "arm_a": f"{ra}.{pa}", "arm_b": f"{rb}.{pb}", "scale_of": kind}
        out.append(LinearEffect(terms, meta))
    return out


def replicate_splits(bench: Benchmark) -> tuple[Benchmark, list[LinearEffect]]:
    """Every trained arm with >= SPLIT_MIN_SEEDS seeds: lower half of its seeds − upper half.

    The halves enter as two arms of their own, ``(model, rtype, paradigm, "a"|"b")``, in a copy of the
    benchmark that also keeps every real arm, so the split rows are resampled and tested exactly like
    any two arms (seed-level inference, cluster bootstrap) and the other effects are unchanged.
    """
    series, seeds, inputs, counts = dict(bench.series), dict(bench.seeds), dict(bench.inputs), dict(bench.judge_counts)
    effects: list[LinearEffect] = []
    for (cond, mode, metric), by_seed in sorted(bench.series.items()):
        if cond[2] == "base" or len(by_seed) < SPLIT_MIN_SEEDS:
            continue
        ordered = sorted(by_seed)
        halves = {"a": ordered[:len(ordered) // 2], "b": ordered[len(ordered) // 2:]}
        for tag, part in halves.items():
            half = (*cond, tag)
            series[(half, mode, metric)] = {s: by_seed[s] for s in part}
            counts[(half, mode, metric)] = {s: c for s, c in bench.judge_counts.get((cond, mode, metric), {}).items()
                                            if s in part}
            seeds[half] = part
            inputs[(half, mode)] = {k: h for k, h in bench.inputs.get((cond, mode), {}).items()
                                    if Arm.parse(k.split("/")[0]).seed in part}
        a, b = (*cond, "a"), (*cond, "b")
        terms = [((a, mode, metric), 1.0), ((b, mode, metric), -1.0)]
        meta = {**_meta(bench, "replicate_split", "difference", metric, mode, cond[0], cond, cond),
                "arm_a": label_for(cond, halves["a"]), "arm_b": label_for(cond, halves["b"])}
        effects.append(LinearEffect(terms, meta, rate_pair=bench.is_rate.get(metric, False)))
    if not effects:
        return bench, []
    return replace(bench, series=series, seeds=seeds, inputs=inputs, judge_counts=counts), effects
