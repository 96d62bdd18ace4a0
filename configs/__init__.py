"""YAML overrides shipped with tracecause (models, DeepSpeed, clusters, sweeps, batteries, judges, prompts).

Floor: the lowest; data and a path helper, importing nothing of the project (tests/test_house_layers.py).
"""
from __future__ import annotations

from pathlib import Path

CONFIG_ROOT = Path(__file__).resolve().parent


def config_path(kind: str, name: str) -> Path:
    """``config_path("models", "qwen3-0.6b")`` -> the YAML file; a path that exists is returned as is."""
    candidate = Path(name)
    if candidate.suffix in (".yaml", ".yml", ".jinja", ".txt") and candidate.is_file():
        return candidate
    folder = CONFIG_ROOT / kind
    for suffix in ("", ".yaml", ".yml"):
        path = folder / f"{name}{suffix}"
        if path.is_file():
            return path
    known = sorted(p.stem for p in folder.glob("*.y*ml")) if folder.is_dir() else []
    raise FileNotFoundError(f"no {kind} config named {name!r} in {folder}; known: {known}")
