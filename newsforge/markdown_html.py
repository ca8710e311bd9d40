"""The small Markdown subset of newsforge's reports as HTML: ``#`` headings, pipe tables (with alignment
rows and ``\\|`` in cells), paragraphs, ``**bold**`` and ```code```. Everything else is escaped text."""
from __future__ import annotations

import html
import re

_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_ALIGN_CELL = re.compile(r"^:?-{1,}:?$")


def inline(text: str) -> str:
    """Escape ``text`` and render ``**bold**`` and ```code``` spans."""
    out = html.escape(text, quote=False)
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", out)


def table_cells(line: str) -> list[str]:
    """The cells of a pipe-table row; ``\\|`` is a literal bar inside a cell."""
    body = line.strip()
    body = body.removeprefix("|")
    body = body[:-1] if body.endswith("|") and not body.endswith("\\|") else body
    return [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", body)]


def _is_align_row(line: str) -> bool:
    cells = table_cells(line)
    return bool(cells) and all(_ALIGN_CELL.match(c) for c in cells)


def _alignment(cell: str) -> str:
    if cell.startswith(":") and cell.endswith(":"):
        return "center"
    return "right" if cell.endswith(":") else "left"


def _table(lines: list[str]) -> str:
    header, aligns = table_cells(lines[0]), [_alignment(c) for c in table_cells(lines[1])]

    def align(k: int) -> str:
        return aligns[k] if k < len(aligns) else "left"

    head = "".join(f'<th style="text-align:{align(k)}">{inline(c)}</th>' for k, c in enumerate(header))
    rows = []
    for line in lines[2:]:
        cells = table_cells(line)
        rows.append("<tr>" + "".join(f'<td style="text-align:{align(k)}">{inline(c)}</td>'
                                     for k, c in enumerate(cells)) + "</tr>")
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>"


def markdown_to_html(text: str) -> str:
    """HTML for ``text`` (see the module docstring for the subset understood)."""
    blocks: list[str] = []
    paragraph: list[str] = []
    lines = text.splitlines()

    def flush() -> None:
        if paragraph:
            blocks.append("<p>" + "<br>\n".join(inline(p) for p in paragraph) + "</p>")
            paragraph.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        heading = _HEADING.match(line.strip())
        if not line.strip():
            flush()
        elif heading:
            flush()
            level = len(heading[1])
            blocks.append(f"<h{level}>{inline(heading[2])}</h{level}>")
        elif line.lstrip().startswith("|") and i + 1 < len(lines) and _is_align_row(lines[i + 1]):
            flush()
            end = i + 2
            while end < len(lines) and lines[end].lstrip().startswith("|"):
                end += 1
            blocks.append(_table(lines[i:end]))
            i = end
            continue
        else:
            paragraph.append(line.strip())
        i += 1
    flush()
    return "\n".join(blocks)
