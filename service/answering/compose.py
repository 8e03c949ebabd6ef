"""An answer being put together sentence by sentence: markers in order of first use, then the response.

A source's marker is the position of its chunk in the response's ``citations``: the cited chunks in
the order the answer first uses them, then the other sources that were supplied but not cited. Each
sentence is rendered (and redacted) the moment it is added, so a stream can release it at once and
the final response carries the very same text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from ingest.index.port import ScoredChunk
from service.answering.evidence import Evidence
from service.answering.prompt import NOT_FOUND
from service.retrieval import citation
from service.schemas import AnswerSentence, Citation, Grounding, QueryResponse, SentenceSource
from service.snippets import Focus, snippet

Redact = Callable[[str], str]
SEPARATOR = "\n"  # between answer sentences, in the response and between streamed tokens alike


@dataclass
class Composer:
    """Sentences added so far, the chunks they cite, and the first supporting sentence of each chunk."""

    redact: Redact = field(default=lambda text: text)
    cited: list[ScoredChunk] = field(default_factory=list)
    first_support: dict[str, Evidence] = field(default_factory=dict)
    sentences: list[AnswerSentence] = field(default_factory=list)

    def marker(self, evidence: Evidence) -> int:
        chunk_id = evidence.record.id
        if chunk_id not in self.first_support:
            self.first_support[chunk_id] = evidence
            self.cited.append(evidence.chunk)
        return next(i for i, c in enumerate(self.cited, start=1) if c.record.id == chunk_id)

    def add(self, text: str, grounding: Literal["quoted", "verified"], evidence: Sequence[Evidence]) -> str:
        """Render ``text`` with the markers of its ``evidence``; returns the sentence as shown."""
        markers = [self.marker(e) for e in evidence]
        unique = sorted(set(markers))
        text, markers_text = self.redact(text), f"[{', '.join(map(str, unique))}]"
        end = text[-1:] if text[-1:] in (".", "!", "?") else ""
        shown = f"{text[: len(text) - len(end)]} {markers_text}{end}"  # "… Delaware [1]."
        sources = [
            SentenceSource(marker=m, start=e.start, end=e.end, quote=e.text)
            for m, e in zip(markers, evidence, strict=True)
        ]
        self.sentences.append(AnswerSentence(text=shown, grounding=grounding, sources=sources))
        return shown

    def response(
        self,
        supplied: Sequence[ScoredChunk],
        snippet_chars: int,
        focus: Focus | None,
        *,
        model: str | None,
        removed: int = 0,
        dropped: int = 0,
        separator: str = SEPARATOR,
    ) -> QueryResponse:
        """The finished response; with no sentence, a "not found" that still counts what was removed."""
        if not self.sentences:
            return not_found(model=None, removed=removed, dropped=dropped)
        ids = {c.record.id for c in self.cited}
        uncited = [c for c in supplied if c.record.id not in ids]
        cites = [self._cited(c, n, snippet_chars) for n, c in enumerate(self.cited, start=1)]
        cites += [citation(c, n, snippet_chars, False, focus) for n, c in enumerate(uncited, start=len(cites) + 1)]
        grounding: Grounding = "verified" if any(s.grounding == "verified" for s in self.sentences) else "quoted"
        return QueryResponse(
            answer=separator.join(s.text for s in self.sentences),
            found=True,
            citations=cites,
            model=model,
            dropped_citations=dropped,
            grounding=grounding,
            sentences=self.sentences,
            unsupported_removed=removed,
        )

    def _cited(self, chunk: ScoredChunk, marker: int, snippet_chars: int) -> Citation:
        support = self.first_support[chunk.record.id]
        base = citation(chunk, marker, snippet_chars, True)
        return base.model_copy(
            update={
                "start": support.start,
                "end": support.end,
                "chunk_start": chunk.record.start,
                "chunk_end": chunk.record.end,
                "snippet": snippet(support.text, snippet_chars),
            }
        )


def not_found(model: str | None = None, removed: int = 0, dropped: int = 0) -> QueryResponse:
    return QueryResponse(
        answer=NOT_FOUND,
        found=False,
        citations=[],
        model=model,
        grounding="not_found",
        unsupported_removed=removed,
        dropped_citations=dropped,
    )
