"""The status table: sweep-level stages, one line per arm, then every failure with what to do about it."""
from __future__ import annotations

from collections import defaultdict

from tracecause.contracts import Arm

STAGE_ORDER = ("datagen", "merge", "train", "eval", "analysis")


def _trained(arm_id: str) -> bool:
    try:
        return Arm.parse(arm_id).trained
    except ValueError:
        return True


def _cell(rows: list[dict]) -> str:
    if not rows:
        return "-"
    states = sorted({r["state"] for r in rows})
    att = max(r["attempts"] for r in rows)
    text = states[0] if len(states) == 1 else "/".join(states)
    return f"{text}" + (f" x{att}" if att > 1 else "")


def _progress(rows: list[dict]) -> str:
    """``generate 120/400 85 tok/s`` summed over an arm's running eval tasks."""
    live = [r["progress"] for r in rows if r.get("progress") and r["state"] != "done"]
    if not live:
        return ""
    stage = live[0]["stage"]
    done, total = sum(p["done"] for p in live if p["stage"] == stage), sum(p["total"] for p in live if p["stage"] == stage)
    tps = sum(p["tokens_per_s"] or 0 for p in live if p["stage"] == stage)
    return f"{stage} {done}/{total}" + (f" {tps:.0f} tok/s" if tps else "")


def _counts(rows: list[dict]) -> str:
    p, c = sum(r["preemptions"] or 0 for r in rows), sum(r["crashes"] or 0 for r in rows)
    return f"p{p} c{c}" if p or c else ""


def format_status(rows: list[dict]) -> str:
    by_stage: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in rows:
        by_stage[r["stage"]][r["state"]] += 1
    lines = ["summary: " + "; ".join(f"{s} " + ", ".join(f"{k} {v}" for k, v in sorted(by_stage[s].items()))
                                     for s in STAGE_ORDER if s in by_stage)]
    arms: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r["arm"] and r["stage"] in ("train", "eval"):
            arms[r["arm"]][r["stage"]].append(r)
    lines += ["", f"{'arm':<36} {'train':<12} {'job':<12} {'step':>5} {'loss':>8} {'p/c':<7} {'eval':<12} "
                  f"{'eval progress':<26} W&B"]
    for arm in sorted(arms):
        tr, ev = arms[arm]["train"], arms[arm]["eval"]
        t = tr[0] if tr else {}
        loss = f"{t['loss']:.4f}" if isinstance(t.get("loss"), (int, float)) else ""
        wandb = ", ".join(x for x in [t.get("wandb", "")] + sorted({r.get("wandb", "") for r in ev}) if x)
        lines.append(f"{arm[:36]:<36} {_cell(tr) if tr else ('-' if _trained(arm) else 'base'):<12} "
                     f"{t.get('job_id', ''):<12} {str(t.get('step') or ''):>5} {loss:>8} {_counts(tr + ev):<7} "
                     f"{_cell(ev):<12} {_progress(ev):<26} {wandb}")
    trouble = sorted((r for r in rows if r["state"] in ("failed", "crashed", "blocked")),
                     key=lambda r: r["state"] == "blocked")  # causes first, then what they block
    if trouble:
        lines += ["", "failures:"]
    for r in trouble:
        uid = f"{r['stage']}/{r['key']}"
        if r["state"] == "blocked":
            lines.append(f"  {uid}: blocked by {r['blocked_by']}")
            continue
        extra = f"; {r['counts']}" if r.get("counts") else ""
        lines.append(f"  {uid}: {r['state']} (job {r['job_id'] or '-'}): {r['reason'] or 'no reason recorded'}{extra}")
        lines += [f"      | {line}" for line in r.get("log_tail", [])]
    return "\n".join(lines)
