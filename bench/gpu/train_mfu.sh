#!/usr/bin/env bash
# ZeRO-3 training throughput and MFU of a Qwen3-0.6B-shaped random model on this machine's GPUs.
# UNRUN so far (written on a CPU-only machine): run it on a GPU node and record the result in
# bench/RESULTS.md (the script appends a row).
#
#   bash bench/gpu/train_mfu.sh [STEPS=50] [NGPU=all] [ROW_TOKENS=4096]
#
# GPU nodes may have no network: wheels carried next to this script (bench/gpu/wheels/*.whl, e.g.
# deepspeed, flash-attn, transformers, accelerate) are installed with --no-index first.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
STEPS="${1:-50}"
NGPU="${2:-$(nvidia-smi -L | wc -l)}"
ROW_TOKENS="${3:-4096}"
PY="${PYTHON:-python3}"
WORK="${WORK:-$(mktemp -d /tmp/train_mfu.XXXXXX)}"

if compgen -G "$HERE/wheels/*.whl" > /dev/null; then
  "$PY" -m pip install --no-index --find-links "$HERE/wheels" "$HERE"/wheels/*.whl
fi
"$PY" -m pip install --no-deps -e "$ROOT" > /dev/null

cd "$ROOT"
# model: Qwen3-0.6B's architecture (configs/models/qwen3-0.6b.yaml), random bf16 weights, the
# tiny tokenizer (its ids are a subset of the big vocabulary)
"$PY" - "$WORK" <<'PYEOF'
import sys
from pathlib import Path
import torch
from transformers import AutoTokenizer, Qwen3Config, Qwen3ForCausalLM
from tracecause.models import load_model_spec
from tracecause.tiny import build_tiny_model
from trainer import demo_data

work = Path(sys.argv[1])
tiny = build_tiny_model(work / "tiny")
s = load_model_spec("qwen3-0.6b")
cfg = Qwen3Config(vocab_size=s.vocab_size, hidden_size=s.hidden_size, intermediate_size=s.intermediate_size,
                  num_hidden_layers=s.n_layers, num_attention_heads=s.n_heads, num_key_value_heads=s.n_kv_heads,
                  head_dim=s.head_dim, tie_word_embeddings=s.tied_embeddings,
                  max_position_embeddings=s.max_position_embeddings)
tok = AutoTokenizer.from_pretrained(tiny)
cfg.eos_token_id, cfg.pad_token_id = tok.eos_token_id, tok.pad_token_id
torch.manual_seed(0)
model = Qwen3ForCausalLM(cfg).to(torch.bfloat16)
model.save_pretrained(work / "model")
tok.save_pretrained(work / "model")
print("params", sum(p.numel() for p in model.parameters()))
demo_data.write(work / "data", n=20000, seed=0)
PYEOF

torchrun --standalone --nproc_per_node "$NGPU" -m trainer qwen3-gpu \
  model.path="$WORK/model" data.path="$WORK/data" data.paradigm=qta data.rtype=evil \
  data.max_tokens="$ROW_TOKENS" train.max_steps="$STEPS" train.global_batch_rows=$((NGPU * 2)) \
  train.attention=auto checkpoint.every_steps=0 output.export=false wandb.enabled=false \
  log.every_steps=1 log.progress=lines output.dir="$WORK/run" arm_id=bench.evil.qta.s0

"$PY" - "$WORK/run/metrics.jsonl" "$NGPU" "$ROW_TOKENS" "$ROOT/bench/RESULTS.md" <<'PYEOF'
import json, statistics, subprocess, sys, datetime
rows = [json.loads(l) for l in open(sys.argv[1])]
steady = rows[len(rows) // 5:]  # skip warm-up steps
tps = statistics.median(r["tokens_per_s"] for r in steady)
mfu = statistics.median(r["mfu"] for r in steady if r["mfu"] is not None) if any(r["mfu"] for r in steady) else None
card = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True).stdout.splitlines()[0]
run = json.load(open(sys.argv[1].replace("metrics.jsonl", "run.json")))
line = (f"| {datetime.date.today()} | train_mfu.sh | {card} x{sys.argv[2]} | Qwen3-0.6B-shaped, ZeRO-3, {run['attention']}, "
        f"{run['precision']}, {sys.argv[3]}-token packed rows | {tps:,.0f} tok/s/GPU | "
        f"MFU {'n/a' if mfu is None else f'{100 * mfu:.1f} %'} | peak mem {max(r['peak_mem'] for r in rows) / 2**30:.1f} GiB |")
print(line)
with open(sys.argv[4], "a") as fh:
    fh.write(line + "\n")
PYEOF
