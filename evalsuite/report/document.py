"""A tiny document model rendered twice: Markdown (links figures) and self-contained HTML."""
from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

CSS = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:12px;margin:.5em 0 1.5em}th,td{border:1px solid #ccc;padding:2px 6px}
th{background:#f2f2f2}tr.confirmatory td{background:#fff7e0}img{max-width:100%;border:1px solid #eee}
code,pre{background:#f6f6f6}pre{padding:.5em;overflow-x:auto;font-size:12px}.missing{color:#b00}"""


@dataclass
class Doc:
    title: str
    blocks: list = field(default_factory=list)

    def h(self, level: int, text: str):
        self.blocks.append(("h", level, text))

    def p(self, text: str, cls: str = ""):
        self.blocks.append(("p", text, cls))

    def bullets(self, lines: list[str]):
        self.blocks.append(("ul", list(lines)))

    def table(self, df: pd.DataFrame, highlight: str | None = None):
        self.blocks.append(("table", df, highlight))

    def image(self, path: Path, caption: str):
        self.blocks.append(("img", Path(path), caption))

    def code(self, text: str):
        self.blocks.append(("code", text))

    # ------------------------------------------------------------------ markdown

    def markdown(self, base: Path) -> str:
        out = [f"# {self.title}", ""]
        for b in self.blocks:
            if b[0] == "h":
                out += ["#" * (b[1] + 1) + " " + b[2], ""]
            elif b[0] == "p":
                out += [b[1], ""]
            elif b[0] == "ul":
                out += [f"- {line}" for line in b[1]] + [""]
            elif b[0] == "table":
                out += [_md_table(b[1]), ""]
            elif b[0] == "img":
                out += [f"![{b[2]}]({b[1].relative_to(base).as_posix()})", f"*{b[2]}*", ""]
            elif b[0] == "code":
                out += ["```", b[1], "```", ""]
        return "\n".join(out)

    # ------------------------------------------------------------------ html

    def html(self) -> str:
        out = ["<!DOCTYPE html>", "<html><head><meta charset='utf-8'>", f"<title>{html.escape(self.title)}</title>",
               f"<style>{CSS}</style></head><body>", f"<h1>{html.escape(self.title)}</h1>"]
        for b in self.blocks:
            if b[0] == "h":
                out.append(f"<h{b[1] + 1}>{html.escape(b[2])}</h{b[1] + 1}>")
            elif b[0] == "p":
                cls = f" class='{b[2]}'" if b[2] else ""
                out.append(f"<p{cls}>{_inline(b[1])}</p>")
            elif b[0] == "ul":
                out.append("<ul>" + "".join(f"<li>{_inline(line)}</li>" for line in b[1]) + "</ul>")
            elif b[0] == "table":
                out.append(_html_table(b[1], b[2]))
            elif b[0] == "img":
                data = base64.b64encode(b[1].read_bytes()).decode()
                out.append(f"<figure><img alt='{html.escape(b[2])}' src='data:image/png;base64,{data}'>"
                           f"<figcaption>{html.escape(b[2])}</figcaption></figure>")
            elif b[0] == "code":
                out.append(f"<pre>{html.escape(b[1])}</pre>")
        out.append("</body></html>")
        return "\n".join(out)


def _inline(text: str) -> str:
    """Escaped text with Markdown's **bold** as <b> (the one inline markup the report writes)."""
    return re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", html.escape(text))


def _cell(v) -> str:
    if isinstance(v, float):
        return "" if pd.isna(v) else f"{v:.4g}"
    return str(v)


def _md_table(df: pd.DataFrame) -> str:
    if df.empty:
        return "*(none)*"
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v).replace("|", "\\|") for v in row) + " |")
    return "\n".join(lines)


def _html_table(df: pd.DataFrame, highlight: str | None) -> str:
    if df.empty:
        return "<p><em>(none)</em></p>"
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    rows = []
    for row in df.to_dict("records"):
        cls = " class='confirmatory'" if highlight and row.get(highlight) == "confirmatory" else ""
        rows.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row.values()) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
