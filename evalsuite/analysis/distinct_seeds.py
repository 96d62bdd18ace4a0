"""Seeds must differ: an arm whose training seeds produced the same weights is one run counted S times.

Seed-level inference reads the spread between an arm's seeds as training noise. If the seed never
reached training (a config that drops it, a data order that ignores it) every seed trains the same
model: the spread is zero, the split halves agree exactly, and every CI is too narrow without any
row looking wrong. So two seeds of one arm whose evals were generated from the same weights hash
are refused, naming the arm and the seeds, before any effect is computed.
"""
from __future__ import annotations


def identical_seed_weights(evals) -> list[str]:
    """One line per trained arm (and mode) with two seeds generated from identical weights.

    ``evals``: load.EvalInput items (arm, mode, weights_hash); evals with no recorded hash are skipped.
    """
    seen: dict[tuple, dict[str, list[int]]] = {}
    for e in evals:
        if not e.arm.trained or not e.weights_hash:
            continue
        key = (e.arm.model, e.arm.rtype, e.arm.paradigm, e.mode)
        seen.setdefault(key, {}).setdefault(e.weights_hash, []).append(e.arm.seed)
    out = []
    for (model, rtype, paradigm, mode), by_hash in sorted(seen.items()):
        for digest, seeds in sorted(by_hash.items()):
            if len(seeds) > 1:
                out.append(f"arm {model}.{rtype}.{paradigm} ({mode}): seeds {sorted(seeds)} were generated from the "
                           f"same weights (sha256 {digest[:16]}): the training seed did not reach training")
    return out


def require_distinct_seeds(evals) -> None:
    problems = identical_seed_weights(evals)
    if problems:
        raise ValueError("training seeds must produce different models; refusing to treat one run as several:\n  - "
                         + "\n  - ".join(problems) + "\n  fix the trainer's seeding (train.seed) and retrain these arms")
