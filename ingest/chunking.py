"""Structure-aware, token-bounded chunking.

Tokens are counted with the embedder's own tokenizer, so no chunk is silently truncated by the
model. Every chunk is an exact slice ``text[start:end]`` of the extracted text (citations can be
verified character by character). Elements (paragraphs, table rows, list items) are packed whole;
a title starts a new chunk; only an element longer than the budget is split, at word boundaries,
with a small overlap between its windows.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tokenizers import Tokenizer

from ingest.parsing.port import Element, ParsedDocument


@dataclass(frozen=True)
class ChunkSpan:
    ordinal: int
    start: int
    end: int
    text: str
    page: int | None
    page_end: int | None
    token_count: int


@dataclass(frozen=True)
class _Piece:
    """A run of whole tokens inside one element."""

    start: int
    end: int
    tokens: int
    page: int | None
    is_title: bool


class TokenChunker:
    """Packs a parsed document into chunks of at most ``max_tokens`` tokens."""

    def __init__(self, tokenizer: Any, max_tokens: int = 200, overlap_tokens: int = 24) -> None:
        if overlap_tokens >= max_tokens:
            raise ValueError("overlap_tokens must be smaller than max_tokens")
        self._tokenizer = tokenizer
        self._backend = _untruncated(tokenizer)
        self.max_tokens = max_tokens
        self.overlap = overlap_tokens

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        """Character spans of every token of ``text`` (no special tokens)."""
        if self._backend is not None:
            return [tuple(o) for o in self._backend.encode(text, add_special_tokens=False).offsets]
        encoded = self._tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        return [tuple(o) for o in encoded["offset_mapping"]]

    def chunk(self, doc: ParsedDocument) -> list[ChunkSpan]:
        """Split ``doc`` into chunks; returns them in reading order."""
        offsets = [o for o in self.token_offsets(doc.text) if o[1] > o[0]]
        starts = [o[0] for o in offsets]
        pieces: list[_Piece] = []
        for element in doc.elements:
            pieces.extend(self._pieces(element, offsets, starts, doc.text))
        return self._pack(pieces, doc.text)

    def _pieces(
        self, element: Element, offsets: Sequence[tuple[int, int]], starts: Sequence[int], text: str
    ) -> list[_Piece]:
        lo = bisect_left(starts, element.start)
        hi = bisect_right(starts, element.end - 1)
        tokens = list(offsets[lo:hi])
        is_title = element.kind == "title"
        if len(tokens) <= self.max_tokens:
            return [_Piece(element.start, element.end, len(tokens), element.page, is_title)] if tokens else []
        return [
            _Piece(tokens[a][0], tokens[b - 1][1], b - a, element.page, is_title)
            for a, b in self._windows(tokens, text)
        ]

    def _windows(self, tokens: Sequence[tuple[int, int]], text: str) -> list[tuple[int, int]]:
        """Token windows [a, b) of at most max_tokens, ending at word boundaries, overlapping."""
        windows: list[tuple[int, int]] = []
        a = 0
        while a < len(tokens):
            b = min(a + self.max_tokens, len(tokens))
            b = _word_boundary(tokens, text, a, b)
            windows.append((a, b))
            if b >= len(tokens):
                break
            a = max(_word_start(tokens, text, b - self.overlap), a + 1)
        return windows

    def _pack(self, pieces: Sequence[_Piece], text: str) -> list[ChunkSpan]:
        chunks: list[ChunkSpan] = []
        group: list[_Piece] = []
        for piece in pieces:
            tokens = sum(p.tokens for p in group)
            title_break = piece.is_title and group and not all(p.is_title for p in group)
            if group and (tokens + piece.tokens > self.max_tokens or title_break or piece.start < group[-1].end):
                chunks.append(_span(len(chunks), group, text))
                group = []
            group.append(piece)
        if group:
            chunks.append(_span(len(chunks), group, text))
        return chunks


def _untruncated(tokenizer: Any) -> Any:
    """A private copy of the fast tokenizer without the model's truncation (it would drop text)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    copy = Tokenizer.from_str(backend.to_str())
    copy.no_truncation()
    copy.no_padding()
    return copy


def _span(ordinal: int, group: Sequence[_Piece], text: str) -> ChunkSpan:
    start, end = group[0].start, group[-1].end
    pages = [p.page for p in group if p.page is not None]
    return ChunkSpan(
        ordinal=ordinal,
        start=start,
        end=end,
        text=text[start:end],
        page=pages[0] if pages else None,
        page_end=pages[-1] if pages else None,
        token_count=sum(p.tokens for p in group),
    )


def _is_word_break(tokens: Sequence[tuple[int, int]], text: str, i: int) -> bool:
    """True when a new word starts at token ``i`` (whitespace or punctuation before it)."""
    if i <= 0 or i >= len(tokens):
        return True
    prev_end, start = tokens[i - 1][1], tokens[i][0]
    return start > prev_end or not (text[start - 1].isalnum() and text[start].isalnum())


def _word_boundary(tokens: Sequence[tuple[int, int]], text: str, a: int, b: int) -> int:
    """Move ``b`` back so the window does not end mid-word (never below a + 1)."""
    cut = b
    while cut > a + 1 and cut < len(tokens) and not _is_word_break(tokens, text, cut):
        cut -= 1
    return cut if cut > a + 1 or b >= len(tokens) else b


def _word_start(tokens: Sequence[tuple[int, int]], text: str, i: int) -> int:
    """Move ``i`` back to the first token of the word it is in."""
    i = max(i, 0)
    while i > 0 and not _is_word_break(tokens, text, i):
        i -= 1
    return i
