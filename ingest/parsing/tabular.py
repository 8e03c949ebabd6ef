"""Tables: CSV files and the tables inside office documents, kept one row per element.

The chunker packs elements whole, so a row that is its own element is never split between two
chunks (only a single row longer than the chunk budget is). A CSV's text is the file itself, so
citations are offsets into the file, as for plain text; its header row opens the document and so
travels in the context header embedded with every chunk.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import PurePath

import lxml.html

CSV = "text/csv"
CSV_SUFFIXES = {".csv", ".tsv"}
_DELIMITERS = ",;\t|"
_SAMPLE_LINES = 50
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")
_CELL_SEPARATOR = " | "


def looks_like_csv(text: str, filename: str) -> bool:
    """True for delimited rows: every sampled row has the same number (two or more) of fields.

    Content decides; a ``.csv``/``.tsv`` name only relaxes the check to allow ragged rows.
    """
    lines = [line for line in _LINE.findall(text[:65536])[:_SAMPLE_LINES] if line.strip()]
    if len(lines) < 2:
        return False
    dialect = _dialect("".join(lines))
    if dialect is None:
        return False
    widths = {len(row) for row in csv.reader(lines[:-1] if len(lines) > 2 else lines, dialect)}
    if PurePath(filename).suffix.lower() in CSV_SUFFIXES:
        return max(widths) >= 2
    return len(widths) == 1 and widths.pop() >= 2 and len(lines) >= 3


def _dialect(sample: str) -> type[csv.Dialect] | None:
    try:
        return csv.Sniffer().sniff(sample, delimiters=_DELIMITERS)
    except csv.Error:
        return None


def csv_rows(text: str) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of each non-blank row, trimmed; a quoted field may span lines."""
    dialect = _dialect("".join(_LINE.findall(text[:65536])[:_SAMPLE_LINES])) or csv.excel
    position = 0

    def lines() -> Iterator[str]:
        nonlocal position
        for line in _LINE.findall(text):
            position += len(line)
            yield line

    row_start = 0
    for row in csv.reader(lines(), dialect):
        row_end = position  # the reader pulls lines one at a time, so this is where the row ends
        if any(cell.strip() for cell in row):
            yield _trimmed(text, row_start, row_end)
        row_start = row_end


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def html_table_rows(table_html: str) -> list[str]:
    """The rows of an ``unstructured`` table (its ``text_as_html``), cells joined by `` | ``.

    Empty rows are dropped; an empty list means the table holds no text at all.
    """
    try:
        root = lxml.html.fragment_fromstring(table_html, create_parent="div")
    except Exception:  # noqa: BLE001 - malformed markup: the caller falls back to the flat text
        return []
    rows = []
    for tr in root.iter("tr"):
        cells = [" ".join(cell.text_content().split()) for cell in tr if cell.tag in ("td", "th")]
        if any(cells):
            rows.append(_CELL_SEPARATOR.join(cells))
    return rows
