#!/usr/bin/env bash
# One entry point for developers and CI:
#   bash dev.sh setup   venv at .venv with everything (idempotent)
#   bash dev.sh test    setup + local SLURM cluster + the whole test suite
#   bash dev.sh demo    setup + `tracecause demo`: the known-answer world end to end on this machine
#   bash dev.sh faults  setup + local SLURM cluster + the fault-injection suite and its scoreboard (root)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"

setup_venv() {
  local stamp="$VENV/.tracecause-installed"
  local want; want="$(sha256sum setup.cfg | cut -c1-16)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then return; fi
  [[ -x "$PY" ]] || python3 -m venv "$VENV"
  "$PY" -m pip install -q --upgrade pip
  # torch first, from the on-disk CPU wheel when there is one: anything else pulls GBs of CUDA.
  "$PY" -m pip install -q "torch==2.13.0"
  "$PY" -m pip install -q -e ".[cpu,dev]"
  # PyPI's torchvision/torchaudio/torchcodec are CUDA builds that break vLLM's import on CPU.
  "$PY" -m pip uninstall -y -q torchvision torchaudio torchcodec >/dev/null 2>&1 || true
  echo "$want" > "$stamp"
}

setup_system() {
  # Chromium renders the HTML report in a test; SLURM packages are installed by slurm/local-cluster.
  if [[ $EUID -eq 0 ]] && ! command -v chromium >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null
  fi
}

cmd="${1:-help}"; shift || true
case "$cmd" in
  setup)
    setup_venv; setup_system ;;
  test)
    setup_venv; setup_system
    # Captured first: a failing start inside eval "$(…)" would not stop set -e.
    slurm_env="$("$ROOT/slurm/local-cluster" start --print-env)"
    eval "$slurm_env"
    export TRACECAUSE_SLURM_STARTED=1
    exec "$PY" -m pytest -q -ra "$@" ;;
  demo)
    setup_venv
    exec "$VENV/bin/tracecause" demo "$@" ;;
  faults)
    setup_venv
    slurm_env="$("$ROOT/slurm/local-cluster" start --print-env)"
    eval "$slurm_env"
    exec "$PY" -m faults "$@" ;;
  *)
    echo "usage: bash dev.sh {setup|test|demo|faults} [args]"; exit 2 ;;
esac
