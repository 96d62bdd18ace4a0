"""Names that become folder names, and the output folders built from them.

Model names, arm ids and dataset ids are joined onto a sweep folder (``train/<arm id>``,
``data/<dataset id>``, ``eval/<arm id>/<mode>``): a ``/``, a ``..`` or an absolute path there
would write outside it. Each stage checks the names it turns into paths when its config loads,
so a bad one is refused before anything is written, naming the file and the field.
"""
from __future__ import annotations

import string
from pathlib import PurePath

from tracecause.config import FieldError

SAFE_CHARS = "letters, digits, '.', '-', '_'"
MAX_NAME_CHARS = 128  # far below the file systems' 255 bytes: an arm id adds type, paradigm and seed
_ALLOWED = frozenset(string.ascii_letters + string.digits + "._-")


def name_problem(value: object) -> str:
    """Why ``value`` cannot be one folder name ("" when it can)."""
    if not isinstance(value, str) or not value:
        return "a name is required"
    if value.startswith(("/", "~", "\\")) or value[1:3] in (":\\", ":/"):  # POSIX, home, Windows
        return "an absolute path, not a name"
    if ".." in value:
        return "it contains '..'"
    if "/" in value or "\\" in value:
        return "it contains a path separator"
    if value[0] in ".-":
        return f"it starts with {value[0]!r}"
    bad = sorted(set(value) - _ALLOWED)
    if bad:
        return f"it contains {''.join(bad)!r}"
    if len(value) > MAX_NAME_CHARS:
        return f"{len(value)} characters (at most {MAX_NAME_CHARS})"
    return ""


def check_name(value: object, field: str) -> None:
    """Refuse ``value`` as a folder name, naming ``field`` (``from_dict`` adds the file)."""
    why = name_problem(value)
    if why:
        raise FieldError(field, f"{value!r} is not a safe name: {why} — use {SAFE_CHARS}")


def check_output_path(value: str, field: str) -> None:
    """An output folder given whole (absolute or relative) may not climb with ``..``: what it names
    must be what is written, whatever the working directory or a symlink above it."""
    if ".." in PurePath(value).parts:
        raise FieldError(field, f"{value!r} contains '..': give the folder without it (e.g. its absolute path)")
