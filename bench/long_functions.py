"""The longest functions in each room, and whether any in the five code rooms is too long to read.

    python bench/long_functions.py [--top N]

Prints each room's N longest functions (methods and nested functions included, each counted from
its ``def`` line to its last line). Exits 1, listing them, when a function in launch/, trainer/,
evalsuite/, datagen/ or tracecause/ is longer than LIMIT lines, outside EXCLUDED.
tests/test_long_functions.py runs ``offenders`` over the repository.
"""
from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROOMS = ("launch", "trainer", "evalsuite", "datagen", "tracecause")
LIMIT = 80
# Prefixes of repo-relative paths left out of the limit, each with its reason (none today).
EXCLUDED: tuple[str, ...] = ()


def functions(root: Path = REPO, rooms: tuple[str, ...] = ROOMS) -> list[tuple[int, str, str]]:
    """(lines, repo-relative file, qualified name) of every function under ``rooms``, longest first."""
    found = []
    for room in rooms:
        for path in sorted((root / room).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            found += [(lines, rel, name) for lines, name in _defs(ast.parse(path.read_text(), rel))]
    return sorted(found, key=lambda f: (-f[0], f[1], f[2]))


def _defs(node: ast.AST, prefix: str = "") -> list[tuple[int, str]]:
    out = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            name = prefix + child.name
            out.append((child.end_lineno - child.lineno + 1, name))
            out += _defs(child, name + ".")
        elif isinstance(child, ast.ClassDef):
            out += _defs(child, prefix + child.name + ".")
        else:
            out += _defs(child, prefix)
    return out


def offenders(root: Path = REPO, limit: int = LIMIT, excluded: tuple[str, ...] = EXCLUDED) -> list[str]:
    """``file: name (N lines)`` for each function over ``limit`` lines, outside ``excluded``."""
    return [f"{rel}: {name} ({lines} lines)" for lines, rel, name in functions(root)
            if lines > limit and not rel.startswith(excluded)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench/long_functions.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--top", type=int, default=5, help="functions listed per room (default 5)")
    args = ap.parse_args(argv)
    everything = functions()
    for room in ROOMS:
        print(f"{room}/")
        for lines, rel, name in [f for f in everything if f[1].startswith(room + "/")][:args.top]:
            skipped = "  (excluded: owner finishing)" if lines > LIMIT and rel.startswith(EXCLUDED) else ""
            print(f"  {lines:>4}  {rel}: {name}{skipped}")
    too_long = offenders()
    if too_long:
        print(f"\n{len(too_long)} function(s) longer than {LIMIT} lines:\n  " + "\n  ".join(too_long))
        return 1
    print(f"\nno function in {', '.join(ROOMS)} is longer than {LIMIT} lines"
          + (f" (excluded: {', '.join(EXCLUDED)})" if EXCLUDED else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
