"""What a cluster profile may put into every job script: no secrets.

``env:`` values and ``setup:`` lines are written, as text, into every sbatch script under
``<sweep>/jobs/`` (and recorded with the sweep), where anyone who can read the sweep folder reads
them. Paths and switches belong there; keys, tokens and passwords do not: they stay in the
environment of the shell that submits (SLURM and the local executor pass it on to every task) or
in the tool's own credentials file. A value that looks like one is refused at load, naming the
field and never echoing the value.
"""
from __future__ import annotations

import re

from tracecause.config import FieldError

# Variables whose value is a credential by name: *_KEY, *_TOKEN, *_SECRET, *PASSWORD.
_SECRET_NAME = re.compile(r"(?:(?:^|_)(?:API_?)?(?:KEY|TOKEN|SECRET)|PASSWORD|PASSWD)$", re.IGNORECASE)
# Well-known key shapes, wherever they appear (mixed case is checked separately: real keys are
# random base62, a folder like ``sk-learn-runs-2024`` is not).
_KEY_SHAPES = (
    re.compile(r"(?<![\w/.-])sk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}"),   # OpenAI, Anthropic
    re.compile(r"(?<![\w/.-])hf_[A-Za-z0-9]{30,}"),                    # Hugging Face
    re.compile(r"(?<![\w/.-])(?:gh[opsur]_|github_pat_)[A-Za-z0-9_]{30,}"),  # GitHub
    re.compile(r"(?<![A-Z0-9])AKIA[0-9A-Z]{16}(?![A-Z0-9])"),          # AWS access key id
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
)
_HEX40 = re.compile(r"(?<![0-9a-f])[0-9a-f]{40}(?![0-9a-f])")  # a W&B API key (also a git sha: W&B names only)
_EXPORT = re.compile(r"\bexport\s+([A-Za-z_]\w*)=(\S*)")
_SWITCHES = {"0", "1", "true", "false", "yes", "no", "on", "off"}
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

FIX = ("a cluster profile's env, setup and extra_sbatch are written into every job script under <sweep>/jobs/: "
       "keep secrets out — export it in the shell that runs `tracecause submit` (its environment reaches every "
       "task) or use the tool's credentials file (W&B: `wandb login`, ~/.netrc; Hugging Face: `hf auth login`)")


def check_profile_env(env: dict[str, str], setup: list[str], extra_sbatch: dict[str, str]) -> None:
    """Refuse ``env`` entries, ``setup`` lines and sbatch options that carry a secret, and an env
    name the shell would misread (``export NAME=...`` is written unquoted)."""
    for name, value in env.items():
        if not ENV_NAME.fullmatch(str(name)):
            raise FieldError("env.<key>", f"{name!r} is not an environment variable name "
                                          "(letters, digits and '_', not starting with a digit)")
        why = secret_problem(str(name), str(value))
        if why:
            raise FieldError(f"env.{name}", f"{why}; {FIX}")
    check_setup_lines(setup, "setup")
    for option, value in extra_sbatch.items():
        why = _shape_problem(str(option), str(value))
        if why:
            raise FieldError(f"extra_sbatch.{option}", f"{why}; {FIX}")


def check_setup_lines(setup: list[str], field: str) -> None:
    for i, line in enumerate(setup):
        why = _shape_problem("", line)
        for name, value in _EXPORT.findall(line):
            why = why or secret_problem(name, value.strip("'\""))
        if why:
            raise FieldError(f"{field}[{i}]", f"{why}; {FIX}")


def secret_problem(name: str, value: str) -> str:
    """Why ``name=value`` looks like a credential ("" when it does not)."""
    if _SECRET_NAME.search(name) and not _is_reference(value):
        return f"{name} holds a literal value ({_redacted(value)}): it looks like a secret"
    return _shape_problem(name, value)


def _shape_problem(name: str, text: str) -> str:
    for shape in _KEY_SHAPES:
        for match in shape.finditer(text):
            key = match.group(0)
            if key.startswith(("-----", "AKIA")) or _mixed_case(key):
                return f"{_redacted(key)} looks like an API key or private key"
    if ("WANDB" in name.upper() or "WANDB" in text.upper()) and _HEX40.search(text):
        return f"{_redacted(_HEX40.search(text).group(0))} looks like a W&B API key"
    return ""


def _is_reference(value: str) -> bool:
    """Not a secret itself: empty, a switch (HF_HUB_DISABLE_IMPLICIT_TOKEN=1), read at run time
    (``$VAR``, ``$(cat file)`` in a setup line), or a key file's path."""
    return not value or value.lower() in _SWITCHES or value.startswith(("$", "`", "/", "~/"))


def _mixed_case(key: str) -> bool:
    body = key.split("_", 1)[-1] if key.startswith(("hf_", "gh")) else key[3:]
    return any(c.isupper() for c in body) and any(c.islower() for c in body)


def _redacted(value: str) -> str:
    return f"'{value[:3]}…', {len(value)} characters" if len(value) > 6 else f"{len(value)} characters"
