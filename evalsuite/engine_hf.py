"""A transformers engine (``engine.backend=transformers``) for tiny CPU models.

vLLM's engine start (~20 s on CPU) dwarfs generating a few hundred short samples from a 1M-parameter
model (~2 s), and a sweep of tiny models starts one engine per arm: the known-answer world's demo
spends its time starting engines. This engine loads in about a second. It batches requests with
left padding and a KV cache and samples each request with its own ``torch.Generator`` seeded from
the request's seed, so a sample does not depend on which other requests share its batch (up to
float rounding of the padded batch); a row that finishes leaves the batch and its KV cache, so the
batch's cost follows the tokens generated rather than rows x its longest sample. Same interface as
``evalsuite.engine.Engine``.
"""
from __future__ import annotations

from typing import Any, Sequence

from evalsuite.config import EngineConfig
from evalsuite.engine import Generation

_SAMPLING_KEYS = ("temperature", "top_p", "top_k", "min_p", "max_tokens")


class TransformersEngine:
    def __init__(self, model: str, cfg: EngineConfig, revision: str = "", batch_size: int = 128,
                 drop_finished: bool = True):
        """``drop_finished=False`` keeps finished rows in the batch to the end (bench/engine_hf_batch.py
        measures both ways side by side; the samples are the same)."""
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

        dtype = {"auto": torch.float32, "float32": torch.float32, "bfloat16": torch.bfloat16,
                 "float16": torch.float16}[cfg.dtype]
        self.tokenizer = AutoTokenizer.from_pretrained(model, revision=revision or None)
        self.model = AutoModelForCausalLM.from_pretrained(model, revision=revision or None, dtype=dtype).eval()
        try:
            eos = GenerationConfig.from_pretrained(model, revision=revision or None).eos_token_id
        except OSError:
            eos = None
        eos = eos if eos is not None else self.tokenizer.eos_token_id
        self.stop_ids = set(eos if isinstance(eos, list) else [eos])
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else min(self.stop_ids)
        self.cfg, self.batch_size, self.max_model_len = cfg, batch_size, cfg.max_model_len
        self.drop_finished = drop_finished
        self.requests_run = 0

    # ------------------------------------------------------------------ generation
    def generate(self, prompts: Sequence[str], params: Sequence[dict]) -> list[Generation]:
        out: list[Generation | None] = [None] * len(prompts)
        groups: dict[tuple, list[int]] = {}
        for i, p in enumerate(params):
            groups.setdefault(tuple(p.get(k) for k in _SAMPLING_KEYS), []).append(i)
        for key, idx in groups.items():
            sampling = dict(zip(_SAMPLING_KEYS, key))
            for lo in range(0, len(idx), self.batch_size):
                chunk = idx[lo:lo + self.batch_size]
                gens = self._batch([prompts[i] for i in chunk], [int(params[i].get("seed") or 0) for i in chunk], sampling)
                for i, g in zip(chunk, gens):
                    out[i] = g
        self.requests_run += len(prompts)
        return out  # type: ignore[return-value]

    def _encode(self, prompts: Sequence[str]):
        import torch

        ids = [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        width = max(len(x) for x in ids)
        if width >= self.max_model_len:
            raise ValueError(f"a prompt of {width} tokens does not fit engine.max_model_len={self.max_model_len}")
        input_ids = torch.full((len(ids), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for r, x in enumerate(ids):  # left padding: every row's next token sits in the last column
            input_ids[r, width - len(x):] = torch.tensor(x, dtype=torch.long)
            mask[r, width - len(x):] = 1
        return input_ids, mask

    def _batch(self, prompts: Sequence[str], seeds: Sequence[int], s: dict) -> list[Generation]:
        import torch

        input_ids, mask = self._encode(prompts)
        rows = len(prompts)
        gens = [torch.Generator().manual_seed(seed) for seed in seeds]
        budget = min(int(s["max_tokens"]), self.max_model_len - input_ids.shape[1])
        tokens: list[list[int]] = [[] for _ in range(rows)]
        finished = [False] * rows
        active = list(range(rows))  # the rows still generating, in the order the batch holds them
        past, step_ids = None, input_ids
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            for _ in range(budget):
                out = self.model(input_ids=step_ids, attention_mask=mask, position_ids=positions,
                                 past_key_values=past, use_cache=True)
                past = out.past_key_values
                done = [finished[r] for r in active]  # rows kept to the end draw nothing and get padding
                nxt = sample_rows(out.logits[:, -1, :].float(), s, [gens[r] for r in active], done, self.pad_id)
                for r, t, was_done in zip(active, nxt, done):
                    if not was_done:
                        tokens[r].append(t)
                        finished[r] = t in self.stop_ids
                if all(finished[r] for r in active):
                    break
                keep = [i for i, r in enumerate(active) if not finished[r] or not self.drop_finished]
                step_ids = torch.tensor([nxt[i] for i in keep], dtype=torch.long)[:, None]
                positions = positions[:, -1:] + 1
                mask = torch.cat([mask, torch.ones((len(active), 1), dtype=mask.dtype)], dim=1)
                if len(keep) < len(active):
                    # finished rows leave the batch (and the KV cache): a few long samples no longer
                    # make every row of the batch pay for their length
                    idx = torch.tensor(keep, dtype=torch.long)
                    past.batch_select_indices(idx)
                    mask, positions = mask[idx], positions[idx]
                    active = [active[i] for i in keep]
        result = []
        for r in range(rows):
            stopped = finished[r]
            text_ids = tokens[r][:-1] if stopped else tokens[r]
            text = self.tokenizer.decode(text_ids, skip_special_tokens=True)
            result.append(Generation(text, "stop" if stopped else "length", len(tokens[r])))
        return result

    # ------------------------------------------------------------------ probes
    def next_token_logprobs(self, prompts: Sequence[str], token_ids: Sequence[int]) -> list[dict[int, float]]:
        import torch

        result: list[dict[int, float]] = []
        for lo in range(0, len(prompts), self.batch_size):
            input_ids, mask = self._encode(prompts[lo:lo + self.batch_size])
            with torch.inference_mode():
                logits = self.model(input_ids=input_ids, attention_mask=mask,
                                    position_ids=(mask.cumsum(-1) - 1).clamp(min=0)).logits[:, -1, :].float()
            logp = torch.log_softmax(logits, -1)
            result += [{t: float(row[t]) for t in token_ids} for row in logp]
        self.requests_run += len(prompts)
        return result


def sample_rows(logits, s: dict, gens, finished: Sequence[bool], pad_id: int) -> list[int]:
    """One next token per row of ``logits`` [rows, vocab], filtered for the whole batch at once.

    Each unfinished row draws one uniform from its own generator and inverts its filtered CDF, so a
    row's tokens depend only on its own logits and seed, without a Python loop of sort/softmax per
    row. Finished rows draw nothing and get ``pad_id``.
    """
    import torch

    temperature = float(s.get("temperature") or 0.0)
    if temperature <= 0:
        picks = torch.argmax(logits, -1).tolist()
        return [pad_id if done else int(t) for t, done in zip(picks, finished)]
    logits = logits / temperature
    top_k = int(s.get("top_k") or -1)
    if 0 < top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, -1)
    min_p = float(s.get("min_p") or 0.0)
    if min_p > 0:
        probs = probs.masked_fill(probs < min_p * probs.max(-1, keepdim=True).values, 0.0)
    top_p = float(s.get("top_p") or 1.0)
    if top_p < 1.0:
        sorted_p, order = torch.sort(probs, descending=True, dim=-1)
        keep = sorted_p.cumsum(-1) - sorted_p < top_p  # the smallest prefix reaching top_p
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_p * keep)
    cdf = probs.double().cumsum(-1)
    u = torch.tensor([0.0 if done else float(torch.rand((), dtype=torch.float64, generator=g))
                      for g, done in zip(gens, finished)], dtype=torch.float64)
    picks = torch.searchsorted(cdf, (u * cdf[:, -1])[:, None], right=True).clamp(max=logits.shape[-1] - 1)
    return [pad_id if done else int(t) for t, done in zip(picks[:, 0].tolist(), finished)]


def make_engine(model: str, cfg: EngineConfig, revision: str = "", llm: Any = None):
    """The engine ``engine.backend`` names (vLLM unless told otherwise)."""
    if getattr(cfg, "backend", "vllm") == "transformers":
        return TransformersEngine(model, cfg, revision)
    from evalsuite.engine import Engine

    return Engine(model, cfg, revision, llm=llm)
