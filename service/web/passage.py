"""A cited passage as the page shows it: the cited chunk with its neighbours, and where the citation lies in it.

Chunks are exact slices of the document's extracted text, so the chunks around a citation can be
laid side by side at their offsets; gaps between them (whitespace the chunker dropped) become
spaces, which keeps every character at its document offset. The chunks are read through the index
with the caller's own access filter narrowed to the one document: what search would not show the
caller, this does not show either.
"""

from __future__ import annotations

import dataclasses
from math import sqrt

from pydantic import BaseModel, Field

from ingest.errors import NotFound
from ingest.index.port import ChunkRecord, SparseVector
from ingest.runtime import Components
from ingest.store.models import Document
from service.answering.sentences import split
from service.auth import Principal

MAX_CHUNKS = 2000  # a document's chunks read to find the cited one (documents are far smaller in practice)
CONTEXT = 1  # neighbouring chunks shown on each side of the cited one


class Passage(BaseModel):
    document_id: str
    title: str
    page: int | None
    page_end: int | None
    ocr: bool
    start: int = Field(description="the cited span's start in the document's extracted text (the citation's start)")
    end: int
    offset: int = Field(description="document offset of the first character of `text`")
    text: str = Field(description="the cited span with the chunks around it")
    highlight_start: int = Field(description="where the cited span starts in `text`")
    highlight_end: int
    chunk_ids: list[str]


def document_chunks(components: Components, principal: Principal, document: Document) -> list[ChunkRecord]:
    """The document's chunks that the caller may see (any order, any version still indexed)."""
    access = dataclasses.replace(principal.access(), document_ids=(document.id,))
    dim = components.embedder.dim
    probe = [1.0 / sqrt(dim)] * dim  # any direction: the filter, not the ranking, selects the chunks
    limit = max(1, min(document.chunk_count or MAX_CHUNKS, MAX_CHUNKS))
    found = components.index.search(probe, SparseVector([], []), access, limit, "dense").chunks
    records = [c.record for c in found if c.record.document_id == document.id]
    return records


def passage_of(document: Document, chunks: list[ChunkRecord], start: int, end: int) -> Passage:
    """The chunk that holds ``start``–``end`` (a whole chunk, or a cited sentence inside one) with its neighbours.

    :raises NotFound: no chunk of the document's current version holds that span.
    """
    current = sorted([c for c in chunks if c.version == document.version] or chunks, key=lambda c: c.ordinal)
    at = _holding(current, start, end)
    if at is None:
        raise NotFound(
            f"no cited passage at characters {start}-{end} of document {document.id}; "
            "ask again: the document may have a newer version",
            param="start",
        )
    shown = current[max(0, at - CONTEXT) : at + CONTEXT + 1]
    cited = current[at]
    text, offset, low, high = _lay_out(shown, cited)
    if (start, end) != (cited.start, cited.end) and high - low == cited.end - cited.start:
        low, high = start - offset, end - offset  # a sentence of an exact slice: highlight just that sentence
    return Passage(
        document_id=document.id,
        title=document.title,
        page=cited.page,
        page_end=cited.page_end,
        ocr=cited.ocr,
        start=start,
        end=end,
        offset=offset,
        text=text,
        highlight_start=low,
        highlight_end=high,
        chunk_ids=[c.id for c in shown],
    )


def _holding(chunks: list[ChunkRecord], start: int, end: int) -> int | None:
    """Index of the chunk spanning exactly ``start``–``end``, else of one with a sentence spanning exactly that
    (what an answer cites); any other span is no citation."""
    exact = next((i for i, c in enumerate(chunks) if c.start == start and c.end == end), None)
    if exact is not None:
        return exact
    return next(
        (
            i
            for i, c in enumerate(chunks)
            if c.start <= start
            and end <= c.end
            and len(c.text) == c.end - c.start
            and any((c.start + s.start, c.start + s.end) == (start, end) for s in split(c.text))
        ),
        None,
    )


def _lay_out(chunks: list[ChunkRecord], cited: ChunkRecord) -> tuple[str, int, int, int]:
    """(text, its document offset, the cited span in it). Exact slices go at their offsets (overlaps
    agree, gaps become spaces); text that was rewritten at ingestion (redacted) is joined instead."""
    offset = min(c.start for c in chunks)
    if all(len(c.text) == c.end - c.start for c in chunks):
        buffer = [" "] * (max(c.end for c in chunks) - offset)
        for chunk in chunks:
            buffer[chunk.start - offset : chunk.end - offset] = chunk.text
        return "".join(buffer), offset, cited.start - offset, cited.end - offset
    before = "".join(c.text + "\n\n" for c in chunks if c.ordinal < cited.ordinal)
    after = "".join("\n\n" + c.text for c in chunks if c.ordinal > cited.ordinal)
    return before + cited.text + after, offset, len(before), len(before) + len(cited.text)
