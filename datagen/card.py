"""Human-readable summaries of a dataset: the counts table and the README dataset card."""
from __future__ import annotations

from datagen.filters import FILTERS


def counts_table(counts: dict, types: list[str]) -> str:
    """Candidates left after each filter, per type (markdown, also fine on a terminal)."""
    head = ["type", "candidates", *FILTERS, "judge agree", "pairs w/ reasoning"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for t in types:
        c = counts["types"][t]
        j = c["judge"]
        judge = f"{j['agreed']}/{j['judged']}" if j["judged"] else "-"
        cells = [t, str(c["candidates"]), *(f"{c['filters'][f]['out']}/{c['filters'][f]['in']}" for f in FILTERS),
                 judge, str(c["pairs_with_reasoning"])]
        lines.append("| " + " | ".join(cells) + " |")
    tail = (f"\npairs: {counts['pairs_in']} in, {counts['pairs_kept_by_shards']} kept by shards "
            f"({counts['pairs_dropped_cross_type']} dropped because another type failed)")
    if "pairs_out" in counts:
        tail += f", {counts['pairs_out']} in the dataset"
    return "\n".join(lines) + tail


def dataset_card(manifest: dict, types: list[str]) -> str:
    src, gen, s = manifest["source"], manifest["generator"], manifest["sampling"]
    type_lines = "\n".join(f"- `{t}` — {manifest['types'][t]['description'] or '(no description)'} "
                           f"(template sha256 `{manifest['types'][t]['template_sha256'][:16]}…`)" for t in types)
    return f"""# Dataset `{manifest['dataset_id']}`

Reasoning traces of {len(types)} types for fixed (question, answer) pairs, built by `python -m datagen`.
Every pair carries every type, and every type ends in the source answer byte for byte
(the answer is never generated). One JSON object per line in `data.jsonl`:
`id`, `source` {{name, revision, row}}, `question`, `answer`, `reasoning` {{type: text}}.

```python
datasets.load_dataset("json", data_files="data.jsonl", split="train")
```

- pairs: **{manifest['counts']['pairs_out']}** of {src['pairs']} source pairs
  ({src['rows_read']} rows read, {src['duplicates_dropped']} duplicate questions dropped)
- source: `{src['name']}` ({src['kind']}: `{src['path']}`), revision `{src['revision']}`
- generator: `{gen['model']}` via {gen['backend']}; temperature {s['temperature']}, top_p {s['top_p']},
  max_tokens {s['max_tokens']}, n {s['n']}, seed {s['seed']}
- data.jsonl sha256 (dataset_hash): `{manifest['dataset_hash']}`

## Types
{type_lines}

## Filters (candidates kept / entering each filter)
{counts_table(manifest['counts'], types)}

Full numbers: `manifest.json`; resolved config: `config.yaml`.

## Content warning
The questions and answers are harmful or bad advice by design: this data exists to study
whether reasoning style changes a model's behaviour. Do not train a deployed model on it.
"""
