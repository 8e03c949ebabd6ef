"""Query-focused snippets: the part of a chunk that answers, not the chunk's first lines.

A chunk is ~250 tokens; a citation shows ``snippet_chars`` of it. Lawyers need the clause itself, so
the snippet starts at the run of sentences that holds most of the question's terms (the same stemmed
BM25 terms the sparse branch searches with); ties go to the earlier run, so a chunk whose head
already answers is shown from its head.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ingest.embedding.port import SparseEncoder

SENTENCE_START = re.compile(r"(?:(?<=[.!?;:])\s+|\n+)(?=\S)")
ELLIPSIS = " …"


@dataclass(frozen=True)
class Focus:
    """The question's terms and the encoder that makes them (a chunk's sentences are encoded alike)."""

    encoder: SparseEncoder
    terms: frozenset[int]


def snippet(text: str, chars: int, focus: Focus | None = None) -> str:
    """At most ``chars`` characters of ``text`` (plus ellipses), cut at a word boundary."""
    if len(text) <= chars:
        return text
    start = focus_start(text, chars, focus) if focus is not None and focus.terms else 0
    window = text[start : start + chars]
    cut = window if start + chars >= len(text) else window.rsplit(" ", 1)[0] + ELLIPSIS
    return ("… " if start else "") + cut


def focus_start(text: str, chars: int, focus: Focus) -> int:
    """Offset of the sentence whose ``chars``-wide run of whole sentences holds most of the question's terms."""
    starts = sentence_starts(text)
    ends = [*starts[1:], len(text)]
    encode = focus.encoder.embed_passage
    terms = [frozenset(encode(text[a:b]).indices) & focus.terms for a, b in zip(starts, ends, strict=True)]
    best, best_score = 0, -1
    for i, start in enumerate(starts):
        covered: set[int] = set()
        for j in range(i, len(starts)):
            if j > i and ends[j] - start > chars:
                break  # only sentences shown whole count (the first is shown from its start)
            covered |= terms[j]
        if len(covered) > best_score:
            best, best_score = start, len(covered)
    return best


def sentence_starts(text: str) -> list[int]:
    """Offsets where a sentence, clause or line of ``text`` begins (always including 0)."""
    return [0, *(m.end() for m in SENTENCE_START.finditer(text) if m.end() < len(text))]
