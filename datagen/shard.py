"""Generate one shard: its slice of pairs x every type, filtered, written atomically.

A shard's folder appears (with its completion marker) only when the whole slice is
done, and a re-run skips shards that are complete. Inside a shard, every finished
generator and judge request is journaled (fsynced) in ``shards/.shard-K-of-N.progress/``
as it lands, so a preempted or crashed shard resumes with the requests it finished;
the outputs are the same bytes as an undisturbed run (each request has its own seed).
A pair is kept only when every type produced a candidate that passes every filter,
so all arms later train on the same pairs.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

from tqdm import tqdm

from tracecause.io import atomic_write_json, atomic_dir, is_complete, read_json
from tracecause.journal import ResultJournal
from tracecause.seal import seal_files

from datagen.filters import FilterCounts, check, token_counter
from datagen.generators import Generation, Generator, build_generator, journaled_problem
from datagen.judge import judge_messages, judge_seed, parse_label
from datagen.plan import Plan, write_identity
from datagen.shard_seal import RECORDS_FILE, STATS_FILE, set_aside, shard_problem
from datagen.source import Pair, shard_slice


def request_seed(seed: int, pair_id: str, rtype: str) -> int:
    """Depends only on (seed, pair, type): outputs do not move with batching or sharding."""
    return int(hashlib.sha256(f"{seed}:{pair_id}:{rtype}".encode()).hexdigest()[:8], 16)


def progress_dir(plan: Plan, shard: int) -> Path:
    """Where a shard journals its finished requests until the shard is complete."""
    final = plan.shard_dir(shard)
    return final.with_name(f".{final.name}.progress")


def _request_key(kind: str, *parts: str) -> str:
    return kind + ":" + hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]


def journaled_generate(gen: Generator, journal: ResultJournal, keys: list[str], prompts: list, sampling,
                       seeds: list[int]) -> list[list[Generation]]:
    """Outputs for every prompt: journaled ones read back, the rest generated and journaled as they land."""
    todo = [j for j, k in enumerate(keys) if k not in journal]
    if todo:
        def keep(i: int, gens: list[Generation]) -> None:
            journal.put_many([(keys[todo[i]], [[str(g), g.finish_reason] for g in gens])])

        gen.generate([prompts[j] for j in todo], sampling, [seeds[j] for j in todo], on_result=keep)
    return [[Generation(text, reason) for text, reason in journal.get(k)] for k in keys]


def empty_stats(plan: Plan, shard: int, pairs: int) -> dict:
    return {"shard": shard, "num_shards": plan.num_shards, "pairs_in": pairs, "pairs_kept": 0,
            "pairs_dropped_cross_type": 0, "http_retries": 0,
            "types": {t.name: {"candidates": 0, "pairs_with_reasoning": 0, "judge": {"judged": 0, "agreed": 0},
                               **FilterCounts().to_dict()} for t in plan.types}}


class ShardRunner:
    """Holds the (expensive) generators so that several shards reuse one engine."""

    def __init__(self, plan: Plan, generator: Generator | None = None, judge: Generator | None = None,
                 progress: bool = True):
        self.plan, self.progress = plan, progress
        self.cfg = plan.cfg
        self.count_tokens = token_counter(self.cfg.filters, self.cfg.generator.model, self.cfg.generator.revision)
        self._generator, self._judge = generator, judge
        self._journal: ResultJournal | None = None  # the running shard's finished requests

    @property
    def generator(self) -> Generator:
        if self._generator is None:
            self._generator = build_generator(self.cfg.generator)
        return self._generator

    @property
    def judge(self) -> Generator:
        if self._judge is None:
            j, g = self.cfg.filters.judge.generator, self.cfg.generator
            same = j.backend == g.backend == "vllm" and j.model == g.model
            self._judge = self.generator if same else build_generator(j)
        return self._judge

    def run(self, shard: int) -> dict:
        plan = self.plan
        if not 0 <= shard < plan.num_shards:
            raise ValueError(f"--shard {shard} is outside 0..{plan.num_shards - 1} (--num-shards {plan.num_shards})")
        final = plan.shard_dir(shard)
        if is_complete(final):
            problem = shard_problem(final, len(plan.types))
            if not problem:
                print(f"[datagen] shard {shard}/{plan.num_shards} already complete: {final}", file=sys.stderr)
                return read_json(final / STATS_FILE)
            set_aside(final, problem, "generating it again")
        write_identity(plan)
        pairs = shard_slice(plan.source.pairs, shard, plan.num_shards)
        stats = empty_stats(plan, shard, len(pairs))
        self.generator  # load the engine before the progress bar starts counting
        with ResultJournal(progress_dir(plan, shard), validate=journaled_problem) as journal:
            self._journal = journal
            if len(journal):
                print(f"[datagen] shard {shard}: resuming with {len(journal)} finished request(s)", file=sys.stderr)
            stats["journal_dropped"] = len(journal.rejected)  # invalid journaled replies, asked again
            if journal.rejected:
                print(f"[datagen] shard {shard}: dropped {len(journal.rejected)} journaled request(s) that failed "
                      f"validation (e.g. {next(iter(journal.rejected.values()))}); asking again", file=sys.stderr)
            self._write_shard(shard, final, pairs, stats)
        shutil.rmtree(progress_dir(plan, shard), ignore_errors=True)  # the shard is complete
        return stats

    def _write_shard(self, shard: int, final: Path, pairs: list[Pair], stats: dict) -> None:
        plan = self.plan
        info = {"pairs_in": len(pairs)}  # sealed at the end of the body: atomic_dir writes it into the marker
        rows_written = 0
        with atomic_dir(final, info=info) as tmp:
            with open(tmp / RECORDS_FILE, "w", encoding="utf-8") as out, \
                    tqdm(total=len(pairs), desc=f"datagen shard {shard}/{plan.num_shards}", unit="pair",
                         disable=not self.progress, file=sys.stderr) as bar:
                step = self.cfg.generator.batch_size
                for lo in range(0, len(pairs), step):
                    batch = pairs[lo:lo + step]
                    for row in self._batch(batch, stats):
                        out.write(json.dumps(row, ensure_ascii=False) + "\n")
                        rows_written += 1
                    out.flush()
                    bar.update(len(batch))
                os.fsync(out.fileno())  # on disk before the completion marker names it
            stats["http_retries"] = getattr(self._generator, "retries", 0)
            atomic_write_json(tmp / STATS_FILE, stats)
            info.update(pairs_kept=stats["pairs_kept"], **seal_files(tmp, {RECORDS_FILE: rows_written, STATS_FILE: None}))
            if pairs and not stats["pairs_kept"]:
                print(f"[datagen] WARNING: shard {shard} kept 0 of {len(pairs)} pairs; "
                      f"per-filter counts in {final / STATS_FILE}", file=sys.stderr)

    def _batch(self, batch: list[Pair], stats: dict) -> list[dict]:
        cfg, types = self.cfg, self.plan.types
        prompts, seeds, keys = [], [], []
        for pair in batch:
            for t in types:
                prompts.append(t.messages(pair.question, pair.answer))
                seeds.append(request_seed(cfg.generator.sampling.seed, pair.id, t.name))
                keys.append(_request_key("generate", pair.id, t.name, pair.question, pair.answer))
        outputs = journaled_generate(self.generator, self._journal, keys, prompts, cfg.generator.sampling, seeds)
        if len(outputs) != len(prompts):
            raise RuntimeError(f"generator returned {len(outputs)} outputs for {len(prompts)} prompts")
        # survivors[(pair index, type)] = [(candidate index, cleaned text)]
        survivors: dict[tuple[int, str], list[tuple[int, str]]] = {}
        for j, gens in enumerate(outputs):
            i, t = divmod(j, len(types))
            pair, tname = batch[i], types[t].name
            tstats = stats["types"][tname]
            counts = FilterCounts(tstats["filters"], tstats["think_tags_stripped"])
            for c, gen in enumerate(gens):
                tstats["candidates"] += 1
                text, _ = check(str(gen), gen.finish_reason, pair.answer, cfg.filters, self.count_tokens, counts)
                if text is not None:
                    survivors.setdefault((i, tname), []).append((c, text))
            tstats["think_tags_stripped"] = counts.think_tags_stripped
        if cfg.filters.judge.enabled:
            survivors = self._type_check(batch, survivors, stats)
        rows = []
        for i, pair in enumerate(batch):
            chosen = {t.name: survivors[(i, t.name)][0] for t in types if survivors.get((i, t.name))}
            for name in chosen:
                stats["types"][name]["pairs_with_reasoning"] += 1
            if len(chosen) < len(types):
                stats["pairs_dropped_cross_type"] += bool(chosen)
                continue
            stats["pairs_kept"] += 1
            for t in types:
                c, text = chosen[t.name]
                rows.append({"id": pair.id, "row": pair.row, "type": t.name, "question": pair.question,
                             "answer": pair.answer, "reasoning": text, "candidate": c})
        return rows

    def _type_check(self, batch, survivors, stats):
        jcfg = self.cfg.filters.judge.generator
        keys = [(key, c, text) for key, cands in survivors.items() for c, text in cands]
        prompts = [judge_messages(text, self.plan.types) for _, _, text in keys]
        seeds = [judge_seed(jcfg.sampling.seed, f"{batch[k[0]].id}:{k[1]}:{c}") for k, c, _ in keys]
        jkeys = [_request_key("judge", batch[k[0]].id, k[1], str(c), text) for k, c, text in keys]
        outputs = journaled_generate(self.judge, self._journal, jkeys, prompts, jcfg.sampling, seeds)
        names = [t.name for t in self.plan.types]
        kept: dict = {}
        for (key, c, text), gens in zip(keys, outputs):
            jstats = stats["types"][key[1]]["judge"]
            jstats["judged"] += 1
            if parse_label(str(gens[0]), names) == key[1]:
                jstats["agreed"] += 1
                kept.setdefault(key, []).append((c, text))
        return kept
