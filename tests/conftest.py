"""Shared fixtures. In CI (CI=true) a test whose real component is missing fails instead of skipping."""
from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(condition: bool, what: str) -> None:
    """Skip (locally) or fail (in CI) when a real component the test exercises is missing."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{what} is required in CI but missing", pytrace=False)
    pytest.skip(f"{what} not available")


def need_module(name: str) -> None:
    need(importlib.util.find_spec(name) is not None, f"python package {name!r}")


def need_shared(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    need(path.exists(), f"../shared/{'/'.join(parts)}")
    return path


@pytest.fixture(autouse=True)
def _per_test_tmpdir(tmp_path, monkeypatch):
    """vLLM and torchrun litter TMPDIR: give every test its own."""
    tmp = tmp_path / "_tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"))
    yield


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A random tiny Qwen3 (+ locally trained tokenizer), built once per session."""
    from tracecause.tiny import build_tiny_model

    out = tmp_path_factory.mktemp("tiny") / "tiny-qwen3"
    build_tiny_model(out)
    return out


@pytest.fixture(scope="session")
def slurm_env() -> dict:
    """Environment of the local SLURM cluster (started by dev.sh test, or here)."""
    need(shutil.which("sbatch") is not None, "SLURM client (sbatch)")
    from tests.slurm_support import ensure_cluster

    env = ensure_cluster()
    need(env is not None, "local SLURM cluster (slurm/local-cluster start)")
    return env


# trainer: one shared 2-process DeepSpeed run for the resume, export and W&B tests (session scope)
from tests.trainer_runs import trainer_data_dir, trainer_reference_run  # noqa: E402,F401
