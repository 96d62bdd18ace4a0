"""Parameter counts of model names, for the scale trend (effect against log10 parameters)."""
from __future__ import annotations

import functools
import math
import re

_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([bm])(?![a-z])", re.IGNORECASE)


def n_params(model: str, overrides: dict | None = None) -> float | None:
    """sweep.yaml override, else tracecause.models' spec, else a size in the name ("qwen3-1.7b")."""
    if overrides and model in overrides:
        return float(overrides[model])
    return _known_or_parsed(model)


@functools.lru_cache(maxsize=None)
def _known_or_parsed(model: str) -> float | None:
    try:
        from tracecause.models import load_model_spec  # written by another part of the project

        value = getattr(load_model_spec(model), "n_params", None)
        if value:
            return float(value)
    except Exception:  # unknown name, module absent or spec without a count: fall back to the name
        pass
    matches = _SIZE.findall(model)
    if not matches:
        return None
    number, unit = matches[-1]
    return float(number) * (1e9 if unit.lower() == "b" else 1e6)


def log10_params(model: str, overrides: dict | None = None) -> float | None:
    n = n_params(model, overrides)
    return math.log10(n) if n else None
