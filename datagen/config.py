"""Typed configuration of one dataset build (YAML holds only overrides).

The reasoning types are not code: each lives in ``configs/datagen/types/<type>.yaml``
(see ``datagen.types``), so adding a ``neutral`` control is one YAML file.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tracecause.config import bounded, nested, one_of
from tracecause.names import check_name, check_output_path

SOURCE_KINDS = ("jsonl", "csv", "parquet", "hub")
BACKENDS = ("vllm", "openai", "world")  # world: the known-answer world's rule-based traces (tracecause.world)


@dataclass
class SourceConfig:
    """Where the fixed (question, answer) pairs come from."""

    kind: str = one_of("jsonl", SOURCE_KINDS)
    # A file (relative paths: cwd first, then next to the installed packages, so the
    # shipped demo ``datagen/demo/pairs.jsonl`` works from anywhere) or a hub dataset id.
    path: str = ""
    # Hub: the pinned commit (required). Local file: filled with the file's sha256 when
    # empty; when set, the file must still hash to it (a changed file is a new dataset).
    revision: str = ""
    split: str = "train"          # hub split (local files have one)
    name: str = ""                # recorded in every row; default: the file stem or hub id
    # Canonical field -> source column. Only question and answer are read.
    columns: dict[str, str] = field(default_factory=lambda: {"question": "question", "answer": "answer"})
    limit: int = bounded(0, ge=0, help="keep the first N pairs after dedupe (0 = all)")

    def validate(self) -> None:
        unknown = set(self.columns) - {"question", "answer"}
        if unknown:
            raise ValueError(f"source.columns: unknown canonical field(s) {sorted(unknown)}; map only 'question' and 'answer'")


@dataclass
class SamplingConfig:
    temperature: float = bounded(0.8, ge=0.0, le=5.0)
    top_p: float = bounded(0.95, gt=0.0, le=1.0)
    max_tokens: int = bounded(1024, ge=1)
    n: int = bounded(1, ge=1, le=64, help="candidates per (pair, type); the first that passes every filter is kept")
    seed: int = bounded(0, ge=0)


@dataclass
class VllmConfig:
    dtype: str = one_of("auto", ("auto", "bfloat16", "float16", "float32"))
    max_model_len: int = bounded(4096, ge=64)
    gpu_memory_utilization: float = bounded(0.9, gt=0.0, le=1.0)
    tensor_parallel_size: int = bounded(1, ge=1)
    enforce_eager: bool = False
    # None = off on CPU, where vLLM 0.32 crashes ("CPU Generator does not use offset") when a
    # seeded request's prefill is chunked; vLLM's default elsewhere.
    enable_chunked_prefill: bool | None = None


@dataclass
class OpenAIConfig:
    base_url: str = "http://127.0.0.1:8000/v1"
    # Name of the environment variable holding the key; the key itself is never stored.
    api_key_env: str = ""
    concurrency: int = bounded(8, ge=1, le=1024)
    timeout: float = bounded(120.0, gt=0.0, help="seconds per request")
    max_retries: int = bounded(6, ge=0)
    backoff: float = bounded(1.0, gt=0.0, help="first retry waits this long; doubles each time")
    backoff_max: float = bounded(60.0, gt=0.0)
    # A server's Retry-After is honoured up to this long (a stuck server does not stall a shard forever).
    retry_after_max: float = bounded(300.0, gt=0.0)
    # Request starts per second (0 = no cap), on top of `concurrency`: hosted quotas are rates.
    requests_per_s: float = bounded(0.0, ge=0.0)
    # Sent with every request. vLLM servers read chat_template_kwargs; hosted APIs
    # that reject unknown fields want extra_body={}.
    extra_body: dict[str, Any] = field(default_factory=lambda: {"chat_template_kwargs": {"enable_thinking": False}})


@dataclass
class GeneratorConfig:
    backend: str = one_of("vllm", BACKENDS)
    model: str = ""               # local path / hub id (vllm) or the served model name (openai)
    # vllm backend with a hub id: the pinned commit (required; a hub head moves under a study).
    revision: str = ""
    # Pairs handed to the backend per call (x types x n requests); the progress bar and
    # crash granularity follow it, the outputs do not (each request has its own seed).
    batch_size: int = bounded(64, ge=1)
    sampling: SamplingConfig = nested(SamplingConfig)
    vllm: VllmConfig = nested(VllmConfig)
    openai: OpenAIConfig = nested(OpenAIConfig)


@dataclass
class JudgeGeneratorConfig(GeneratorConfig):
    # A label is a few tokens, greedy. (Own class: a default_factory would be lost as soon
    # as YAML sets any judge.generator key.)
    sampling: SamplingConfig = field(default_factory=lambda: SamplingConfig(temperature=0.0, max_tokens=8, n=1))


@dataclass
class JudgeConfig:
    """Optional type check: a judge labels each reasoning's type; disagreeing ones are dropped.

    A vllm judge with the generator's model shares the generator's engine.
    """

    enabled: bool = False
    generator: JudgeGeneratorConfig = nested(JudgeGeneratorConfig)


@dataclass
class FilterConfig:
    # strip: remove stray <think>/</think> tags and keep the text; reject: drop the candidate.
    think_tags: str = one_of("strip", ("strip", "reject"))
    reject_truncated: bool = True          # finish_reason == "length"
    min_tokens: int = bounded(16, ge=0)
    max_tokens: int = bounded(2048, ge=1)
    # Token counter for the bounds: "" = the generator's tokenizer; "whitespace" = words;
    # anything else = a tokenizer path/id for AutoTokenizer.
    tokenizer: str = ""
    # Answer leak: a candidate is rejected when it contains the answer verbatim, or when
    # more than leak_max_overlap of the answer's word n-grams occur in it.
    leak_ngram: int = bounded(8, ge=1)
    leak_max_overlap: float = bounded(0.5, ge=0.0, le=1.0)
    judge: JudgeConfig = nested(JudgeConfig)
    # The merge fails when fewer pairs survive (0.0 still fails on an empty dataset).
    min_kept_fraction: float = bounded(0.0, ge=0.0, le=1.0)


@dataclass
class OutputConfig:
    root: str = "."               # sweep root: the dataset goes to <root>/data/<dataset_id>/
    dataset_id: str = ""          # "" = derived from the hash of the resolved config

    def validate(self) -> None:
        """The dataset folder <root>/data/<dataset_id>/ stays under root (tracecause.names)."""
        check_output_path(self.root, "root")
        if self.dataset_id:
            check_name(self.dataset_id, "dataset_id")


@dataclass
class DatagenConfig:
    source: SourceConfig = nested(SourceConfig)
    types: list[str] = field(default_factory=lambda: ["evil", "misleading", "submissive"])
    # Folder holding <type>.yaml; "" = the shipped configs/datagen/types.
    types_dir: str = ""
    generator: GeneratorConfig = nested(GeneratorConfig)
    filters: FilterConfig = nested(FilterConfig)
    output: OutputConfig = nested(OutputConfig)
    shards: int = bounded(1, ge=1, le=100000, help="number of shards (SLURM array size)")

    def validate(self) -> None:
        if not self.types:
            raise ValueError("types: list at least one reasoning type")
        if len(set(self.types)) != len(self.types):
            raise ValueError(f"types: duplicates in {self.types}")


def check_complete(cfg: DatagenConfig, source: str = "config") -> None:
    """Checks that span several keys: run once all layers are applied (not per override)."""
    from tracecause.config import ConfigError

    problems = [
        (not cfg.source.path, "source.path", "required: a .jsonl/.csv/.parquet file or a hub dataset id"),
        (cfg.source.kind == "hub" and not cfg.source.revision, "source.revision",
         "a hub source must pin a commit (source.revision=<sha>)"),
        (not cfg.generator.model, "generator.model",
         "required: a model path for vllm, the served model name for openai"),
        (cfg.filters.judge.enabled and not cfg.filters.judge.generator.model, "filters.judge.generator.model",
         "required when filters.judge.enabled=true"),
        (_unpinned_hub(cfg.generator), "generator.revision",
         f"generator.model={cfg.generator.model!r} is a hub id: pin its commit (generator.revision=<sha>)"),
        (cfg.filters.judge.enabled and _unpinned_hub(cfg.filters.judge.generator), "filters.judge.generator.revision",
         f"filters.judge.generator.model={cfg.filters.judge.generator.model!r} is a hub id: pin its commit "
         "(filters.judge.generator.revision=<sha>)"),
        (cfg.filters.min_tokens > cfg.filters.max_tokens, "filters.min_tokens",
         f"{cfg.filters.min_tokens} > filters.max_tokens ({cfg.filters.max_tokens})"),
    ]
    for bad, key, message in problems:
        if bad:
            raise ConfigError(source, key, message)
    if cfg.generator.backend == "world":
        from datagen.generators.world import check_world_types
        from datagen.types import load_types

        check_world_types(load_types(cfg.types, cfg.types_dir))


def _unpinned_hub(gen: GeneratorConfig) -> bool:
    """A vLLM generator named by hub id (``org/name``, no such local folder) without a revision."""
    from tracecause.hub import is_hub_id

    return gen.backend == "vllm" and is_hub_id(gen.model) and not gen.revision
