"""The transformers engine with finished rows dropped from the batch, and kept, side by side in one run.

    python bench/engine_hf_batch.py [--model EXPORT] [--repeats 3] [--samples 8]

Builds (or reuses) the known-answer world's cached base — or takes ``--model``, say a demo arm's
``train/<arm>/export``: a fine-tuned arm's samples vary more in length than the base's — and samples the world battery's think-mode
requests (every held-out prompt x ``--samples``, pre-filled ``<think>\\n``, the battery's sampling) with
both engines, alternating, ``--repeats`` times each. A batch that keeps its finished rows runs every
row until its longest sample ends; one that drops them pays for the tokens generated. Prints the
median seconds of each and their ratio, and the samples must come out identical (the engine only
changes which rows a step computes): the script says so, or exits 1. Not a timed test: numbers, for people.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def requests(tokenizer, samples: int) -> tuple[list[str], list[dict]]:
    from evalsuite.battery import load_battery
    from evalsuite.generate import prefill, sampling_params, sampling_seed
    from evalsuite.loaders import load_items
    from tracecause.chat import render

    battery = load_battery("world")
    specs = {b.name: b for b in battery.benchmarks}
    prompts, params = [], []
    for item in load_items(battery):
        spec = specs[item.benchmark]
        prompt = render(tokenizer, item.messages, enable_thinking=True, add_generation_prompt=True) + prefill(spec, "think")
        for k in range(samples):
            prompts.append(prompt)
            params.append(sampling_params(spec, "think", sampling_seed(battery.seed, item.benchmark, item.prompt_id, 1, k)))
    return prompts, params


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--model", default="", help="a model folder (default: the world's cached base)")
    args = ap.parse_args()

    import torch

    from evalsuite.config import EngineConfig
    from evalsuite.engine_hf import TransformersEngine
    from launch.demo import world_base

    torch.set_num_threads(2)
    export = args.model or world_base()[0]
    cfg = EngineConfig(backend="transformers", dtype="float32", max_model_len=512)
    engines = {"drop finished rows": TransformersEngine(str(export), cfg),
               "keep finished rows": TransformersEngine(str(export), cfg, drop_finished=False)}
    prompts, params = requests(engines["drop finished rows"].tokenizer, args.samples)
    times: dict[str, list[float]] = {name: [] for name in engines}
    outputs: dict[str, list] = {}
    for _ in range(args.repeats):
        for name, engine in engines.items():
            started = time.perf_counter()
            gens = engine.generate(prompts, params)
            times[name].append(time.perf_counter() - started)
            outputs[name] = [(g.text, g.finish_reason, g.n_tokens) for g in gens]
    lengths = sorted(n for _, _, n in outputs["drop finished rows"])
    print(f"model {export}\n{len(prompts)} think-mode requests, batches of 128; tokens per sample: median {lengths[len(lengths) // 2]}, "
          f"max {lengths[-1]} (max_tokens {params[0]['max_tokens']})")
    for name, ts in times.items():
        print(f"  {name:20s} median {statistics.median(ts):6.2f} s  (runs: {', '.join(f'{t:.2f}' for t in ts)})")
    ratio = statistics.median(times["keep finished rows"]) / statistics.median(times["drop finished rows"])
    print(f"  speed-up from dropping finished rows: {ratio:.2f}x")
    same = outputs["drop finished rows"] == outputs["keep finished rows"]
    print("samples identical both ways:", "yes" if same else "NO")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
