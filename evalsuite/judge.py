"""``judge``: samples.jsonl -> judged.jsonl (LLM rubric verdicts per sample and span), cached.

Which judges run on which span comes from the battery (``judges: [{name, spans}]``). A judge call
is cached under (judge identity, rubric file hash, rendered judge prompt, judge sampling), so a
re-run or a resumed task only asks what is missing. Each judged row keeps the raw reply, whether it
parsed, and the parsed values; nothing unparseable is turned into a number.
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict
from typing import Any

from tqdm import tqdm

from tracecause.config import to_dict, write_resolved
from tracecause.contracts import SAMPLE_ID_COLUMNS

from evalsuite import outputs
from evalsuite.battery import LLM_JUDGES, load_battery
from evalsuite.cache import ResultCache, cache_key
from evalsuite.config import EvalConfig
from evalsuite.judge_backend import make_backend
from evalsuite.judges import PARSERS, RUBRICS, Rubric, load_rubrics


def judge_slot(rubric: str, span: str) -> str:
    """Where a verdict sits in a judged row's ``judgements`` (and how metrics.py finds it)."""
    return f"{rubric}@{span}"


def plan_calls(rows: list[dict], uses: dict[str, list[tuple[str, str]]], rubrics: dict[str, Rubric]) -> list[dict]:
    """One call per (row, rubric, span) with non-empty text: {row index, slot, rubric, prompt}."""
    calls = []
    for i, row in enumerate(rows):
        for judge, span in uses.get(row["benchmark"], []):
            text = row[span]
            for rubric in RUBRICS[judge]:
                slot = judge_slot(rubric, span)
                if not text.strip():
                    continue  # nothing to judge: the metric does not apply (see metrics.py)
                template = rubrics[rubric]
                override = row.get("judge_prompts", {}).get(rubric)
                if override:  # per-question rubric from the benchmark file (emergent-misalignment YAML)
                    template = Rubric(rubric, override)
                calls.append({"row": i, "slot": slot, "rubric": rubric, "rubric_sha": template.sha,
                              "prompt": template.render(row["question"], text)})
    return calls


def judge_rows(rows: list[dict], uses: dict, rubrics: dict[str, Rubric], backend: Any, cache: ResultCache,
               chunk_size: int, progress: bool) -> tuple[list[dict], dict]:
    ident = backend.identity()
    calls = plan_calls(rows, uses, rubrics)
    sampling = asdict(backend.cfg.sampling)
    for c in calls:
        c["key"] = cache_key(kind="judge", judge=ident, rubric=c["rubric_sha"], sampling=sampling,
                             thinking=backend.cfg.enable_thinking,
                             prompt=hashlib.sha256(c["prompt"].encode()).hexdigest())
    todo = [c for c in calls if c["key"] not in cache]
    bar = tqdm(total=len(todo), desc="judge", unit="call", disable=not progress or not todo)
    for start in range(0, len(todo), chunk_size):
        chunk = todo[start:start + chunk_size]
        replies = backend.complete([c["prompt"] for c in chunk])
        cache.put_many((c["key"], r) for c, r in zip(chunk, replies))
        bar.update(len(chunk))
    bar.close()
    judged = [{**{k: row[k] for k in SAMPLE_ID_COLUMNS}, "judgements": {}} for row in rows]
    unparsed = 0
    for c in calls:
        raw = cache.get(c["key"])
        verdict = PARSERS[c["rubric"]](raw)
        unparsed += not verdict.parsed
        judged[c["row"]]["judgements"][c["slot"]] = {"raw": raw, **verdict.to_json()}
    return judged, {"calls": len(calls), "calls_run": len(todo), "unparsed": unparsed}


def battery_uses(battery) -> dict[str, list[tuple[str, str]]]:
    return {s.name: [(j.name, span) for j in s.judges if j.name in LLM_JUDGES for span in j.spans]
            for s in battery.benchmarks}


def run_judge(cfg: EvalConfig, llm: Any = None) -> dict[str, Any]:
    cfg.require()
    battery = load_battery(cfg.battery)
    uses = battery_uses(battery)
    rubrics = load_rubrics(cfg.judge.prompts)
    extra = {"uses": uses, "rubrics": {r: v.sha for r, v in rubrics.items()}, "judge": to_dict(cfg.judge)}
    n, k = cfg.shard.count, cfg.shard.index
    todo = []
    for mode in cfg.modes:
        out = cfg.out_dir(mode)
        rows = outputs.read_input(out, "generate", k, n, "judge")
        ih = outputs.input_hash(out, ("generate",), k, n, extra)
        done = outputs.stage_done(out, "judge", ih) if n == 1 else outputs.shard_done(out, "judge", k, n, ih)
        if not done:
            todo.append((mode, rows, ih))
    stats: dict[str, Any] = {"calls": 0, "calls_run": 0, "unparsed": 0, "modes_done": [], "merged": []}
    if todo:
        needs_llm = any(uses.get(r["benchmark"]) for _, rows, _ in todo for r in rows)
        backend = make_backend(cfg.judge, llm=llm) if needs_llm else None
        with ResultCache(cfg.cache_path, "judge") as cache:
            for mode, rows, ih in todo:
                out = cfg.out_dir(mode)
                if backend is None:
                    judged = [{**{c: r[c] for c in SAMPLE_ID_COLUMNS}, "judgements": {}} for r in rows]
                    st = {"calls": 0, "calls_run": 0, "unparsed": 0}
                else:
                    judged, st = judge_rows(rows, uses, rubrics, backend, cache, cfg.engine.chunk_size, cfg.progress)
                write_resolved(cfg, out, name="judge_config")
                if n == 1:
                    outputs.write_merged_jsonl(out, "judge", judged, ih, unparsed=st["unparsed"])
                else:
                    outputs.write_shard(out, "judge", k, n, judged, ih)
                for key in ("calls", "calls_run", "unparsed"):
                    stats[key] += st[key]
                stats["modes_done"].append(mode)
    for mode in cfg.modes if n > 1 else ():  # the last shard to finish merges
        out = cfg.out_dir(mode)
        merged = outputs.merged_hash_if_ready(out, "judge", ("generate",), n, extra)
        if merged and not outputs.stage_done(out, "judge", merged):
            rows = outputs.read_shards(out, "judge", n)
            bad = sum(not j["parsed"] for r in rows for j in r["judgements"].values())
            outputs.write_merged_jsonl(out, "judge", rows, merged, unparsed=bad)
            stats["merged"].append(mode)
    return stats
