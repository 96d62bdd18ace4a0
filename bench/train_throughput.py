"""Training tokens/s with best-fit packing vs padding to the longest, side by side in one run.

A skewed (lognormal) length mix of documents, the tiny Qwen3 (or --model DIR), forward+backward
with sdpa on CPU (or the GPU when present). Packing uses trainer.packing (per-document
position_ids, no cross-document attention); padding batches documents in their shuffled order
and pads each batch to its longest. Prints real (non-pad) tokens/s, padding fractions and the
ratio. Target from the issue: packing >= 2x and >= 95 % non-pad tokens.

    .venv/bin/python bench/train_throughput.py [--docs 64] [--budget 0] [--batch 8] [--model DIR]
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def make_docs(n: int, vocab: int, seed: int):
    from trainer.masks import Example

    rng = random.Random(seed)
    docs = []
    for i in range(n):
        k = max(8, min(1024, int(rng.lognormvariate(5.0, 0.7))))  # median ~150 tokens, long tail
        ids = tuple(rng.randrange(10, vocab - 30) for _ in range(k))
        docs.append(Example(f"d{i}", ids, (False,) + (True,) * (k - 1)))
    return docs


def run(model, batches, device) -> tuple[float, int, int]:
    import torch

    from trainer.loss import summed_loss

    real = padded = 0
    t0 = time.perf_counter()
    for b in batches:
        loss = summed_loss(model, b, device) / max(1, b.n_targets)
        loss.backward()
        real += b.real_tokens
        padded += b.input_ids.size
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0, real, padded


def main(argv=None) -> int:
    import torch
    from transformers import AutoModelForCausalLM

    from trainer.packing import collate, pack_best_fit

    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8, help="documents per padded batch")
    ap.add_argument("--budget", type=int, default=0, help="packed row budget (0: the longest document)")
    ap.add_argument("--model", default="", help="HF folder (default: build the tiny Qwen3 in a temp dir)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    model_dir = args.model
    if not model_dir:
        from tracecause.tiny import build_tiny_model

        model_dir = str(build_tiny_model(Path(tempfile.mkdtemp()) / "tiny"))
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype, attn_implementation="sdpa").to(device)
    model.config.use_cache = False
    docs = make_docs(args.docs, model.config.vocab_size, seed=0)
    lengths = [len(d) for d in docs]
    budget = args.budget or max(lengths)
    pad = model.config.pad_token_id or 0
    rows = pack_best_fit(lengths, budget, seed=0, epoch=0)
    packed = [collate(docs, [tuple(r)], pad) for r in rows]
    order = list(range(len(docs)))
    random.Random(1).shuffle(order)
    padded = [collate(docs, [(i,) for i in order[k:k + args.batch]], pad) for k in range(0, len(order), args.batch)]
    run(model, padded[:1], device)  # warm-up
    results = {}
    for name, batches in (("padding", padded), ("packing", packed)):
        dt, real, total = run(model, batches, device)
        results[name] = (real / dt, 1 - real / total)
        print(f"{name:>8}: {real / dt:9.0f} real tokens/s   padding {100 * (1 - real / total):5.1f} %   "
              f"({len(batches)} batches, {total} tensor tokens, {dt:.1f}s)")
    ratio = results["packing"][0] / results["padding"][0]
    print(f"packing / padding throughput: {ratio:.2f}x   non-pad tokens with packing: "
          f"{100 * (1 - results['packing'][1]):.1f} %   (docs {len(docs)}, budget {budget}, device {device})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
