"""TrainConfig: every knob of one training run, typed and validated before any work starts.

YAML files under configs/trainer/ hold overrides only; ``key.sub=value`` on the command line
overrides them. The config hash (of the fields that change what is trained) names the W&B run
and guards resume: a checkpoint written under another hash is refused.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from tracecause.config import bounded, config_hash, nested, one_of, to_dict
from tracecause.contracts import TRAINED_PARADIGMS, reasoning_type_problem
from tracecause.names import check_name, check_output_path
from tracecause.provenance import location_free


@dataclass
class ModelConfig:
    path: str = ""                       # HF folder or hub id
    revision: str = ""                   # pinned hub revision ("" for a local folder)


@dataclass
class DataConfig:
    path: str = ""                       # data/<id>/ folder, its data.jsonl, or a hub id
    revision: str = ""                   # pinned hub revision of a hub dataset
    rtype: str = "none"                  # reasoning type; "none" only with qa (contracts.reasoning_type_problem)
    paradigm: str = one_of("qa", TRAINED_PARADIGMS)
    loss_on_prompt: bool = False         # also supervise the user turn (not meaningful for t_only)
    max_tokens: int = bounded(2048, ge=16, help="token budget of one packed row")
    overlong: str = one_of("error", ("error", "drop", "truncate"),
                           help="what to do with a document longer than max_tokens")
    # pairs: datagen's (question, answer, reasoning) records, masked per paradigm (trainer/masks.py);
    # chat: whole conversations {id, messages, enable_thinking} supervised on the final assistant
    # turn only (pre-training a base model; trainer/chat_data.py).
    format: str = one_of("pairs", ("pairs", "chat"))
    # Replay (trainer/replay.py): a chat-format file (e.g. the base model's pre-training corpus)
    # whose records make up this share of the mixed documents, the same records for every arm;
    # it keeps a small model's chat format through fine-tuning without changing what arms differ in.
    replay_path: str = ""
    replay_fraction: float = bounded(0.0, ge=0.0, lt=0.9, help="replayed share of the mixed documents")

    def check(self):
        """Cross-field rules, checked once every layer is merged (``load`` validates each layer alone)."""
        if self.format == "chat" and (self.paradigm != "qa" or self.rtype != "none" or self.loss_on_prompt):
            raise ValueError("data.format=chat supervises each conversation's final assistant turn: leave "
                             "data.paradigm, data.rtype and data.loss_on_prompt at their defaults (they would be ignored)")
        if bool(self.replay_path) != (self.replay_fraction > 0):
            raise ValueError("data.replay_path and data.replay_fraction go together: set both (a chat-format file "
                             "and a share in (0, 0.9)) or neither")
        if self.replay_path and self.format == "chat":
            raise ValueError("data.replay_path mixes chat records into a pairs dataset; with data.format=chat "
                             "put the records into the dataset itself")
        why = reasoning_type_problem(self.paradigm, self.rtype, "data.paradigm", "data.rtype")
        if why:
            raise ValueError(why)
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
    grad_checkpointing: bool = False     # recompute each decoder layer in backward (activations ~ 2·d per token·layer)
    attention: str = one_of("auto", ("auto", "sdpa", "flash_attention_2", "flex_attention", "eager"),
                            help="auto: flash_attention_2 if installed on GPU, else flex_attention on GPU, "
                                 "else sdpa; every backend keeps packed documents apart")
    loss: str = one_of("chunked", ("chunked", "liger", "reference"),
                       help="chunked: never holds full logits; liger: Liger-kernel's fused loss (GPU, installed); "
                            "reference: lm_head + cross_entropy on full fp32 logits")
    loss_chunk_tokens: int = bounded(1024, ge=16, help="tokens per chunk of the chunked loss (peak ~ 8·chunk·vocab bytes)")
    collective_timeout_min: float = bounded(30.0, gt=0, help="timeout of one collective before the job aborts")
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
    sweep_hash: str = ""                 # the sweep's spec hash (set by launch), shown in the run's config


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

    def validate(self) -> None:
        """The run's name and the folders it writes (tracecause.names), checked on every layer."""
        if self.arm_id:  # launch names train/<arm id> by it; W&B names the run by it
            check_name(self.arm_id, "arm_id")
        for key, value in (("output.dir", self.output.dir), ("checkpoint.dir", self.checkpoint.dir),
                           ("wandb.dir", self.wandb.dir)):
            check_output_path(value, key)

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


# What does not change the trained weights: changing it must neither block a resume nor change
# the W&B run id. Dotted field paths (or whole sections), each with the reason it is left out.
NOT_IN_TRAINING_HASH = {
    "arm_id": "a readable name for what model, data, paradigm and seed already say",
    "output": "where the run folder lives and how the export is sharded",
    "checkpoint": "where and how often checkpoints are written (resume is exact at any step)",
    "log": "what is printed, and how often",
    "wandb": "where metrics are sent",
    "train.threads": "CPU threads per rank change speed, not what is computed",
    "train.attention": "flash-attention 2, sdpa and eager compute the same attention",
    "train.loss": "chunked, liger and reference compute the same cross-entropy (tests/test_trainer_lean_loss.py)",
    "train.loss_chunk_tokens": "how the chunked loss splits the tokens, not what it computes",
    "train.collective_timeout_min": "how long a hung collective waits before the job aborts",
}
# Hashed by name, not by where they live: a sweep moved or copied to another filesystem keeps
# its hash. The dataset's content is guarded by its own hash in the checkpoint.
LOCATION_FIELDS = ("model.path", "data.path", "data.replay_path")


def training_hash(cfg: TrainConfig) -> str:
    """Hash of everything that determines the trained weights (resume guard, W&B id)."""
    data = to_dict(cfg)
    for dotted in NOT_IN_TRAINING_HASH:
        *parents, last = dotted.split(".")
        node = data
        for key in parents:
            node = node[key]
        del node[last]  # a KeyError here means a renamed field: update NOT_IN_TRAINING_HASH
    for dotted in LOCATION_FIELDS:
        section, key = dotted.split(".")
        data[section][key] = location_free(data[section][key])
    return config_hash(data)
