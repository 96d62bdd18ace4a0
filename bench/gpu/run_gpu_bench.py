"""One prepared GPU benchmark (issue 13). STATUS: NOT YET RUN ON A GPU — written and smoke-tested
on CPU only (tests/test_gpu_bench_smoke.py runs ``--cpu-smoke``); bench/RESULTS.md says the GPU
figures are pending until this has run.

On one NVIDIA GPU, for randomly initialised models with the exact shapes of Qwen3-1.7B and
Qwen3-4B (configs/models/, no hub weights needed for speed) it measures and writes:
  1. training tokens/s and MFU (bf16 dense peak of this GPU from trainer/flops.py): the trainer's
     own pieces — best-fit packed rows flattened into one row per micro-step, per-document
     attention (flash-attention 2 if installed, else flex-attention with a block document mask,
     else sdpa with a block-diagonal mask), the chunked loss, activation checkpointing, DeepSpeed
     ZeRO-3 when importable (else torch AdamW, recorded);
  2. peak GPU memory (max_memory_allocated) vs the planner's prediction (tracecause/memory.py);
  3. generation tokens/s: vLLM (where importable) vs batched ``transformers.generate``.
Every sub-measurement is guarded (a failure is recorded with its reason and the rest goes on),
has a share of a global time budget, and bench/RESULTS.md is rewritten after each one, so a
killed run still leaves its partial results.

    python bench/gpu/run_gpu_bench.py [--budget-s 540] [--models qwen3-1.7b qwen3-4b]
    python bench/gpu/run_gpu_bench.py --cpu-smoke --results /tmp/R.md   # the same code, tiny, on CPU

Wheels carried in bench/gpu/wheels/*.whl (e.g. deepspeed built with DS_BUILD_OPS=0, flash-attn,
vllm) are installed first with ``pip --no-index``; the device machine has no network.
"""
from __future__ import annotations

import argparse
import datetime
import glob
import importlib.metadata
import json
import os
import platform
import random
import subprocess
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
DEFAULT_RESULTS = ROOT / "bench" / "RESULTS.md"
GiB = 2 ** 30
CPU_SECTION = "## CPU figures"
LIBS = ("torch", "transformers", "deepspeed", "flash-attn", "vllm", "liger-kernel", "triton")


class Bench:
    """Results so far, written to RESULTS.md after every measurement."""

    def __init__(self, results: Path, deadline: float, smoke: bool):
        self.results, self.deadline, self.smoke = results, deadline, smoke
        old = results.read_text(encoding="utf-8") if results.is_file() else ""
        self.kept = old[old.index(CPU_SECTION):] if CPU_SECTION in old else ""  # bench/loss_memory.py's figures
        self.env: dict = {}
        self.rows: list[dict] = []
        self.notes: list[str] = []

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def guarded(self, what: str, fn, *args, **kw):
        if self.left() < 20:
            self.notes.append(f"{what}: not run, the time budget was spent")
            self.write()
            return None
        t0 = time.monotonic()
        try:
            out = fn(*args, **kw)
        except Exception as err:  # noqa: BLE001 — a benchmark records failures and goes on
            self.notes.append(f"{what}: FAILED after {time.monotonic() - t0:.0f}s: {type(err).__name__}: "
                              f"{str(err).splitlines()[0][:300] if str(err) else ''}")
            traceback.print_exc()
            out = None
        self.write()
        return out

    def write(self) -> None:
        from tracecause.io import atomic_write_text

        atomic_write_text(self.results, render(self) + ("\n" + self.kept if self.kept else ""))


def render(b: Bench) -> str:
    e = b.env
    lines = ["# Benchmark results", ""]
    if b.smoke:
        lines += ["CPU SMOKE RUN of bench/gpu/run_gpu_bench.py (tiny model): checks the script, not a measurement.", ""]
    lines += [f"GPU figures measured by `bench/gpu/run_gpu_bench.py` on {e.get('date', '?')}.", "",
              "## Machine", ""]
    for key in ("gpu", "gpu_count", "driver", "cuda", "python", "libraries", "peak_bf16_tflops"):
        lines.append(f"- {key}: {e.get(key, '?')}")
    train = [r for r in b.rows if r["kind"] == "train"]
    if train:
        lines += ["", "## Training (one GPU, bf16, packed rows flattened per micro-step, chunked loss, "
                  "activation checkpointing)", "",
                  "| model | attention | optimizer | row tokens | tokens/s | MFU | peak GiB | planner GiB | planner/measured |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in train:
            mfu = "n/a" if r.get("mfu") is None else f"{100 * r['mfu']:.1f} %"
            ratio = r["planner_bytes"] / r["peak_bytes"] if r.get("peak_bytes") else float("nan")
            lines.append(f"| {r['model']} | {r['attention']} | {r['optimizer']} | {r['row_tokens']} | "
                         f"{r['tokens_per_s']:,.0f} | {mfu} | {r['peak_bytes'] / GiB:.1f} | "
                         f"{r['planner_bytes'] / GiB:.1f} | {ratio:.2f} |")
        lines += ["", "Planner terms (GiB): " + "; ".join(f"{r['model']}: {r['planner_terms']}" for r in train)]
        best = [r for r in train if r.get("mfu") and r["optimizer"].startswith("DeepSpeed") and not b.smoke]
        if best:  # launch/cost.py reads this line for GPU-hour estimates
            lines += ["", f"planning-mfu: train={min(r['mfu'] for r in best):.2f}"]
    gen = [r for r in b.rows if r["kind"] == "generate"]
    if gen:
        lines += ["", "## Generation", "", "| model | engine | prompts | new tokens each | tokens/s |", "|---|---|---|---|---|"]
        lines += [f"| {r['model']} | {r['engine']} | {r['prompts']} | {r['new_tokens']} | {r['tokens_per_s']:,.0f} |"
                  for r in gen]
        for model in sorted({r["model"] for r in gen}):
            by = {r["engine"]: r["tokens_per_s"] for r in gen if r["model"] == model}
            if "vllm" in by and "transformers.generate" in by:
                lines.append(f"\n{model}: vLLM / transformers.generate = {by['vllm'] / by['transformers.generate']:.1f}x")
    lines += ["", "## Not run, failed, or fell back (and why)", ""]
    lines += [f"- {n}" for n in b.notes] or ["- nothing"]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- environment


def install_carried_wheels(b: Bench) -> None:
    wheels = sorted(glob.glob(str(Path(__file__).parent / "wheels" / "*.whl")))
    if not wheels:
        b.notes.append("no wheels carried in bench/gpu/wheels/: using what the machine has")
        return
    out = subprocess.run([sys.executable, "-m", "pip", "install", "--no-index", "--find-links",
                          str(Path(wheels[0]).parent), *wheels], capture_output=True, text=True, timeout=300)
    b.notes.append(f"installed carried wheels {[Path(w).name for w in wheels]}: "
                   + ("ok" if out.returncode == 0 else f"pip failed: {out.stderr.strip()[-300:]}"))


def describe_machine(b: Bench) -> None:
    import torch

    from trainer.flops import peak_flops_for

    versions = {}
    for lib in LIBS:
        try:
            versions[lib] = importlib.metadata.version(lib)
        except importlib.metadata.PackageNotFoundError:
            versions[lib] = "not installed"
    e = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
         "python": platform.python_version(), "libraries": ", ".join(f"{k} {v}" for k, v in versions.items()),
         "cuda": torch.version.cuda or "none"}
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name()
        peak = peak_flops_for(name)
        e.update(gpu=name, gpu_count=torch.cuda.device_count(),
                 peak_bf16_tflops="unknown part: MFU not computed" if peak is None else f"{peak / 1e12:.0f}")
        try:
            e["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                         capture_output=True, text=True, timeout=30).stdout.strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError) as err:
            e["driver"] = f"unknown ({err})"
    else:
        e.update(gpu="none (CPU)", gpu_count=0, driver="none", peak_bf16_tflops="n/a")
    b.env = e


# ----------------------------------------------------------------------------- training


def synthetic_rows(vocab: int, row_tokens: int, n_rows: int, seed: int = 0):
    """Documents of skewed length (a chat SFT mix), best-fit packed into rows of ``row_tokens``."""
    from trainer.masks import Example
    from trainer.packing import pack_best_fit

    rng = random.Random(seed)
    docs = []
    while sum(len(d) for d in docs) < row_tokens * n_rows * 1.1:
        k = max(16, min(row_tokens, int(rng.lognormvariate(6.3, 0.8))))  # median ~550 tokens
        docs.append(Example(f"d{len(docs)}", tuple(rng.randrange(vocab) for _ in range(k)), (False,) + (True,) * (k - 1)))
    rows = pack_best_fit([len(d) for d in docs], row_tokens, seed, 0)
    return docs, rows[:n_rows]


def pick_attention(device_type: str) -> list[str]:
    from trainer.runtime import choose_attention

    if device_type != "cuda":
        return ["sdpa"]
    first = choose_attention("auto")
    return [first] + [a for a in ("flex_attention", "sdpa") if a != first]


def build_model(spec, attention: str, device, dtype):
    import torch
    from transformers import AutoModelForCausalLM

    from tracecause.models import hf_config_from_spec

    cfg = hf_config_from_spec(spec)
    cfg.use_cache = False
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(cfg, dtype=dtype, attn_implementation=attention)
    return model


def zero3_engine(model, device_type: str, lr: float = 1e-5):
    """DeepSpeed ZeRO-3 on this one process (the project's zero3.yaml, resolved as the trainer does)."""
    import deepspeed

    from tracecause.config import load
    from trainer.config import TrainConfig
    from trainer.engine import resolve_ds_config

    os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=os.environ.get("MASTER_PORT", "29577"))
    # once per process (a second call finds the group and returns)
    deepspeed.init_distributed(dist_backend="nccl" if device_type == "cuda" else "gloo", auto_mpi_discovery=False)
    cfg = load(TrainConfig, [], [f"optim.lr={lr}", "train.global_batch_rows=1", "train.micro_batch_rows=1"])
    ds = resolve_ds_config(cfg, world=1, accum=1, hidden_size=model.config.hidden_size, bf16=device_type == "cuda")
    engine, _, _, _ = deepspeed.initialize(model=model, model_parameters=model.parameters(), config=ds)
    return engine


def train_one(b: Bench, name: str, spec, attention: str, row_tokens: int, steps: int, warmup: int):
    import torch

    from tracecause.memory import plan_from_spec
    from trainer.flops import mfu, peak_flops_for
    from trainer.loss import summed_loss
    from trainer.packing import collate

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    model = build_model(spec, attention, device, dtype)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    try:
        import deepspeed  # noqa: F401

        engine, optimizer = zero3_engine(model, device.type), "DeepSpeed ZeRO-3"
        step_fn = lambda: engine.step()  # noqa: E731
        backward = engine.backward
        forward_model = engine
    except ImportError as err:
        b.notes.append(f"{name}: DeepSpeed not importable ({err}); torch AdamW on bf16 weights instead "
                       "(ZeRO-3 and its memory model not exercised)")
        opt = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=device.type == "cuda")
        optimizer, forward_model, backward = "torch AdamW", model, (lambda loss: loss.backward())

        def step_fn():
            opt.step()
            opt.zero_grad(set_to_none=True)
    docs, rows = synthetic_rows(spec.vocab_size, row_tokens, warmup + steps)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    tokens, elapsed = 0, 0.0
    for i, row in enumerate(rows):
        if b.left() < 15:
            b.notes.append(f"{name}: stopped after {i} steps (time budget)")
            break
        batch = collate(docs, [row], pad_id=0, flat=True)
        t0 = time.perf_counter()
        loss = summed_loss(forward_model, batch, device, attention, "chunked", 1024)
        backward(loss / max(1, batch.n_targets))
        step_fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            tokens, elapsed = tokens + batch.real_tokens, elapsed + time.perf_counter() - t0
    if not elapsed:
        raise RuntimeError("no measured step completed")
    lengths = [len(docs[d]) for row in rows for d in row]
    seq_len = int(sum(n * n for n in lengths) / sum(lengths))
    from tracecause import models

    flops_tok = models.flops_per_token(spec, seq_len)
    peak = peak_flops_for(torch.cuda.get_device_name()) if device.type == "cuda" else None
    tps = tokens / elapsed
    plan = plan_from_spec(spec, n_gpus=1, tokens=row_tokens, grad_checkpointing=True, attention=attention,
                          loss="chunked", chunk_tokens=1024, dtype_bytes=2 if device.type == "cuda" else 4, overhead=0)
    peak_bytes = int(torch.cuda.max_memory_allocated()) if device.type == "cuda" else 0
    b.rows.append({"kind": "train", "model": name, "attention": attention, "optimizer": optimizer,
                   "row_tokens": row_tokens, "tokens_per_s": tps, "mfu": mfu(tps, flops_tok, peak),
                   "peak_bytes": peak_bytes, "planner_bytes": plan.total,
                   "planner_terms": ", ".join(f"{k} {v / GiB:.1f}" for k, v in plan.terms.items())})
    print(json.dumps(b.rows[-1]), flush=True)
    del model, forward_model
    _free_memory()


def _free_memory() -> None:
    """Between models. The process group stays: DeepSpeed caches it, a re-created one is refused."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def train(b: Bench, name: str, spec, row_tokens: int, steps: int, warmup: int, device_type: str) -> None:
    """Try the preferred attention backend; on failure record why and try the next one."""
    for attention in pick_attention(device_type):
        b.guarded(f"train {name} ({attention})", train_one, b, name, spec, attention, row_tokens, steps, warmup)
        if any(r["kind"] == "train" and r["model"] == name for r in b.rows):
            return
        _free_memory()


# ----------------------------------------------------------------------------- generation


def generate_hf(b: Bench, name: str, spec, prompts: int, prompt_len: int, new_tokens: int) -> None:
    import torch

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    model = build_model(spec, "sdpa", device, dtype).eval()
    model.config.use_cache = True
    ids = torch.randint(0, spec.vocab_size, (prompts, prompt_len), device=device)
    with torch.no_grad():
        model.generate(ids[:2], max_new_tokens=4, min_new_tokens=4, do_sample=False)  # warm-up
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                             min_new_tokens=new_tokens, do_sample=False)
        if device.type == "cuda":
            torch.cuda.synchronize()
    made = (out.shape[1] - prompt_len) * prompts
    b.rows.append({"kind": "generate", "model": name, "engine": "transformers.generate", "prompts": prompts,
                   "new_tokens": new_tokens, "tokens_per_s": made / (time.perf_counter() - t0)})
    del model
    _free_memory()


def generate_vllm(b: Bench, name: str, spec, prompts: int, prompt_len: int, new_tokens: int, work: Path) -> None:
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        b.notes.append(f"vLLM generation ({name}): vllm is not installed on this machine (carry a wheel in "
                       "bench/gpu/wheels/ to measure it)")
        return
    import torch
    from vllm import LLM, SamplingParams

    folder = work / name
    if not (folder / "config.json").is_file():
        model = build_model(spec, "sdpa", "cuda", torch.bfloat16)  # random init is slow on CPU at 4B
        model.save_pretrained(folder)
        del model
        _free_memory()
    llm = LLM(model=str(folder), skip_tokenizer_init=True, dtype="bfloat16", gpu_memory_utilization=0.5,
              max_model_len=prompt_len + new_tokens + 16, seed=0)
    rng = random.Random(0)
    reqs = [{"prompt_token_ids": [rng.randrange(spec.vocab_size) for _ in range(prompt_len)]} for _ in range(prompts)]
    params = SamplingParams(max_tokens=new_tokens, min_tokens=new_tokens, temperature=0.0, detokenize=False)
    llm.generate(reqs[:2], params)  # warm-up
    t0 = time.perf_counter()
    outs = llm.generate(reqs, params)
    made = sum(len(o.outputs[0].token_ids) for o in outs)
    b.rows.append({"kind": "generate", "model": name, "engine": "vllm", "prompts": prompts, "new_tokens": new_tokens,
                   "tokens_per_s": made / (time.perf_counter() - t0)})
    del llm
    _free_memory()


# ----------------------------------------------------------------------------- main


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budget-s", type=float, default=540, help="stop starting measurements after this long")
    ap.add_argument("--models", nargs="+", default=["qwen3-1.7b", "qwen3-4b"])
    ap.add_argument("--row-tokens", type=int, default=4096)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    ap.add_argument("--work", type=Path, default=Path("/tmp/tracecause-gpu-bench"))
    ap.add_argument("--cpu-smoke", action="store_true", help="tiny model on CPU: exercise every code path quickly")
    args = ap.parse_args(argv)
    from tracecause.models import load_model_spec

    import torch

    b = Bench(args.results, time.monotonic() + args.budget_s, args.cpu_smoke)
    if not args.cpu_smoke:
        b.guarded("install carried wheels", install_carried_wheels, b)
    b.guarded("describe machine", describe_machine, b)
    device_type = "cuda" if torch.cuda.is_available() else "cpu"
    if device_type == "cpu" and not args.cpu_smoke:
        b.notes.append("no CUDA GPU visible: nothing measured (use --cpu-smoke to check the script on CPU)")
        b.write()
        return 1
    models = ["tiny-qwen3", "tiny-qwen3"] if args.cpu_smoke else args.models  # twice: a second process group
    row_tokens = 256 if args.cpu_smoke else args.row_tokens
    steps, warmup = (2, 1) if args.cpu_smoke else (args.steps, args.warmup)
    gen = (4, 16, 8) if args.cpu_smoke else (64, 128, 256)  # prompts, prompt tokens, new tokens each
    for name in models:
        spec = b.guarded(f"load spec {name}", load_model_spec, name)
        if spec is None:
            continue
        train(b, name, spec, row_tokens, steps, warmup, device_type)
    for name in models:
        spec = load_model_spec(name)
        b.guarded(f"transformers.generate {name}", generate_hf, b, name, spec, *gen)
        if device_type == "cuda":
            b.guarded(f"vLLM {name}", generate_vllm, b, name, spec, *gen, args.work)
        else:
            b.notes.append(f"vLLM {name}: not run in --cpu-smoke")
    b.write()
    print(f"wrote {args.results}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
