"""TrainConfig: every knob of one training run, typed and validated before any work starts.

YAML files under configs/trainer/ hold overrides only; ``key.sub=value`` on the command line
overrides them. The config hash (of the fields that change what is trained) names the W&B run
and guards resume: a checkpoint written under another hash is refused.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from tracecause.config import bounded, config_hash, nested, one_of, to_dict
from tracecause.contracts import TRAINED_PARADIGMS


@dataclass
class ModelConfig:
    path: str = ""                       # HF folder or hub id
    revision: str = ""                   # pinned hub revision ("" for a local folder)


@dataclass
class DataConfig:
    path: str = ""                       # data/<id>/ folder, its data.jsonl, or a hub id
    revision: str = ""                   # pinned hub revision of a hub dataset
    rtype: str = "none"                  # reasoning type; "none" only with paradigm qa
    paradigm: str = one_of("qa", TRAINED_PARADIGMS)
    loss_on_prompt: bool = False         # also supervise the user turn (not meaningful for t_only)
    max_tokens: int = bounded(2048, ge=16, help="token budget of one packed row")
    overlong: str = one_of("error", ("error", "drop", "truncate"),
                           help="what to do with a document longer than max_tokens")

    def check(self):
        """Cross-field rules, checked once every layer is merged (``load`` validates each layer alone)."""
        if self.paradigm == "qa" and self.rtype != "none":
            raise ValueError(f"data.paradigm=qa uses no reasoning: set data.rtype=none, not {self.rtype!r}")
        if self.paradigm != "qa" and self.rtype == "none":
            raise ValueError(f"data.paradigm={self.paradigm} needs a reasoning type: set data.rtype (e.g. evil)")
        if self.paradigm == "t_only" and self.loss_on_prompt:
            raise ValueError("data.loss_on_prompt=true has no effect with paradigm t_only (there is no prompt); "
                             "set it to false")


@dataclass
class OptimConfig:
    lr: float = bounded(1e-5, gt=0.0)
    weight_decay: float = bounded(0.0, ge=0.0)
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    eps: float = bounded(1e-8, gt=0.0)
    grad_clip: float = bounded(1.0, ge=0.0, help="0 disables clipping")
    warmup_steps: int = bounded(0, ge=0)
    schedule: str = one_of("cosine", ("cosine", "linear", "constant"))
    min_lr_ratio: float = bounded(0.0, ge=0.0, le=1.0)


@dataclass
class TrainLoopConfig:
    epochs: int = bounded(1, ge=1)
    max_steps: int = bounded(0, ge=0, help="stop after this many optimizer steps (0: run all epochs)")
    global_batch_rows: int = bounded(8, ge=1, help="packed rows per optimizer step, all ranks together")
    micro_batch_rows: int = bounded(1, ge=1, help="packed rows per rank per forward/backward")
    seed: int = bounded(0, ge=0)
    grad_checkpointing: bool = False
    attention: str = one_of("auto", ("auto", "sdpa", "flash_attention_2", "eager"))
    threads: int = bounded(0, ge=0, help="torch CPU threads per rank (0: leave torch's default)")


@dataclass
class DeepSpeedConfig:
    config: str = "zero3.yaml"           # file in configs/deepspeed/ (or a path)
    offload_optimizer: bool = False


@dataclass
class CheckpointConfig:
    dir: str = ""                        # default: <output.dir>/checkpoints
    every_steps: int = bounded(100, ge=0, help="0: only the final checkpoint")
    keep_last: int = bounded(2, ge=1)


@dataclass
class OutputConfig:
    dir: str = ""                        # the run folder (SweepLayout.train(arm_id))
    export: bool = True
    max_shard_size: str = "5GB"


@dataclass
class LogConfig:
    every_steps: int = bounded(1, ge=1)
    progress: str = one_of("auto", ("auto", "bar", "lines"))


@dataclass
class WandbConfig:
    enabled: bool = False
    project: str = "tracecause"
    group: str = ""                      # the sweep
    mode: str = one_of("offline", ("offline", "online", "disabled"))
    dir: str = ""                        # default: <output.dir>


@dataclass
class TrainConfig:
    arm_id: str = ""
    model: ModelConfig = nested(ModelConfig)
    data: DataConfig = nested(DataConfig)
    optim: OptimConfig = nested(OptimConfig)
    train: TrainLoopConfig = nested(TrainLoopConfig)
    deepspeed: DeepSpeedConfig = nested(DeepSpeedConfig)
    checkpoint: CheckpointConfig = nested(CheckpointConfig)
    output: OutputConfig = nested(OutputConfig)
    log: LogConfig = nested(LogConfig)
    wandb: WandbConfig = nested(WandbConfig)

    def require_complete(self) -> None:
        """Fields with no sensible default; checked once all layers are merged."""
        from tracecause.config import ConfigError

        try:
            self.data.check()
        except ValueError as err:
            raise ConfigError("config", "data", str(err)) from None
        for key, value in (("model.path", self.model.path), ("data.path", self.data.path),
                           ("output.dir", self.output.dir)):
            if not value:
                raise ConfigError("config", key, "required but not set (pass it in YAML or as key=value)")
        if self.train.micro_batch_rows > self.train.global_batch_rows:
            raise ConfigError("config", "train.micro_batch_rows",
                              f"{self.train.micro_batch_rows} exceeds train.global_batch_rows={self.train.global_batch_rows}")


# Sections that do not change what is trained: changing them must not block a resume.
_NOT_HASHED = ("output", "checkpoint", "log", "wandb")


def training_hash(cfg: TrainConfig) -> str:
    """Hash of everything that determines the trained weights (resume guard, W&B id)."""
    data = {k: v for k, v in to_dict(cfg).items() if k not in _NOT_HASHED}
    return config_hash(data)
