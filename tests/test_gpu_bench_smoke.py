"""bench/gpu/run_gpu_bench.py's code paths on CPU (--cpu-smoke): the GPU run gets one ~10-minute shot,
so every piece it calls (packing, masks, chunked loss under real ZeRO-3, planner, generate, the
RESULTS writer) must already work; and the multi-node / NCCL hygiene settings."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.trainer_runs import clean_env

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.deepspeed
def test_cpu_smoke_writes_a_complete_results_file(tmp_path):
    from tests.conftest import need_module

    need_module("deepspeed")
    results = tmp_path / "RESULTS.md"
    out = subprocess.run([sys.executable, "bench/gpu/run_gpu_bench.py", "--cpu-smoke", "--results", str(results),
                          "--budget-s", "300"], cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=400)
    assert out.returncode == 0, out.stderr[-3000:]
    text = results.read_text()
    assert "CPU SMOKE RUN" in text and "planning-mfu" not in text  # a smoke run never feeds launch/cost.py
    train = re.findall(r"^\| tiny-qwen3 \| sdpa \| DeepSpeed ZeRO-3 \| 256 \| ([\d,]+) \|", text, re.M)
    assert len(train) == 2 and all(int(t.replace(",", "")) > 0 for t in train), text  # two process groups in a row
    assert re.search(r"^\| tiny-qwen3 \| transformers\.generate \| 4 \| 8 \| [\d,]+ \|", text, re.M), text
    assert "FAILED" not in text, text
    assert "libraries: torch " in text


def test_multi_task_slurm_steps_die_together():
    from launch.executors import Submission, slurm_parameters
    from launch.graph import Job
    from launch.profiles import ClusterProfile
    from submitit.slurm.slurm import _make_sbatch_string

    profile = ClusterProfile()

    def script(nodes: int, tasks: int) -> str:
        res = _resources(nodes, tasks)
        params = slurm_parameters(Submission(Job("train.x", "train", [], res), []), profile, "sweep")
        return _make_sbatch_string(command="python -m x", folder="/tmp/f/%j", **params)

    assert "--kill-on-bad-exit=1" in script(2, 1) and "--kill-on-bad-exit=1" in script(1, 2)
    assert "--kill-on-bad-exit" not in script(1, 1)


def _resources(nodes: int, tasks: int):
    from launch.graph import Resources

    return Resources(nodes=nodes, tasks_per_node=tasks)


def test_nccl_settings_use_current_names_and_keep_user_values():
    from trainer.distributed import nccl_env

    fresh = nccl_env({})
    assert fresh["TORCH_NCCL_ASYNC_ERROR_HANDLING"] == "1" and "NCCL_ASYNC_ERROR_HANDLING" not in fresh
    assert nccl_env({"NCCL_ASYNC_ERROR_HANDLING": "3"})["TORCH_NCCL_ASYNC_ERROR_HANDLING"] == "3"
    assert "TORCH_NCCL_ASYNC_ERROR_HANDLING" not in nccl_env({"TORCH_NCCL_ASYNC_ERROR_HANDLING": "2"})


def test_peak_flops_table_tells_form_factors_apart():
    from trainer.flops import peak_flops_for

    assert peak_flops_for("NVIDIA H100 80GB HBM3") == 989e12
    assert peak_flops_for("NVIDIA H100 PCIe") == 756e12
    assert peak_flops_for("NVIDIA H100 NVL") == 835e12
    assert peak_flops_for("NVIDIA H200") == 989e12 and peak_flops_for("NVIDIA H200 NVL") == 835e12
    assert peak_flops_for("NVIDIA GH200 480GB") == 989e12
    assert peak_flops_for("NVIDIA A100-SXM4-40GB") == peak_flops_for("NVIDIA A100 80GB PCIe") == 312e12
    assert peak_flops_for("NVIDIA B200") == 2250e12
    assert (peak_flops_for("NVIDIA L40S"), peak_flops_for("NVIDIA L40"), peak_flops_for("NVIDIA L4")) == (362e12, 181e12, 121e12)
    assert peak_flops_for("Some Future GPU") is None
