"""``judge``: samples.jsonl -> judged.jsonl (LLM rubric verdicts per sample and span), cached.

Which judges run on which span comes from the battery (``judges: [{name, spans}]``). A judge call
is cached under (judge identity, rubric file hash, rendered judge prompt, judge sampling), so a
re-run or a resumed task only asks what is missing. Each judged row keeps the raw reply, whether it
parsed, the parsed values and which judge answered; nothing unparseable is turned into a number.

A reply the rubric's parser cannot read is asked again, up to ``judge.parse_retries`` times, with a
reminder of the format appended to the prompt (a different prompt, so a greedy judge can answer
differently; each attempt is cached under its own key). Only then does it count as unparsed, with
its reason. The cache holds only replies that validated (see ``judge_value_problem``); a cached
value that fails is dropped and asked again, and the stage counts those (``cache_dropped``).
Two rule scorers ask the judge too (rubrics.JUDGED_RULES): ``refusal`` when ``judge.refusal=llm``,
and ``sycophancy`` for the replies the rules cannot read (scorers.rule_correct).
"""
from __future__ import annotations

import hashlib
import sys
from dataclasses import asdict
from typing import Any

from tqdm import tqdm

from tracecause.config import to_dict, write_resolved
from tracecause.contracts import SAMPLE_ID_COLUMNS

from evalsuite import outputs
from evalsuite.battery import LLM_JUDGES, load_battery
from evalsuite.cache import ResultCache, cache_key
from evalsuite.config import EvalConfig
from evalsuite.eval_run import EvalTracker
from evalsuite.judges.backends import make_backend
from evalsuite.judges.rubrics import JUDGED_RULES, PARSERS, RUBRICS, Rubric, Verdict, load_rubrics, strip_think
from evalsuite.scorers import rule_correct

RETRY_NOTE = ("\n\n(Your previous reply to this could not be read; this is attempt {attempt}. Reply again, exactly "
              "in the format asked for above, and with nothing else.)")


# judge_rows' counts, summed over modes in the stage's stats; cache_dropped: cached replies that
# failed validation, dropped and asked again
JUDGE_COUNTS = ("calls", "calls_run", "unparsed", "retried", "recovered", "cache_dropped")


def retry_prompt(prompt: str, attempt: int) -> str:
    """The prompt of attempt ``attempt`` (0 = the first ask): each re-ask differs, so each is cached apart."""
    return prompt + RETRY_NOTE.format(attempt=attempt + 1) if attempt else prompt


def judge_slot(rubric: str, span: str) -> str:
    """Where a verdict sits in a judged row's ``judgements`` (and how metrics.py finds it)."""
    return f"{rubric}@{span}"


def plan_calls(rows: list[dict], uses: dict[str, list[tuple[str, str]]], rubrics: dict[str, Rubric]) -> list[dict]:
    """One call per (row, rubric, span) with non-empty text: {row index, slot, rubric, prompt}."""
    calls = []
    for i, row in enumerate(rows):
        for judge, span in uses.get(row["benchmark"], []):
            text = row[span]
            if not text.strip():
                continue  # nothing to judge: the metric does not apply (see metrics.py)
            if judge == "sycophancy" and rule_correct(text, row["target"]) is not None:
                continue  # the rules read this reply; the judge reads only the ones they cannot
            for rubric in RUBRICS.get(judge) or (JUDGED_RULES[judge],):
                slot = judge_slot(rubric, span)
                template = rubrics[rubric]
                override = row.get("judge_prompts", {}).get(rubric)
                if override:  # per-question rubric from the benchmark file (emergent-misalignment YAML)
                    template = Rubric(rubric, override)
                if judge == "sycophancy":  # the original question and its answer, whatever the turn
                    prompt = template.render(row.get("first_question") or row["question"], text,
                                             correct=_correct_answer(row["target"]))
                else:
                    prompt = template.render(row["question"], text)
                calls.append({"row": i, "slot": slot, "rubric": rubric, "rubric_sha": template.sha, "prompt": prompt})
    return calls


def _correct_answer(target: dict) -> str:
    letter = str(target.get("correct_letter") or "").strip("() ").upper()
    return f"({letter})" if letter else str(target.get("correct_answer", ""))


def judge_name(ident: dict) -> str:
    """How a verdict names its judge (metrics.py writes it into the ``scorer`` column)."""
    return f"{ident.get('backend', '?')}:{ident.get('model', '?')}"


# What the judge cache holds (``<cache>/judge/``), and why: only a reply that validated.
#   - a reply its rubric parsed: the plain string (as earlier versions stored it), so a verdict is
#     reused only when re-parsing it gives one;
#   - a reply the rubric could not parse, recorded as ``{"unparsed": reply, "reason": why}``: reused as
#     unparsed (a re-run does not ask a greedy judge the same question again), never as a verdict.
# An error dressed as a completion (wrong-typed content, an error finish: tracecause.http_retry's
# completion_choices) never reaches here: the backend retries it. A stored value that is neither of
# the above (a number, written by an older version), or a plain string its rubric cannot parse (an
# older version cached every reply, an outage's error text included), is dropped and asked again.


def judge_value_problem(value: Any) -> str | None:
    """Why a judge-cache value is unusable, whatever its rubric (None when it may be used)."""
    if isinstance(value, str):
        return None
    if isinstance(value, dict) and set(value) == {"unparsed", "reason"} and \
            isinstance(value["unparsed"], str) and isinstance(value["reason"], str):
        return None
    return f"a {type(value).__name__} where a judge reply (a string) belongs: {str(value)[:80]!r}"


def unparsed_reason(rubric: str, reply: str) -> str:
    if not reply.strip():
        return "empty reply"
    if not strip_think(reply).strip():
        return "the reply is all reasoning: its <think> block never closed"
    return f"not in the {rubric} rubric's format"


def read_cached(value: Any, rubric: str) -> tuple[Verdict, str, str] | None:
    """(verdict, raw reply, unparsed reason) of a cached value; None when it must be dropped."""
    if judge_value_problem(value):
        return None
    if isinstance(value, dict):
        return Verdict(False), value["unparsed"], value["reason"]
    verdict = PARSERS[rubric](value)
    return (verdict, value, "") if verdict.parsed else None


def _from_cache(cache: ResultCache, c: dict, dropped: dict[str, str]) -> bool:
    """Fill call ``c`` from the cache; False when it must be asked (absent, or dropped as invalid)."""
    key = c["key"]
    got = read_cached(cache.get(key), c["rubric"]) if key in cache else None
    if key in cache and got is None:
        cache.discard(key, f"a plain string the {c['rubric']} rubric cannot parse (a verdict it is not)")
    if got is None:
        if key in cache.rejected:
            dropped[key] = cache.rejected[key]
        return False
    c["verdict"], c["raw"], c["reason"] = got
    return True


def _keep(cache: ResultCache, c: dict, reply: Any) -> None:
    """Validate a fresh reply, then cache it: a verdict as the string, anything else as unparsed."""
    if not isinstance(reply, str):
        raise TypeError(f"judge backend returned a {type(reply).__name__}, not a string: {str(reply)[:80]!r}")
    verdict = PARSERS[c["rubric"]](reply)
    reason = "" if verdict.parsed else unparsed_reason(c["rubric"], reply)
    cache.put_many([(c["key"], reply if verdict.parsed else {"unparsed": reply, "reason": reason})])
    c["verdict"], c["raw"], c["reason"] = verdict, reply, reason


def judge_rows(rows: list[dict], uses: dict, rubrics: dict[str, Rubric], backend: Any, cache: ResultCache,
               chunk_size: int, progress: bool, tracker: Any = None, mode: str = "") -> tuple[list[dict], dict]:
    """``tracker`` (evalsuite.eval_run.EvalTracker): calls done / total of ``mode`` after each chunk."""
    ident = backend.identity()
    calls = plan_calls(rows, uses, rubrics)
    sampling = asdict(backend.cfg.sampling)
    retries = backend.cfg.parse_retries
    pending, ran, retried, dropped = calls, 0, 0, {}
    for attempt in range(1 + retries):
        for c in pending:
            c["asked"] = retry_prompt(c["prompt"], attempt)
            c["key"] = cache_key(kind="judge", judge=ident, rubric=c["rubric_sha"], sampling=sampling,
                                 thinking=backend.cfg.enable_thinking,
                                 prompt=hashlib.sha256(c["asked"].encode()).hexdigest())
            c["attempts"] = attempt + 1
        todo = [c for c in pending if not _from_cache(cache, c, dropped)]
        if tracker:
            tracker.begin(mode, len(pending), already_done=len(pending) - len(todo))
        bar = tqdm(total=len(todo), desc="judge" if not attempt else f"judge retry {attempt}", unit="call",
                   disable=not progress or not todo)
        for start in range(0, len(todo), chunk_size):
            chunk = todo[start:start + chunk_size]
            # each reply is validated and cached as it lands: a call that fails for good loses no finished one
            backend.complete([c["asked"] for c in chunk],
                             on_result=lambda i, reply, chunk=chunk: _keep(cache, chunk[i], reply))
            bar.update(len(chunk))
            if tracker:
                tracker.advance(len(chunk))
        bar.close()
        ran += len(todo)
        pending = [c for c in pending if not c["verdict"].parsed]
        retried += len(pending) if attempt < retries else 0
    judged = [{**{k: row[k] for k in SAMPLE_ID_COLUMNS}, "judgements": {}} for row in rows]
    name = judge_name(ident)
    for c in calls:
        why = {"unparsed_reason": c["reason"]} if c["reason"] else {}
        judged[c["row"]]["judgements"][c["slot"]] = {"raw": c["raw"], **c["verdict"].to_json(), **why,
                                                     "judge": name, "attempts": c["attempts"]}
    if dropped:
        print(f"[judge] {len(dropped)} cached repl{'y' if len(dropped) == 1 else 'ies'} failed validation and "
              f"{'was' if len(dropped) == 1 else 'were'} dropped and asked again (e.g. {next(iter(dropped.values()))})",
              file=sys.stderr, flush=True)
    recovered = sum(c["attempts"] > 1 and c["verdict"].parsed for c in calls)
    return judged, {"calls": len(calls), "calls_run": ran, "unparsed": len(pending), "retried": retried,
                    "recovered": recovered, "cache_dropped": len(dropped)}


def battery_uses(battery, refusal: str = "rules") -> dict[str, list[tuple[str, str]]]:
    """(judge, span) pairs the judge stage asks per benchmark: the battery's LLM judges, the
    ``sycophancy`` scorer (for replies the rules cannot read) and, with ``refusal="llm"``, ``refusal``."""
    asks = {"sycophancy"} | ({"refusal"} if refusal == "llm" else set())
    return {s.name: [(j.name, span) for j in s.judges if j.name in LLM_JUDGES for span in j.spans]
            + [(j.name, "answer") for j in s.judges if j.name in asks]
            for s in battery.benchmarks}


def run_judge(cfg: EvalConfig, llm: Any = None) -> dict[str, Any]:
    cfg.require()
    battery = load_battery(cfg.battery)
    uses = battery_uses(battery, cfg.judge.refusal)
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
    stats: dict[str, Any] = {**dict.fromkeys(JUDGE_COUNTS, 0), "modes_done": [], "merged": []}
    if todo:
        needs_llm = any(plan_calls(rows, uses, rubrics) for _, rows, _ in todo)
        backend = make_backend(cfg.judge, llm=llm) if needs_llm else None
        tracker = EvalTracker(cfg, "judge")
        with ResultCache(cfg.cache_path, "judge", validate=judge_value_problem) as cache:
            for mode, rows, ih in todo:
                out = cfg.out_dir(mode)
                if backend is None:
                    judged = [{**{c: r[c] for c in SAMPLE_ID_COLUMNS}, "judgements": {}} for r in rows]
                    st = dict.fromkeys(JUDGE_COUNTS, 0)
                else:
                    judged, st = judge_rows(rows, uses, rubrics, backend, cache, cfg.engine.chunk_size, cfg.progress,
                                            tracker=tracker, mode=mode)
                write_resolved(cfg, out, name="judge_config")
                if n == 1:
                    outputs.write_merged_jsonl(out, "judge", judged, ih, unparsed=st["unparsed"],
                                               cache_dropped=st["cache_dropped"])
                else:
                    outputs.write_shard(out, "judge", k, n, judged, ih)
                for key in JUDGE_COUNTS:
                    stats[key] += st[key]
                stats["modes_done"].append(mode)
        tracker.finish()
    for mode in cfg.modes if n > 1 else ():  # the last shard to finish merges
        out = cfg.out_dir(mode)
        merged = outputs.merged_hash_if_ready(out, "judge", ("generate",), n, extra)
        if merged and not outputs.stage_done(out, "judge", merged):
            rows = outputs.read_shards(out, "judge", n)
            bad = sum(not j["parsed"] for r in rows for j in r["judgements"].values())
            outputs.write_merged_jsonl(out, "judge", rows, merged, unparsed=bad)
            stats["merged"].append(mode)
    return stats
