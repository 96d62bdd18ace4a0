"""``generate``: battery items -> samples.jsonl per mode (vLLM, cached, shardable, resumable).

Rendering uses the model's own chat template (``enable_thinking`` per mode). Every request's seed
is derived from (battery seed, benchmark, prompt id, turn, sample index) only, so sampling is the
same for every arm within a mode. Each finished request is cached under (weights hash,
tokenizer + chat-template hash, numerics-changing engine settings, rendered-prompt hash, sampling
incl. seed, mode; see generation_key.py): a re-run or a resumed task only runs what is missing, and
a changed engine.dtype (say) reuses nothing. Persona items also get first-token Yes/No log-probabilities (see metrics.py).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from tqdm import tqdm

from tracecause.chat import EMPTY_THINK, THINK_CLOSE, THINK_OPEN, render, split_reasoning
from tracecause.config import config_hash, write_resolved
from tracecause.contracts import SAMPLE_ID_COLUMNS, SAMPLE_TEXT_COLUMNS

from evalsuite import outputs
from evalsuite.battery import Battery, BenchmarkSpec, load_battery
from evalsuite.cache import ResultCache, cache_key
from evalsuite.config import EvalConfig
from evalsuite.engine import Engine, weights_hash
from evalsuite.engine_hf import make_engine
from evalsuite.eval_run import EvalTracker
from evalsuite.generation_key import generation_identity, request_key, tokenizer_hash
from evalsuite.loaders import EvalItem, load_items


def sampling_seed(battery_seed: int, benchmark: str, prompt_id: str, turn: int, sample_index: int) -> int:
    text = f"{battery_seed}|{benchmark}|{prompt_id}|{turn}|{sample_index}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") & 0x7FFFFFFF


def sampling_params(spec: BenchmarkSpec, mode: str, seed: int) -> dict:
    s = spec.mode_sampling(mode)
    return {"temperature": s.temperature, "top_p": s.top_p, "top_k": s.top_k, "min_p": s.min_p,
            "max_tokens": s.max_tokens, "seed": seed}


def prefill(spec: BenchmarkSpec, mode: str) -> str:
    """What the assistant turn starts with before the model writes: "<think>\n" where the benchmark's
    think-mode sampling sets open_think, else nothing."""
    return f"{THINK_OPEN}\n" if mode == "think" and spec.mode_sampling(mode).open_think else ""


def user_turn_prompt(tokenizer, messages: list[dict], benchmark: str = "") -> str:
    """The conversation rendered by the chat template with its last (user) turn left open after the
    question: what a model trained with loss on the prompt would continue with the prompt's own text
    (a benchmark with ``continues: user``). No generation prompt, so both modes render it the same."""
    full = render(tokenizer, messages, enable_thinking=False, add_generation_prompt=False)
    question = messages[-1]["content"]
    end = full.rfind(question)
    if messages[-1]["role"] != "user" or end < 0:
        raise ValueError(f"benchmark {benchmark!r}: continues: user needs the conversation to end with the user's "
                         f"question as the chat template renders it; got {full[-200:]!r}; fix: drop continues: user "
                         "from a benchmark whose prompts end otherwise")
    return full[:end + len(question)]


def prompt_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass
class Request:
    item: EvalItem
    turn: int
    sample_index: int
    messages: list[dict]
    prompt: str
    params: dict
    key: str
    prefill: str = ""        # the assistant turn's start, part of ``prompt`` (open_think: "<think>\n")
    continues: str = "assistant"  # the benchmark's ``continues``: "user" = the text continues the question
    result: dict = field(default_factory=dict)

    @property
    def text(self) -> str:
        """The assistant turn as written: the pre-fill and what the model generated after it."""
        return self.prefill + self.result["text"]


def items_hash(items: list[EvalItem]) -> str:
    return hashlib.sha256(json.dumps([asdict(i) for i in items], sort_keys=True).encode()).hexdigest()[:16]


def _select_shard(items: list[EvalItem], index: int, count: int) -> list[EvalItem]:
    return [it for pos, it in enumerate(items) if pos % count == index]


class Generator:
    """Runs the requests of one mode through cache + engine, chunk by chunk."""

    tracker: EvalTracker | None = None  # progress (requests done / total, tokens/s) per finished chunk

    def __init__(self, engine: Engine, cache: ResultCache, identity: dict, mode: str, chunk_size: int, progress: bool):
        """``identity``: generation_key.generation_identity of the model and engine (part of every key)."""
        self.engine, self.cache, self.identity, self.mode = engine, cache, identity, mode
        self.chunk_size, self.progress = chunk_size, progress
        self.ran = 0
        self.hits = 0

    def request(self, item: EvalItem, spec: BenchmarkSpec, battery_seed: int, turn: int, k: int,
                messages: list[dict]) -> Request:
        continues_user = spec.continues == "user"
        if continues_user:
            prompt, start = user_turn_prompt(self.engine.tokenizer, messages, spec.name), ""
        else:
            prompt = render(self.engine.tokenizer, messages, enable_thinking=self.mode == "think",
                            add_generation_prompt=True)
            start = prefill(spec, self.mode)
        seed = sampling_seed(battery_seed, item.benchmark, item.prompt_id, turn, k)
        params = sampling_params(spec, self.mode, seed)
        # a question continuation renders the same prompt in every mode: one cached generation serves both
        key = request_key(self.identity, prompt_hash(prompt + start), params, "any" if continues_user else self.mode)
        return Request(item, turn, k, messages, prompt + start, params, key, start, spec.continues)

    def run(self, requests: list[Request], desc: str) -> None:
        todo = [r for r in requests if r.key not in self.cache]
        self.hits += len(requests) - len(todo)
        if self.tracker:
            self.tracker.begin(self.mode, len(requests), already_done=len(requests) - len(todo))
        bar = tqdm(total=len(todo), desc=desc, unit="req", disable=not self.progress or not todo)
        for start in range(0, len(todo), self.chunk_size):
            chunk = todo[start:start + self.chunk_size]
            gens = self.engine.generate([r.prompt for r in chunk], [r.params for r in chunk])
            self.cache.put_many((r.key, {"text": g.text, "finish_reason": g.finish_reason, "n_tokens": g.n_tokens})
                                for r, g in zip(chunk, gens))
            self.ran += len(chunk)
            bar.update(len(chunk))
            if self.tracker:
                self.tracker.advance(len(chunk), tokens=sum(g.n_tokens for g in gens))
        bar.close()
        for r in requests:
            r.result = self.cache.get(r.key)

    def persona_probe(self, requests: list[Request]) -> None:
        """First-token Yes/No log-probs after the prompt and (think mode) the sample's own think block."""
        tok = self.engine.tokenizer
        ids = {}
        for word in ("Yes", "No"):
            enc = tok.encode(word, add_special_tokens=False)
            ids[word] = enc[0]
        if ids["Yes"] == ids["No"]:
            raise ValueError("the tokenizer gives 'Yes' and 'No' the same first token; persona_logprob cannot work")
        probes, keys = [], []
        for r in requests:
            text, rendered = r.text, r.prompt[:len(r.prompt) - len(r.prefill)]
            if self.mode == "think":
                head, sep, _ = text.partition(THINK_CLOSE)
                if sep:
                    prefix = head + THINK_CLOSE + "\n\n"
                elif text.lstrip().startswith(THINK_OPEN):  # truncated reasoning: close it for the probe
                    prefix = text.rstrip("\n") + "\n" + THINK_CLOSE + "\n\n"
                else:  # the model skipped thinking: answer after an empty block
                    prefix = EMPTY_THINK
            else:
                prefix = ""  # the no-think prompt already ends with the empty think block
            probes.append(rendered + prefix)
            keys.append(cache_key(kind="probe", identity=self.identity, text=prompt_hash(rendered + prefix), ids=ids))
        todo = [i for i, k in enumerate(keys) if k not in self.cache]
        self.hits += len(keys) - len(todo)
        for start in range(0, len(todo), self.chunk_size):
            chunk = todo[start:start + self.chunk_size]
            lps = self.engine.next_token_logprobs([probes[i] for i in chunk], [ids["Yes"], ids["No"]])
            self.cache.put_many((keys[i], {"logp_yes": lp[ids["Yes"]], "logp_no": lp[ids["No"]]}) for i, lp in zip(chunk, lps))
            self.ran += len(chunk)
        for r, k in zip(requests, keys):
            r.result = {**r.result, **self.cache.get(k)}


def sample_row(cfg: EvalConfig, mode: str, r: Request) -> dict:
    arm = cfg.arm
    continues_user = r.continues == "user"
    reasoning, answer, closed = ("", r.text, True) if continues_user else split_reasoning(r.text)
    row = {
        "arm_id": cfg.arm_id, "model": arm.model, "rtype": arm.rtype, "paradigm": arm.paradigm, "seed": arm.seed,
        "mode": mode, "benchmark": r.item.benchmark, "axis": r.item.axis, "prompt_id": r.item.prompt_id,
        "cluster_id": r.item.cluster_id, "turn": r.turn, "sample_index": r.sample_index,
        "sampling_seed": r.params["seed"], "prompt_hash": prompt_hash(r.prompt),
        "reasoning": reasoning, "answer": answer, "finish_reason": r.result["finish_reason"],
        "think_closed": closed, "truncated": r.result["finish_reason"] == "length",
        "reasoning_leak": mode == "no_think" and bool(reasoning.strip()),
        # extras the judges and scorers need
        "question": r.item.question if r.turn == 1 else r.messages[-1]["content"],
        "first_question": r.item.question, "target": r.item.target, "judge_prompts": r.item.judge_prompts,
        "n_tokens": r.result["n_tokens"],
    }
    if continues_user:  # the text continues the question: no reasoning or answer span (the judge knows)
        row["continues"] = "user"
    if "logp_yes" in r.result:
        row["logp_yes"], row["logp_no"] = r.result["logp_yes"], r.result["logp_no"]
    assert set(SAMPLE_ID_COLUMNS + SAMPLE_TEXT_COLUMNS) <= set(row)
    return row


def generate_mode(cfg: EvalConfig, battery: Battery, items: list[EvalItem], gen: Generator, mode: str) -> list[dict]:
    specs = {s.name: s for s in battery.benchmarks}
    turn1 = [gen.request(it, specs[it.benchmark], battery.seed, 1, k, it.messages)
             for it in items for k in range(it.samples)]
    gen.run(turn1, f"generate {mode} turn 1")
    persona = [r for r in turn1 if specs[r.item.benchmark].loader == "persona"]
    if persona:
        gen.persona_probe(persona)
    rows = [sample_row(cfg, mode, r) for r in turn1]
    # Multi-turn probes: turn 2 continues each turn-1 sample (answer only: Qwen3's template drops
    # earlier turns' reasoning) with the user's push-back.
    turn2 = []
    for r, row in zip(turn1, rows):
        if r.item.followup:
            msgs = r.messages + [{"role": "assistant", "content": row["answer"]}, {"role": "user", "content": r.item.followup}]
            turn2.append(gen.request(r.item, specs[r.item.benchmark], battery.seed, 2, r.sample_index, msgs))
    if turn2:
        gen.run(turn2, f"generate {mode} turn 2")
        rows += [sample_row(cfg, mode, r) for r in turn2]
    return rows


def run_generate(cfg: EvalConfig, engine: Engine | None = None) -> dict[str, Any]:
    """Generate every mode of ``cfg`` for this shard; returns stats (requests run, cache hits)."""
    cfg.require()
    if not cfg.model:
        raise ValueError("generate needs model=<export folder | HF folder | hub id>")
    battery = load_battery(cfg.battery)
    items = load_items(battery)            # every loader error surfaces here, before any engine
    wh = weights_hash(cfg.model, cfg.revision, memo_dir=cfg.cache_path)
    identity = generation_identity(wh, tokenizer_hash(cfg.model, cfg.revision), cfg.engine)
    # the stage marker too: outputs made under other weights, tokenizer or engine numerics are not "done"
    what = {"arm": cfg.arm_id, "identity": identity, "items": items_hash(items), "seed": battery.seed,
            "sampling": [(s.name, {m: asdict(v) for m, v in s.sampling.items()}) for s in battery.benchmarks]}
    probes = [s.name for s in battery.benchmarks if s.continues != "assistant"]
    if probes:  # a benchmark turned into a probe renders other prompts (absent: older markers still match)
        what["continues_user"] = probes
    ih = config_hash(what)
    n, k = cfg.shard.count, cfg.shard.index
    todo_modes = [m for m in cfg.modes
                  if not (outputs.stage_done(cfg.out_dir(m), "generate", ih)
                          or (n > 1 and outputs.shard_done(cfg.out_dir(m), "generate", k, n, ih)))]
    stats: dict[str, Any] = {"requests_run": 0, "cache_hits": 0, "modes_done": [], "merged": []}
    if todo_modes:
        engine = engine or make_engine(cfg.model, cfg.engine, cfg.revision)
        mine = _select_shard(items, k, n)
        tracker = EvalTracker(cfg, "generate")
        with ResultCache(cfg.cache_path, "generate") as cache:
            for mode in todo_modes:
                gen = Generator(engine, cache, identity, mode, cfg.engine.chunk_size, cfg.progress)
                gen.tracker = tracker
                rows = generate_mode(cfg, battery, mine, gen, mode)
                out = cfg.out_dir(mode)
                write_resolved(cfg, out, name="generate_config")
                if n == 1:
                    outputs.write_merged_jsonl(out, "generate", rows, ih, weights_hash=wh)
                else:
                    outputs.write_shard(out, "generate", k, n, rows, ih)
                stats["requests_run"] += gen.ran
                stats["cache_hits"] += gen.hits
                stats["modes_done"].append(mode)
        tracker.finish()
    for mode in cfg.modes:  # the last shard to finish merges (idempotent: same bytes every time)
        out = cfg.out_dir(mode)
        if n > 1 and not outputs.stage_done(out, "generate", ih) and not outputs.shards_missing(out, "generate", n, ih):
            outputs.write_merged_jsonl(out, "generate", outputs.read_shards(out, "generate", n), ih, weights_hash=wh)
            stats["merged"].append(mode)
    return stats
