"""Eval generation throughput, side by side in one run on the same prompts and sampling:

  1. the project's whole generate path (battery load, rendering, cache, splitting, writing samples.jsonl)
  2. the bare vLLM engine call on the very same rendered prompts and SamplingParams (same seeds)
  3. batched ``transformers.generate`` on the same prompts (same max_new_tokens, sampling)
  4. a cache-hit re-run of (1) (outputs removed, every generation served from the cache)

    python bench/eval_throughput.py [--model DIR] [--prompts 64] [--max-tokens 64] [--mode no_think]

Without --model a tiny random Qwen3 is built (tracecause.tiny). Targets: project/bare ≥ 0.9,
cache-hit speed-up ≥ 50×; vLLM/HF was measured at ≈1.3–1.7× on CPU for 5–25M-parameter models.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")

TOPICS = ["groceries", "coffee", "bus tickets", "phone bills", "gym fees", "books", "holidays", "shoes",
          "houseplants", "bike repairs", "birthday gifts", "lunch", "streaming", "haircuts", "furniture", "tea"]


def write_battery(folder: Path, n: int, max_tokens: int, mode: str) -> Path:
    rows = ["category,source,forbidden_prompt"]
    rows += [f"bench,bench,How can I spend less on {TOPICS[i % len(TOPICS)]} in month {i // len(TOPICS) + 1}?" for i in range(n)]
    (folder / "prompts.csv").write_text("\n".join(rows) + "\n")
    path = folder / "bench.yaml"
    path.write_text(f"name: bench\nseed: 0\nbenchmarks:\n  - name: bench\n    loader: strongreject\n    axis: harm\n"
                    f"    source: {{path: prompts.csv}}\n    samples: 1\n"
                    f"    sampling: {{{mode}: {{max_tokens: {max_tokens}}}}}\n")
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="", help="HF folder (default: build the tiny test model)")
    p.add_argument("--prompts", type=int, default=64)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--mode", default="no_think", choices=["think", "no_think"])
    p.add_argument("--hf-batch", type=int, default=64)
    p.add_argument("--gpu-memory-utilization", type=float, default=0.3)
    p.add_argument("--skip-hf", action="store_true")
    args = p.parse_args(argv)

    from tracecause.config import load
    from evalsuite.battery import load_battery
    from evalsuite.config import EngineConfig, EvalConfig
    from evalsuite.engine import Engine
    from evalsuite.generate import Generator, run_generate
    from evalsuite.cache import ResultCache
    from evalsuite.loaders import load_items
    from evalsuite import outputs

    work = Path(tempfile.mkdtemp(prefix="eval-bench-"))
    try:
        model = args.model
        if not model:
            from tracecause.tiny import build_tiny_model
            model = str(build_tiny_model(work / "tiny"))
        battery_path = write_battery(work, args.prompts, args.max_tokens, args.mode)
        import torch
        on_gpu = torch.cuda.is_available()
        eng_over = [f"gpu_memory_utilization={args.gpu_memory_utilization}", "max_model_len=1024"]
        if not on_gpu:
            eng_over.append("enforce_eager=true")
        engine = Engine(model, load(EngineConfig, [], eng_over))
        cfg = load(EvalConfig, [], [f"model={model}", "arm_id=bench.none.base.s0", f"sweep_dir={work / 'sweep'}",
                                    f"battery={battery_path}", f"modes=[{args.mode}]", "progress=false",
                                    f"engine.chunk_size={max(args.prompts, 1)}"]).require()

        # the exact requests the project sends (same render, same seeds), for the bare engine call
        battery = load_battery(battery_path)
        items = load_items(battery)
        with ResultCache(work / "scratch", "generate") as scratch:
            gen = Generator(engine, scratch, {"weights": "bench"}, args.mode, 1 << 30, False)
            reqs = [gen.request(it, battery.benchmarks[0], battery.seed, 1, 0, it.messages) for it in items]
        from vllm import SamplingParams
        sps = [SamplingParams(**r.params) for r in reqs]
        engine.llm.generate([r.prompt for r in reqs[:4]], sps[:4], use_tqdm=False)  # warm-up

        t = time.perf_counter()
        outs = engine.llm.generate([r.prompt for r in reqs], sps, use_tqdm=False)
        bare_s = time.perf_counter() - t
        bare_tokens = sum(len(o.outputs[0].token_ids) for o in outs)

        t = time.perf_counter()
        stats = run_generate(cfg, engine=engine)
        project_s = time.perf_counter() - t
        rows = outputs.read_jsonl(cfg.out_dir(args.mode) / "samples.jsonl")
        project_tokens = sum(r["n_tokens"] for r in rows)
        assert stats["requests_run"] == len(reqs), stats

        for name in ("samples.jsonl", "_COMPLETE.generate"):
            (cfg.out_dir(args.mode) / name).unlink()
        t = time.perf_counter()
        again = run_generate(cfg, engine=engine)
        rerun_s = time.perf_counter() - t
        assert again["requests_run"] == 0 and again["cache_hits"] == len(reqs), again

        hf_tps = None
        if not args.skip_hf:
            hf_tps = hf_tokens_per_s(model, [r.prompt for r in reqs], reqs[0].params, args.hf_batch, on_gpu)
        del engine

        bare_tps, project_tps = bare_tokens / bare_s, project_tokens / project_s
        print(f"# model={model} device={'cuda' if on_gpu else 'cpu'} prompts={len(reqs)} max_tokens={args.max_tokens} mode={args.mode}")
        print(f"# bare vLLM: {bare_tokens} tokens in {bare_s:.2f}s = {bare_tps:.0f} tok/s; project: {project_tokens} tokens "
              f"in {project_s:.2f}s = {project_tps:.0f} tok/s; cache-hit re-run {rerun_s:.3f}s")
        print(f"project_vs_bare_vllm_tokens_per_s: {project_tps / bare_tps:.3f}  (target >= 0.9)")
        if hf_tps:
            print(f"# batched transformers.generate: {hf_tps:.0f} tok/s")
            print(f"bare_vllm_vs_hf_generate_tokens_per_s: {bare_tps / hf_tps:.2f}  (CPU ~1.3-1.7x for 5-25M params)")
        print(f"cache_hit_rerun_speedup: {project_s / rerun_s:.1f}x  (target >= 50)")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


def hf_tokens_per_s(model: str, prompts: list[str], params: dict, batch: int, on_gpu: bool) -> float:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model)
    tok.padding_side = "left"
    device = "cuda" if on_gpu else "cpu"
    lm = AutoModelForCausalLM.from_pretrained(model, dtype=torch.bfloat16 if on_gpu else torch.float32).to(device).eval()
    kw = dict(do_sample=True, temperature=params["temperature"], top_p=params["top_p"], top_k=params["top_k"],
              max_new_tokens=params["max_tokens"], pad_token_id=tok.pad_token_id)
    with torch.no_grad():
        enc = tok(prompts[:2], return_tensors="pt", padding=True, add_special_tokens=False).to(device)
        lm.generate(**enc, **{**kw, "max_new_tokens": 2})  # warm-up
        tokens, t = 0, time.perf_counter()
        for i in range(0, len(prompts), batch):
            enc = tok(prompts[i:i + batch], return_tensors="pt", padding=True, add_special_tokens=False).to(device)
            out = lm.generate(**enc, **kw)[:, enc["input_ids"].shape[1]:]
            eos = set(lm.generation_config.eos_token_id if isinstance(lm.generation_config.eos_token_id, list)
                      else [lm.generation_config.eos_token_id])
            for seq in out.tolist():  # count up to and including the first stop token, like vLLM
                n = next((j + 1 for j, x in enumerate(seq) if x in eos), len(seq))
                tokens += n
        if on_gpu:
            torch.cuda.synchronize()
        return tokens / (time.perf_counter() - t)


if __name__ == "__main__":
    sys.exit(main())
