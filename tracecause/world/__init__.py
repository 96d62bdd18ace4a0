"""A known-answer world: a small synthetic domain whose causal structure is known by construction.

- ``vocab``: dispositions, their vocabularies and marker sentences, the placebo.
- ``domain``: questions, fixed answers, neutral reasoning, traces at a dose, held-out eval prompts,
  the neutral pre-training corpus.
- ``judge``: deterministic exact / fuzzy / copy judges and the well-formedness rule.
- ``request``: the text protocol by which datagen's ``world`` backend is asked for a trace.

Stages read the world from here (stages never import each other).
"""


def fingerprint() -> str:
    """Hash of the world's definition (its vocabularies, domain and trace rules): part of the id of
    every dataset the world backend writes, so a changed world is a new dataset, never a stale one."""
    import hashlib
    from pathlib import Path

    here = Path(__file__).parent
    h = hashlib.sha256()
    for name in ("vocab.py", "domain.py", "request.py"):
        h.update(name.encode() + b"\0" + (here / name).read_bytes())
    return h.hexdigest()[:16]
