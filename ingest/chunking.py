"""Structure-aware, token-bounded chunking.

Tokens are counted with the embedder's own tokenizer, so no chunk is silently truncated by the
model. Every chunk is an exact slice ``text[start:end]`` of the extracted text (citations can be
verified character by character). Elements (paragraphs, table rows, list items) are packed whole;
a title starts a new chunk; only an element longer than the budget is split, at word boundaries,
with a small overlap between its windows.

Chunks also follow the document's clauses (``ingest.structure``): a clause that fits the budget is
never cut, a new section starts a new chunk, and small sibling clauses (the sub-clauses of one
section, a run of definitions) still share a chunk up to the budget so that no chunk is a stub.
Each chunk carries the heading path of the clauses it holds, for the embedded text only.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from tokenizers import Tokenizer

from ingest.parsing.port import ParsedDocument
from ingest.structure import Structure, common_path, read_structure, render_path, with_heading

__all__ = ["ChunkSpan", "TokenChunker", "with_heading"]

MIN_CLAUSE_TOKENS = 40  # a chunk below this joins the next clause whatever its section


@dataclass(frozen=True)
class ChunkSpan:
    ordinal: int
    start: int
    end: int
    text: str
    page: int | None
    page_end: int | None
    token_count: int
    heading: str = ""  # heading path of the clauses it holds ("12. MISCELLANEOUS > 12.3 Governing Law")


@dataclass(frozen=True)
class _Piece:
    """A run of whole tokens inside one element and one clause."""

    start: int
    end: int
    tokens: int
    page: int | None
    is_title: bool
    clause: int


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
        structure = read_structure(doc)
        pieces: list[_Piece] = []
        for element in doc.elements:
            for start, end, clause in _clause_parts(structure, element.start, element.end, doc.text):
                template = _Piece(start, end, 0, element.page, element.kind == "title", clause)
                pieces.extend(self._pieces(template, offsets, starts, doc.text))
        return _Packer(self.max_tokens, structure, pieces).pack(doc.text)

    def _pieces(
        self, part: _Piece, offsets: Sequence[tuple[int, int]], starts: Sequence[int], text: str
    ) -> list[_Piece]:
        lo = bisect_left(starts, part.start)
        hi = bisect_right(starts, part.end - 1)
        tokens = list(offsets[lo:hi])
        if len(tokens) <= self.max_tokens:
            return [replace(part, tokens=len(tokens))] if tokens else []
        return [
            replace(part, start=tokens[a][0], end=tokens[b - 1][1], tokens=b - a)
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


class _Packer:
    """Packs pieces greedily into chunks, breaking where a budget, a title or a clause says so."""

    def __init__(self, max_tokens: int, structure: Structure, pieces: Sequence[_Piece]) -> None:
        self.max_tokens = max_tokens
        self.structure = structure
        self.pieces = pieces
        self.clause_tokens: dict[int, int] = {}
        for piece in pieces:
            self.clause_tokens[piece.clause] = self.clause_tokens.get(piece.clause, 0) + piece.tokens

    def pack(self, text: str) -> list[ChunkSpan]:
        groups: list[list[_Piece]] = []
        group: list[_Piece] = []
        for piece in self.pieces:
            if group and self._breaks(group, piece):
                self._close(groups, group)
                group = []
            group.append(piece)
        if group:
            self._close(groups, group)
        return [self._span(ordinal, g, text) for ordinal, g in enumerate(groups)]

    def _close(self, groups: list[list[_Piece]], group: list[_Piece]) -> None:
        """Keep ``group`` as a chunk, or add it to the previous one when it is a stub of the same section."""
        tokens = sum(p.tokens for p in group)
        if groups and tokens < MIN_CLAUSE_TOKENS and not any(p.is_title for p in group):
            previous = groups[-1]
            fits = sum(p.tokens for p in previous) + tokens <= self.max_tokens
            if fits and previous[-1].end <= group[0].start and common_path(self._paths(previous + group)):
                previous.extend(group)
                return
        groups.append(group)

    def _breaks(self, group: Sequence[_Piece], piece: _Piece) -> bool:
        tokens = sum(p.tokens for p in group)
        title_break = piece.is_title and not all(p.is_title for p in group)
        if tokens + piece.tokens > self.max_tokens or title_break or piece.start < group[-1].end:
            return True
        return piece.clause != group[-1].clause and self._clause_break(group, piece.clause, tokens)

    def _clause_break(self, group: Sequence[_Piece], clause: int, tokens: int) -> bool:
        """At the start of ``clause``: break so that it is not cut, or because its section changes."""
        size = self.clause_tokens[clause]
        if size > self.max_tokens:
            return False  # it will be cut anyway; filling this chunk first keeps chunks few
        if tokens + size > self.max_tokens:
            return True
        if tokens < MIN_CLAUSE_TOKENS:
            return False
        paths = self._paths(group)
        shared = common_path(paths)
        parent = shared[:-1] if len(paths) == 1 else shared  # one clause: its siblings may join it
        path = self.structure.clauses[clause].path
        under = [p for p in (shared, parent) if p and path[: len(p)] == p]
        return not under

    def _paths(self, group: Sequence[_Piece]) -> list[tuple[str, ...]]:
        return [self.structure.clauses[c].path for c in dict.fromkeys(p.clause for p in group)]

    def _span(self, ordinal: int, group: Sequence[_Piece], text: str) -> ChunkSpan:
        span = _span(ordinal, group, text)
        return replace(span, heading=render_path(common_path(self._paths(group))))


def _clause_parts(structure: Structure, start: int, end: int, text: str) -> list[tuple[int, int, int]]:
    """``[start, end)`` cut where clauses begin inside it, each part trimmed of surrounding whitespace."""
    first = structure.clause_index(start)
    parts: list[tuple[int, int, int]] = []
    cuts: list[int] = []
    for later in range(first + 1, len(structure.clauses)):
        if structure.clauses[later].start >= end:
            break
        cuts.append(structure.clauses[later].start)
    for clause, (a, b) in enumerate(zip([start, *cuts], [*cuts, end], strict=True), first):
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if b > a:
            parts.append((a, b, clause))
    return parts


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
