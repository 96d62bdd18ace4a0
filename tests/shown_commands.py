"""Every command line the READMEs and ``--help`` texts show, fed to the real argument parser of its entry point.

Collected from fenced code blocks and inline code spans that start with a command this repository
ships (``tracecause``, ``python -m …``, ``python bench/…``, ``bash dev.sh``, ``.venv/bin/…``,
``torchrun … -m …``, ``slurm/local-cluster``). A shown line is a usage pattern, so each is read as one:
``[optional parts]`` are checked both left out and written in; ``a|b`` is each alternative; a bare
``…`` means "the rest, elided" and is checked as ``--help`` after what precedes it; ``<x>``, ``$VAR``
and UPPER-case words are placeholders (a placeholder the parser refuses as a choice or a number is fine).

Parsing is the entry point's own: its ``main`` runs with ``ArgumentParser.parse_args`` and
``parse_intermixed_args`` wrapped to stop right after they return, so nothing past the parse runs.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import re
import runpy
import shlex
import sys
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]
SHELL_SCRIPTS = {"bash dev.sh": ROOT / "dev.sh", "slurm/local-cluster": ROOT / "slurm" / "local-cluster"}
STARTS = ("tracecause ", "python -m ", "python bench/", ".venv/bin/", "torchrun ", *(f"{s} " for s in SHELL_SCRIPTS))
ELIDED = ("...", "…")
PLACEHOLDER = re.compile(r"^[A-Z][A-Z0-9_]*$")


# ----------------------------------------------------------------------------- collecting

def readmes() -> list[Path]:
    return [ROOT / "README.md", *sorted(ROOT.glob("*/README.md"))]


def _commands_in(text: str, inline: bool = False) -> list[str]:
    """The commands a line or code span shows (comments dropped, ``a && b`` split). An inline span that
    only names a command (`tracecause plan`, `python -m faults`) is checked as that command's --help."""
    text = text.strip().strip("`").strip()
    inner = re.match(r'^eval "\$\((.*)\)"', text)
    text = inner.group(1) if inner else text
    text = re.split(r"\s#\s|\s{2,}#", text, maxsplit=1)[0].strip()
    found = []
    for part in re.split(r"\s(?:&&|\|\||;)\s", text):
        part = part.strip()
        if not part.startswith(STARTS):
            continue
        if inline and re.fullmatch(r"(\.venv/bin/)?(tracecause|python -m [\w.]+|python bench/\w+\.py)( [a-z][a-z-]*)*",
                                   part):
            part += " --help"
        found.append(part)
    return found


def commands_in(text: str) -> list[str]:
    """Commands in markdown or help text: lines of fenced blocks (``\\`` continuations joined), inline
    ``code`` spans (one may wrap a line), and a line without code spans that starts with a command."""
    found, fenced, pending, paragraph = [], False, "", []

    def prose(lines: list[str]) -> list[str]:
        spans = re.findall(r"``?([^`]+)``?", " ".join(lines))
        whole = [c for line in lines if "`" not in line for c in _commands_in(line)]
        return [c for span in spans for c in _commands_in(span, inline=True)] + whole

    for line in text.splitlines():
        if line.strip().startswith("```"):
            found += prose(paragraph)
            fenced, pending, paragraph = not fenced, "", []
        elif fenced:
            pending += line.rstrip()
            if pending.endswith("\\"):
                pending = pending[:-1] + " "
                continue
            found += _commands_in(pending)
            pending = ""
        elif line.strip():
            paragraph.append(line)
        else:
            found += prose(paragraph)
            paragraph = []
    found += prose(paragraph)
    return list(dict.fromkeys(found))


# ----------------------------------------------------------------------------- usage patterns -> argv

def _tokens(command: str) -> list[str]:
    command = re.sub(r"<[^>]*>", "PLACEHOLDER", command)
    command = re.sub(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?", "PLACEHOLDER", command)
    command = re.sub(r"(^|\s)\{([^}\s]*\|[^}\s]*)\}", r"\1\2", command)  # {a|b|c} -> a|b|c
    tokens = shlex.split(command)
    return tokens[:tokens.index("|")] if "|" in tokens else tokens  # a shell pipe ends the command


def _optional_groups(tokens: list[str]) -> Iterator[list[str]]:
    """The tokens with every ``[...]`` group (opening at a token's start, nested or not) left out, then
    written in. ``modes=[think,no_think]`` is a value, not a group: its brackets open inside the token."""
    for keep in (False, True):
        out, depth = [], 0
        for tok in tokens:
            core = tok.lstrip("[")
            opening = len(tok) - len(core)
            body = core.rstrip("]")
            closing = len(core) - len(body) - max(body.count("[") - body.count("]"), 0)
            core = core[:len(core) - closing] if closing > 0 else core
            if (keep or depth + opening == 0) and core and core not in ELIDED:
                out.append(core)
            depth = max(depth + opening - max(closing, 0), 0)
        yield out


def argv_variants(command: str) -> list[list[str]]:
    """Each concrete argv a usage pattern stands for (a bare ``…`` ends it with ``--help``)."""
    tokens = _tokens(command)
    cut = next((i for i, t in enumerate(tokens) if t in ELIDED), None)
    if cut is not None:
        tokens = [*tokens[:cut], "--help"]
    variants = []
    for flat in _optional_groups(tokens):
        alts = [t.split("|") if "|" in t and "=" not in t else [t] for t in flat]
        variants += [list(v) for v in itertools.product(*alts)]
    return [list(v) for v in dict.fromkeys(map(tuple, variants))]


# ----------------------------------------------------------------------------- parsing for real

class _Parsed(BaseException):
    """Raised right after the real parser returned: nothing past the parse runs."""


@contextlib.contextmanager
def parse_only():
    originals = {name: getattr(argparse.ArgumentParser, name) for name in ("parse_args", "parse_intermixed_args")}

    def stopping(original):
        def parse(self, *a, **kw):
            raise _Parsed(original(self, *a, **kw))
        return parse

    for name, original in originals.items():
        setattr(argparse.ArgumentParser, name, stopping(original))
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(argparse.ArgumentParser, name, original)


def entry_point(argv: list[str]) -> tuple[str, str, list[str]]:
    """(kind, target, args): kind is launch, module, script or shell."""
    argv = list(argv)
    if argv[0].startswith(".venv/bin/"):
        argv[0] = argv[0][len(".venv/bin/"):]
    if argv[0] == "tracecause":
        return "launch", "launch.cli", argv[1:]
    if argv[0] == "torchrun" and "-m" in argv:
        argv = ["python", *argv[argv.index("-m"):]]
    if argv[0] == "python" and argv[1:2] == ["-m"]:
        return "module", argv[2], argv[3:]
    if argv[0] == "python" and len(argv) > 1 and argv[1].endswith(".py"):
        return "script", argv[1], argv[2:]
    for prefix, script in SHELL_SCRIPTS.items():
        if " ".join(argv).startswith(prefix):
            return "shell", str(script), argv[len(prefix.split()):]
    raise ValueError(f"no entry point for {' '.join(argv)!r}")


def _shell_words(script: Path) -> set[str]:
    """The subcommands and options a shell script's ``case`` arms accept."""
    words = re.findall(r"^\s+([a-z-][a-z|-]*)\)", script.read_text(), re.M)
    return {w for arm in words for w in arm.split("|")}


def _placeholder_refused(err: str) -> bool:
    bad = re.search(r"invalid (?:choice|int value|float value): '([^']*)'", err)
    return bool(bad and PLACEHOLDER.match(bad.group(1)))


def run_parser(kind: str, target: str, args: list[str], prog: str) -> tuple[int, str, str]:
    """(status, stdout, stderr) of the entry point's parse of ``args``: 0 parsed or help shown."""
    out, err = io.StringIO(), io.StringIO()
    saved_argv = sys.argv
    sys.argv = [prog, *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), parse_only():
            if kind == "launch":
                from launch.cli import main
                main(list(args))
            elif kind == "module":
                runpy.run_module(target, run_name="__main__", alter_sys=False)
            else:
                runpy.run_path(str(ROOT / target), run_name="__main__")
        status = 1
        err.write("the entry point returned without parsing its command line\n")
    except _Parsed:
        status = 0
    except SystemExit as stop:  # --help (0) or argparse's usage error (2)
        status = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        if isinstance(stop.code, str):
            err.write(stop.code)
    except Exception as exc:  # e.g. an import error: the module shown has moved
        status = 1
        err.write(f"{type(exc).__name__}: {exc}\n")
    finally:
        sys.argv = saved_argv
    return status, out.getvalue(), err.getvalue()


def problem(command: str) -> str | None:
    """Why the real parser refuses a shown command (any of its variants), or None."""
    try:
        variants = argv_variants(command)
    except ValueError as err:  # unbalanced quotes
        return f"{command}: {err}"
    for argv in variants:
        try:
            kind, target, args = entry_point(argv)
        except ValueError as err:
            return str(err)
        if kind == "shell":
            words = _shell_words(Path(target))
            unknown = [a for i, a in enumerate(args) if (i == 0 or a.startswith("-")) and a not in words]
            if unknown:
                return f"{' '.join(argv)}: {target} has no {unknown[0]!r}"
            continue
        if kind == "script":
            path = ROOT / target
            if not path.is_file():
                return f"{' '.join(argv)}: no such script {target}"
            if "argparse" not in path.read_text():
                if args and args != ["--help"]:  # a script named in prose: it exists
                    return f"{' '.join(argv)}: {target} takes no arguments (it has no parser)"
                continue
        status, _, err = run_parser(kind, target, args, argv[0])
        if status != 0 and not _placeholder_refused(err):
            return f"{' '.join(argv)}: exit {status}: {err.strip().splitlines()[-1] if err.strip() else ''}"
    return None
