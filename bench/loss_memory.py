"""Peak memory and time of the reference loss vs the chunked (lean) loss, side by side in one run.

A Qwen3-vocabulary head (151,936 rows; hidden 1024 = Qwen3-0.6B by default) on CPU in fp32,
forward + backward of the summed next-token cross-entropy at 4k and 8k tokens (every token
supervised). Each measurement runs in a fresh child process; its peak is the growth of the
child's max RSS over what it held once inputs and weights existed, so the two losses are
compared on the memory they themselves add. Goal (issue 13): lean peak <= 0.3 x reference,
lean time <= 1.2 x reference.

    flock /tmp/tracecause-heavy.lock .venv/bin/python bench/loss_memory.py [--tokens 4096 8192] [--hidden 1024]

The reference at 8k tokens needs ~12 bytes x tokens x vocab (~15 GB): a size whose estimate
exceeds 80 % of MemAvailable is skipped with a message rather than run into the OOM killer.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
VOCAB = 151_936


def child(kind: str, tokens: int, hidden: int, chunk: int, threads: int) -> dict:
    import torch
    import torch.nn.functional as F

    from trainer.lean_loss import chunked_linear_cross_entropy

    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    h = torch.randn(tokens, hidden, generator=g).requires_grad_(True)
    w = (torch.randn(VOCAB, hidden, generator=g) * 0.02).requires_grad_(True)
    t = torch.randint(0, VOCAB, (tokens,), generator=g)
    # gradients of the leaves exist in both variants: allocate them before the baseline
    h.grad, w.grad = torch.zeros_like(h), torch.zeros_like(w)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    t0 = time.perf_counter()
    if kind == "reference":
        loss = F.cross_entropy((h @ w.t()).float(), t, reduction="sum")
    else:
        loss = chunked_linear_cross_entropy(h, w, t, chunk)
    loss.backward()
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"kind": kind, "tokens": tokens, "seconds": seconds, "peak_bytes": peak - base, "loss": float(loss),
            "grad_w_norm": float(w.grad.norm()), "grad_h_norm": float(h.grad.norm())}


def mem_available() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def measure(kind: str, tokens: int, args) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--tokens", str(tokens), "--hidden", str(args.hidden),
           "--chunk", str(args.chunk), "--threads", str(args.threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        return {"kind": kind, "tokens": tokens, "error": (out.stderr or out.stdout)[-400:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, nargs="+", default=[4096, 8192])
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--chunk", type=int, default=1024, help="train.loss_chunk_tokens")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--child", default="", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.tokens[0], args.hidden, args.chunk, args.threads)))
        return 0
    GiB = 2 ** 30
    print(f"vocab {VOCAB:,}, hidden {args.hidden}, fp32 on CPU, {args.threads} threads, chunk {args.chunk} tokens; "
          "peak = memory the loss adds (forward + backward)")
    print(f"{'tokens':>7} {'ref GiB':>8} {'lean GiB':>9} {'peak ratio':>10} {'ref s':>7} {'lean s':>7} "
          f"{'time ratio':>10} {'|dloss|/loss':>12}")
    ok = True
    for tokens in args.tokens:
        need = 13 * tokens * VOCAB + 8 * VOCAB * args.hidden  # measured: ~12 bytes x T x V at 1k tokens
        if need > 0.8 * mem_available():
            print(f"{tokens:>7} skipped: the reference needs ~{need / GiB:.1f} GiB, MemAvailable is "
                  f"{mem_available() / GiB:.1f} GiB")
            ok = False
            continue
        ref, lean = measure("reference", tokens, args), measure("chunked", tokens, args)
        if "error" in ref or "error" in lean:
            print(f"{tokens:>7} failed: {ref.get('error') or lean.get('error')}")
            ok = False
            continue
        peak_ratio, time_ratio = lean["peak_bytes"] / ref["peak_bytes"], lean["seconds"] / ref["seconds"]
        dloss = abs(lean["loss"] - ref["loss"]) / abs(ref["loss"])
        print(f"{tokens:>7} {ref['peak_bytes'] / GiB:>8.2f} {lean['peak_bytes'] / GiB:>9.2f} {peak_ratio:>10.3f} "
              f"{ref['seconds']:>7.1f} {lean['seconds']:>7.1f} {time_ratio:>10.3f} {dloss:>12.1e}")
        ok &= peak_ratio <= 0.3 and time_ratio <= 1.2
    print("goal (lean peak <= 0.3x, time <= 1.2x):", "MET" if ok else "NOT MET (see rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
