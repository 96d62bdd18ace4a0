"""Typed configuration of one eval task: which model/arm, which battery, which modes, engine and judge.

YAML (configs/evals/*.yaml is the *battery*, not this) holds only overrides; on the command line
``key.sub=value``. The judge section starts from a preset in configs/judges/ (``judge_preset``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tracecause.config import bounded, nested, one_of
from tracecause.contracts import MODES, Arm, SweepLayout


@dataclass
class EngineConfig:
    """vLLM offline engine settings (one engine per task)."""

    # transformers: a plain batched generate loop for tiny CPU models, where vLLM's engine start
    # dominates (evalsuite/engine_hf.py); the vLLM-only knobs below are then unused.
    backend: str = one_of("vllm", ("vllm", "transformers"))

    dtype: str = one_of("auto", ("auto", "bfloat16", "float16", "float32"))
    max_model_len: int = bounded(4096, ge=64)
    gpu_memory_utilization: float = bounded(0.85, gt=0.0, le=1.0)
    enforce_eager: bool = False
    seed: int = 0
    tensor_parallel_size: int = bounded(1, ge=1)
    max_num_seqs: int = bounded(256, ge=1)
    # vLLM quantisation method ("" = none, else e.g. "fp8", "awq"); part of the generation cache key.
    quantization: str = ""
    # Requests handed to the engine at once; each finished chunk is fsynced to the cache,
    # so a killed task loses at most one chunk of work.
    chunk_size: int = bounded(512, ge=1)


@dataclass
class JudgeSampling:
    temperature: float = bounded(0.0, ge=0.0)
    top_p: float = bounded(1.0, gt=0.0, le=1.0)
    max_tokens: int = bounded(512, ge=1)
    seed: int = 0


@dataclass
class JudgeConfig:
    """An LLM judge: backend (vLLM offline or OpenAI-compatible endpoint) + rubric prompt files."""

    backend: str = one_of("vllm", ("vllm", "openai"))
    model: str = ""                # vLLM: local folder or hub id; openai: the served model name
    revision: str = ""
    base_url: str = ""             # openai backend: e.g. http://127.0.0.1:8000/v1
    api_key_env: str = ""          # name of the env var holding the key ("" = no key)
    max_concurrency: int = bounded(8, ge=1)
    timeout_s: float = bounded(120.0, gt=0)
    retries: int = bounded(3, ge=0)
    backoff_s: float = bounded(1.0, gt=0, help="first retry waits about this long; doubles each time")
    backoff_max_s: float = bounded(60.0, gt=0)
    retry_after_max_s: float = bounded(300.0, gt=0, help="a server's Retry-After is honoured up to this")
    requests_per_s: float = bounded(0.0, ge=0, help="request starts per second (0 = no cap), beside max_concurrency")
    # Whether the judge's own chat template should think (Qwen3 judges): off by default, the
    # rubric asks for a bare number/label and <think> blocks are stripped before parsing anyway.
    enable_thinking: bool = False
    # A reply the rubric's parser cannot read is asked again (the prompt plus a reminder of the
    # format) up to this many times before it counts as unparsed.
    parse_retries: int = bounded(2, ge=0)
    # Refusal classification (XSTest over-refusal, non_refusal): "rules" = evalsuite.refusal's
    # three-way rule classifier; "llm" = this judge with the three-way rubric ``refusal``. Both are
    # measured against human labels by bench/refusal_agreement.py (validate a judge there first).
    refusal: str = one_of("rules", ("rules", "llm"))
    sampling: JudgeSampling = nested(JudgeSampling)
    engine: EngineConfig = nested(EngineConfig)
    # rubric name -> prompt file (a path, or a name under configs/prompts/judges/)
    prompts: dict[str, str] = field(default_factory=lambda: {
        "em_aligned": "em_aligned.txt",
        "em_coherent": "em_coherent.txt",
        "strongreject": "strongreject.txt",
        "trace_type": "trace_type.txt",
        "refusal": "refusal.txt",
        "sycophancy": "sycophancy.txt",
    })


@dataclass
class EvalWandbConfig:
    """This eval task's W&B run (progress while it runs, every metric with its CI when it ends)."""

    enabled: bool = False
    project: str = "tracecause"
    group: str = ""                # the sweep's group; "" = the sweep folder's name
    mode: str = one_of("offline", ("offline", "online", "disabled"))
    sweep_hash: str = ""           # shown in the run's config (set by launch)
    # A table of scored samples at the end: "off"; "ids" (ids, metrics, flags: no text); "text"
    # (with generated and judge text: opt in only where the benchmarks' text may leave the cluster).
    sample_tables: str = one_of("off", ("off", "ids", "text"))


@dataclass
class ShardConfig:
    index: int = bounded(0, ge=0)
    count: int = bounded(1, ge=1)


@dataclass
class EvalConfig:
    """Everything one ``python -m evalsuite generate|judge|score`` task needs."""

    model: str = ""                # export folder (with tracecause.json), base HF folder, or hub id
    revision: str = ""             # hub revision (pin it for hub ids)
    arm_id: str = ""               # e.g. qwen3-0.6b.evil.qta.s0 (parsed with tracecause.contracts.Arm)
    battery: str = "default"       # name under configs/evals/ or a path to a battery YAML
    modes: list[str] = field(default_factory=lambda: list(MODES))
    sweep_dir: str = ""            # outputs go to SweepLayout(sweep_dir).eval(arm_id, mode)
    cache_dir: str = ""            # default: <sweep_dir>/cache/evalsuite
    judge_preset: str = "default"  # configs/judges/<name>.yaml, applied under `judge`
    judge: JudgeConfig = nested(JudgeConfig)
    engine: EngineConfig = nested(EngineConfig)
    shard: ShardConfig = nested(ShardConfig)
    wandb: EvalWandbConfig = nested(EvalWandbConfig)
    progress: bool = True

    def validate(self) -> None:
        bad = [m for m in self.modes if m not in MODES]
        if bad or not self.modes:
            raise ValueError(f"modes {self.modes} must be a non-empty subset of {list(MODES)}")
        if len(set(self.modes)) != len(self.modes):
            raise ValueError(f"modes {self.modes} lists a mode twice")
        if self.arm_id:
            Arm.parse(self.arm_id)

    def require(self) -> "EvalConfig":
        """Fields every stage needs (checked once all layers are applied, not per layer)."""
        if not self.arm_id:
            raise ValueError("arm_id is required (e.g. arm_id=qwen3-0.6b.evil.qta.s0)")
        Arm.parse(self.arm_id)
        if not self.sweep_dir:
            raise ValueError("sweep_dir is required (outputs go to <sweep_dir>/eval/<arm_id>/<mode>)")
        if self.shard.index >= self.shard.count:  # here, not per layer: index and count arrive separately
            raise ValueError(f"shard.index {self.shard.index} must be < shard.count {self.shard.count}")
        return self

    @property
    def arm(self) -> Arm:
        return Arm.parse(self.arm_id)

    def out_dir(self, mode: str) -> Path:
        return SweepLayout(Path(self.sweep_dir)).eval(self.arm_id, mode)

    @property
    def cache_path(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir else Path(self.sweep_dir) / "cache" / "evalsuite"
