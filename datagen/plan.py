"""Resolve a config into a plan: dataset id, folders, types and the validated source.

Everything that can be wrong with the input is found here — before any model starts,
before any job is submitted (launch calls ``make_plan`` on the login node).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from tracecause.config import ConfigError, config_hash, load, to_dict, write_resolved
from tracecause.provenance import location_free
from tracecause.contracts import SweepLayout
from tracecause.io import atomic_write_json, is_complete, read_json

from configs import config_path
from datagen.config import DatagenConfig, check_complete
from datagen.source import LoadedSource, describe_unloaded, load_source, resolve_revision
from datagen.types import ReasoningType, load_types

# Knobs that change how fast or where, never what is generated: not part of the dataset id.
_TRANSPORT = ("concurrency", "timeout", "max_retries", "backoff", "backoff_max", "api_key_env",
              "retry_after_max", "requests_per_s")


def load_config(config: str | Path | None, overrides: Iterable[str] = ()) -> DatagenConfig:
    try:
        paths = [config_path("datagen", str(config))] if config else []
    except FileNotFoundError as err:
        raise ConfigError(str(config), "", str(err)) from None
    cfg = load(DatagenConfig, paths, list(overrides))
    check_complete(cfg, source=" + ".join(map(str, paths)) or "overrides")
    return cfg


def identity(cfg: DatagenConfig, types: list[ReasoningType]) -> dict:
    """What the dataset depends on: hashed into the dataset id."""
    d = to_dict(cfg)
    d.pop("output"), d.pop("shards"), d.pop("types_dir")
    for gen in (d["generator"], d["filters"]["judge"]["generator"]):
        gen.pop("batch_size")
        gen["model"] = location_free(gen["model"])  # by name: a moved sweep keeps its dataset id
        for k in _TRANSPORT:
            gen["openai"].pop(k)
    d["types"] = {t.name: t.template_hash for t in types}
    if cfg.generator.backend == "world":  # the world's rules write the traces: they are part of the data
        from tracecause.world import fingerprint

        d["world"] = fingerprint()
    return d


@dataclass
class Plan:
    cfg: DatagenConfig            # resolved: source.revision and output.dataset_id filled in
    types: list[ReasoningType]
    source: LoadedSource
    dataset_id: str
    data_dir: Path
    num_shards: int

    @property
    def shards_dir(self) -> Path:
        return self.data_dir / "shards"

    def shard_dir(self, shard: int) -> Path:
        return self.shards_dir / f"shard-{shard:05d}-of-{self.num_shards:05d}"

    def missing_shards(self) -> list[int]:
        return [k for k in range(self.num_shards) if not is_complete(self.shard_dir(k))]

    def summary(self) -> dict:
        return {"dataset_id": self.dataset_id, "data_dir": str(self.data_dir), "num_shards": self.num_shards,
                "types": [t.name for t in self.types],
                "pairs": len(self.source.pairs) if self.source.loaded else None,
                "source": {"name": self.source.name, "revision": self.source.revision},
                "complete": is_complete(self.data_dir), "missing_shards": self.missing_shards(),
                "shard_dirs": [str(self.shard_dir(k)) for k in range(self.num_shards)]}


def make_plan(cfg: DatagenConfig, num_shards: int | None = None, load_hub: bool = True) -> Plan:
    """``load_hub=False``: a hub source is described, not downloaded (launch's login-node plan)."""
    types = load_types(cfg.types, cfg.types_dir)
    revision = resolve_revision(cfg.source)
    cfg = dataclasses.replace(cfg, source=dataclasses.replace(cfg.source, revision=revision))
    source = load_source(cfg.source) if load_hub or cfg.source.kind != "hub" else describe_unloaded(cfg.source)
    dataset_id = cfg.output.dataset_id or f"dg-{config_hash(identity(cfg, types))}"
    cfg = dataclasses.replace(cfg, output=dataclasses.replace(cfg.output, dataset_id=dataset_id))
    n = num_shards or cfg.shards
    if n < 1:
        raise ConfigError("command line", "--num-shards", f"must be >= 1, got {n}")
    cfg = dataclasses.replace(cfg, shards=n)
    data_dir = SweepLayout(Path(cfg.output.root).resolve()).data(dataset_id)
    _check_existing(data_dir, cfg, types)
    return Plan(cfg, types, source, dataset_id, data_dir, n)


IDENTITY_FILE = "identity.json"


def _check_existing(data_dir: Path, cfg: DatagenConfig, types: list[ReasoningType]) -> None:
    """A dataset folder built from another config must not be reused (explicit dataset_id)."""
    path = data_dir / IDENTITY_FILE
    if path.is_file() and read_json(path) != identity(cfg, types):
        raise ConfigError("output", "dataset_id", f"{data_dir} holds a dataset built from a different config "
                                                  f"(see {path}); pick another output.dataset_id or leave it empty")


def write_identity(plan: Plan) -> None:
    """Written when the first shard starts; the resolved config goes next to it."""
    if not (plan.data_dir / IDENTITY_FILE).is_file():
        write_resolved(plan.cfg, plan.data_dir)
        atomic_write_json(plan.data_dir / IDENTITY_FILE, identity(plan.cfg, plan.types))
