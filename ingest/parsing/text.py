"""Formats whose text is the file itself: plain text, Markdown and CSV.

Citations and evaluation spans are ``str`` offsets into the uploaded file, so for these formats
``ParsedDocument.text`` is the decoded file, and paragraphs (or CSV rows) are located in it
rather than re-extracted.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ingest.errors import EmptyDocument
from ingest.parsing import sniff
from ingest.parsing.port import Element, ParsedDocument
from ingest.parsing.tabular import csv_rows

_MD_HEADING = re.compile(r" {0,3}#{1,6}(?:[ \t]|$)")
_MD_FENCE = re.compile(r" {0,3}(?:```|~~~)")


def parse_text(text: str, mime: str) -> ParsedDocument:
    """Plain text or Markdown: the text is the file; elements are its paragraphs, located in place.

    :raises EmptyDocument: the file holds only whitespace.
    """
    markdown = mime == sniff.MARKDOWN
    elements = [Element(text[start:end], start, end, None, kind) for start, end, kind in _text_blocks(text, markdown)]
    if not elements:
        raise EmptyDocument("no extractable text: the file contains only whitespace; upload the document with text")
    title = next((_heading_text(e.text) for e in elements if e.kind == "title"), None) if markdown else None
    return ParsedDocument(text, elements, 1, mime, title)


def parse_csv(text: str) -> ParsedDocument:
    """CSV: the text is the file; each row (the header included) is one ``table`` element.

    :raises EmptyDocument: no row holds a value.
    """
    elements = [Element(text[start:end], start, end, None, "table") for start, end in csv_rows(text)]
    if not elements:
        raise EmptyDocument("no extractable text: the CSV file has no values; upload a file with data rows")
    return ParsedDocument(text, elements, 1, sniff.CSV, None)


def _text_blocks(text: str, markdown: bool) -> Iterator[tuple[int, int, str]]:
    """Yield ``(start, end, kind)`` per paragraph (lines between blank lines), whitespace trimmed.

    In Markdown a heading line is a block of its own even without blank lines around it, except
    inside fenced code, where ``#`` starts a comment, not a heading.
    """
    start: int | None = None
    end = offset = 0
    fenced = False
    for line in text.splitlines(keepends=True):
        line_start, offset = offset, offset + len(line)
        content = line.strip()
        if markdown and _MD_FENCE.match(line):
            fenced = not fenced
        heading = markdown and not fenced and _MD_HEADING.match(line) is not None
        if start is not None and (not content or heading):
            yield start, end, "text"
            start = None
        if not content:
            continue
        first = line_start + len(line) - len(line.lstrip())
        last = line_start + len(line.rstrip())
        if heading:
            yield first, last, "title"
            continue
        start = first if start is None else start
        end = last
    if start is not None:
        yield start, end, "text"


def _heading_text(line: str) -> str | None:
    return line.strip().strip("#").strip() or None
