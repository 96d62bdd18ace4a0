"""Every room imports only rooms on the floors below it (README.md, Layout).

Floors, low to high: configs (shipped YAML and a path helper) -> tracecause (the shared core) ->
slurm (what the launcher uses of SLURM) -> the three stages (datagen, trainer, evalsuite; they
never import each other and meet through tracecause/contracts.py) -> launch (the login node) ->
faults (the fault-injection harness that drives launch on a real cluster) -> bench and tests.
Imports are read from the source (ast), in-function ones and ``importlib.import_module("...")``
included, so an import that only runs on some path is still seen.
"""
from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

FLOORS = (("configs",), ("tracecause",), ("slurm",), ("datagen", "trainer", "evalsuite"), ("launch",),
          ("faults",), ("bench", "tests"))
FLOOR = {room: level for level, rooms in enumerate(FLOORS) for room in rooms}
TOP = len(FLOORS) - 1  # bench and tests may use each other's helpers
NOT_ROOMS = {"sweeps"}  # sweep outputs, never source (hidden folders: .venv, .state, ...)


def imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``tree``; relative imports stay in their room."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            found.append((node.lineno, node.args[0].value))
    return found


def upward_imports(root: Path) -> list[str]:
    """One line per import that runs up a floor, or sideways between two rooms of one floor."""
    offenders = []
    for room, level in FLOOR.items():
        for path in sorted((root / room).rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            for line, module in imported_modules(ast.parse(path.read_text(), str(path))):
                target = module.split(".")[0]
                if target == room or target not in FLOOR:
                    continue
                if FLOOR[target] > level or (FLOOR[target] == level and level != TOP):
                    offenders.append(f"{path.relative_to(root)}:{line} imports {module} "
                                     f"({target} is {'above' if FLOOR[target] > level else 'beside'} {room})")
    return offenders


def test_no_import_runs_up_a_floor():
    offenders = upward_imports(ROOT)
    assert not offenders, "imports against the floors (README.md, Layout):\n" + "\n".join(offenders)


def test_every_python_room_has_a_floor():
    folders = [d for d in ROOT.iterdir() if d.is_dir() and not d.name.startswith(".") and d.name not in NOT_ROOMS]
    rooms = {d.name for d in folders if next(d.rglob("*.py"), None)}
    assert rooms <= set(FLOOR), f"rooms with no floor in {__name__}.FLOORS: {sorted(rooms - set(FLOOR))}"


def test_the_old_layout_is_caught(tmp_path):
    """The arrows this layout removed (the fault harness inside slurm/, above launch) and a stage
    importing another are reported, each with its file and line; imports down a floor are not."""
    files = {
        "slurm/faults/jobs.py": "from tracecause.io import is_complete\n\ndef f():\n"
                                "    from launch.executors import submit_slurm\n",
        "slurm/faults/__main__.py": 'import importlib\nimportlib.import_module("launch.stages")\n',
        "evalsuite/judge.py": "import datagen.merge\nfrom slurm.cluster import sacct_states\n",
        "launch/stages.py": "from evalsuite import outputs\nfrom .graph import Job\n",
        "tests/test_x.py": "from bench import mutations\nfrom faults import inject\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert upward_imports(tmp_path) == [
        "slurm/faults/__main__.py:2 imports launch.stages (launch is above slurm)",
        "slurm/faults/jobs.py:4 imports launch.executors (launch is above slurm)",
        "evalsuite/judge.py:1 imports datagen.merge (datagen is beside evalsuite)",
    ]
