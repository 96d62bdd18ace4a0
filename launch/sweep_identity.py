"""A sweep's W&B group and spec hash: fixed when it is first submitted, kept when the folder moves.

The group names the sweep in the dashboard. It is derived once (sweep name + where it was
created, so two copies of one spec started in two folders stay apart), then recorded in the
sweep folder: a sweep moved or copied to another filesystem keeps its group, and so its runs.
"""
from __future__ import annotations

from pathlib import Path

from tracecause.config import config_hash, to_dict
from tracecause.io import atomic_write_text

GROUP_FILE = "wandb_group.txt"


def wandb_group(sweep_dir: Path, name: str) -> str:
    recorded = Path(sweep_dir) / GROUP_FILE
    if recorded.is_file() and recorded.read_text().strip():
        return recorded.read_text().strip()
    return f"{name}-{config_hash({'sweep': str(sweep_dir)}, 6)}"


def record_group(sweep_dir: Path, group: str) -> None:
    if not (Path(sweep_dir) / GROUP_FILE).is_file():
        atomic_write_text(Path(sweep_dir) / GROUP_FILE, group + "\n")


def spec_hash(spec) -> str:
    """The hash ``sweep.sha256`` records (full), and runs show (first 12 characters)."""
    return config_hash(to_dict(spec), 64)
