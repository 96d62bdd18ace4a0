"""No function in the five code rooms is longer than 80 lines (bench/long_functions.py walks the AST)."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import long_functions  # noqa: E402


def test_no_function_in_the_code_rooms_is_longer_than_the_limit():
    too_long = long_functions.offenders()
    assert not too_long, (f"functions longer than {long_functions.LIMIT} lines (split them at their seams):\n  "
                          + "\n  ".join(too_long))


def test_the_walk_finds_a_long_method_and_a_long_nested_function_and_honours_the_exclusions(tmp_path):
    body = "".join(f"        x{i} = {i}\n" for i in range(long_functions.LIMIT))
    (tmp_path / "trainer").mkdir()
    (tmp_path / "trainer" / "loop.py").write_text(f"class Loop:\n    def run(self):\n{body}\n\n"
                                                  f"def short():\n    def inner():\n{body}")
    (tmp_path / "launch").mkdir()
    (tmp_path / "launch" / "demo.py").write_text(f"def run():\n    if True:\n{body}")
    found = long_functions.offenders(tmp_path, excluded=("launch/demo.py",))
    assert found == [f"trainer/loop.py: short ({long_functions.LIMIT + 2} lines)",
                     f"trainer/loop.py: Loop.run ({long_functions.LIMIT + 1} lines)",
                     f"trainer/loop.py: short.inner ({long_functions.LIMIT + 1} lines)"], found
    assert "launch/demo.py: run" in "\n".join(long_functions.offenders(tmp_path, excluded=()))
