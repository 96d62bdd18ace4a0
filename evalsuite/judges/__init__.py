"""The judges: what reads a generated sample and returns a verdict.

- ``stage.py``: the ``judge`` stage (``python -m evalsuite judge``): samples.jsonl -> judged.jsonl, cached.
- ``rubrics.py``: the LLM rubric judges: prompt files, rendering, strict parsers of the replies.
- ``backends.py``: where an LLM judge runs: vLLM offline or an OpenAI-compatible HTTP endpoint.
- ``world.py``: the known-answer world's deterministic rule judge (dispositions and its controls).

This file imports nothing, so importing one judge module never loads the others.
"""
