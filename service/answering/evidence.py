"""The sentences of the retrieved sources, scored against what the question asks.

Each source chunk is split into sentences with document offsets (:mod:`sentences`). A sentence's
score mixes three signals: the embedder's cosine between the ask and the sentence, the share of the
ask's BM25 terms (stemmed, weighted by how rare they are among the candidate sentences) that it
contains, and whether it holds a value of the kind asked for ("laws of the State of X" for a
governing-law question). The weights and the support thresholds are settings, calibrated in
``bench/answer_trust.py calibrate`` on questions that are not reported.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ingest.config import AnswerSettings
from ingest.embedding.port import DenseEmbedder, SparseEncoder
from ingest.index.port import ChunkRecord, ScoredChunk
from service.answering.sentences import Sentence, split
from service.answering.values import value_of
from service.question import Question

MIN_WORDS = 4  # shorter "sentences" are headings and list markers: context, never an answer
HEADING_WORDS = 8  # a line this short without one lower-case word is a heading or an index entry


@dataclass(frozen=True)
class Evidence:
    """One sentence of one source, scored: ``start``/``end`` are document offsets when the chunk is an exact
    slice of the document's text, else the chunk's own span (redacted text no longer lines up)."""

    chunk: ScoredChunk
    sentence: Sentence
    dense: float = 0.0
    lexical: float = 0.0
    value: str | None = None
    score: float = 0.0

    @property
    def text(self) -> str:
        return self.sentence.text

    @property
    def record(self) -> ChunkRecord:
        return self.chunk.record

    @property
    def start(self) -> int:
        return self.record.start + self.sentence.start if _exact(self.record) else self.record.start

    @property
    def end(self) -> int:
        return self.record.start + self.sentence.end if _exact(self.record) else self.record.end


def _exact(record: ChunkRecord) -> bool:
    return len(record.text) == record.end - record.start


def sentences_of(chunks: Sequence[ScoredChunk]) -> list[Evidence]:
    """Every sentence of every chunk, in chunk order, without duplicates (overlapping chunks repeat text)."""
    seen: set[tuple[str, int]] = set()
    out: list[Evidence] = []
    for chunk in chunks:
        for sentence in split(chunk.record.text):
            key = (chunk.record.document_id, chunk.record.start + sentence.start)
            if key not in seen:
                seen.add(key)
                out.append(Evidence(chunk, sentence))
    return out


def answer_like(text: str) -> bool:
    """Whether a sentence can answer: not a heading or fragment (too short), not a table of contents or a
    schedule of figures ("11.1 Term 35 11.2 Termination for Cause 35": numbers between the words)."""
    words = text.split()
    numbers = sum(w.strip(".,;:()").replace(".", "").isdigit() for w in words)
    heading = len(words) <= HEADING_WORDS and not any(
        w[:1].islower() for w in words
    )  # "Governing Law 15 Section 11.04."
    return len(words) >= MIN_WORDS and not heading and not (numbers >= 4 and numbers >= 0.2 * len(words))


class SentenceScorer:
    """Scores candidate sentences against a question's ask (dense + lexical + kind of value)."""

    def __init__(self, embedder: DenseEmbedder, sparse: SparseEncoder, cfg: AnswerSettings | None = None) -> None:
        self.embedder, self.sparse, self.cfg = embedder, sparse, cfg or AnswerSettings()

    def score(self, question: Question, candidates: Sequence[Evidence]) -> list[Evidence]:
        """``candidates`` with their signals and scores, best first; headings and fragments left out."""
        pool = [e for e in candidates if answer_like(e.text)]
        if not pool:
            return []
        dense = self._dense(question.ask, [e.text for e in pool])
        lexical = self._lexical(question.ask, [e.text for e in pool])
        w = self.cfg
        scored = []
        for e, d, lex in zip(pool, dense, lexical, strict=True):
            value = value_of(question.kind, e.text)
            total = w.dense_weight * d + w.lexical_weight * lex + (w.kind_weight if value else 0.0)
            scored.append(Evidence(e.chunk, e.sentence, round(d, 4), round(lex, 4), value, round(total, 4)))
        return sorted(scored, key=lambda e: -e.score)

    def supported(self, best: Evidence) -> bool:
        """Whether a sentence answers: close in meaning and holding the ask's words or value, or very close."""
        w = self.cfg
        has_ask = best.lexical >= w.min_sentence_lexical or best.value is not None
        return (best.dense >= w.min_sentence_dense and has_ask) or best.dense >= w.confident_dense

    def _dense(self, ask: str, texts: list[str]) -> list[float]:
        query = np.asarray(self.embedder.embed_query(ask), dtype=np.float32)
        passages = np.asarray(self.embedder.embed_passages(texts), dtype=np.float32)
        norms = np.linalg.norm(passages, axis=1) * (np.linalg.norm(query) or 1.0)
        return [float(x) for x in (passages @ query) / np.where(norms == 0, 1.0, norms)]

    def _lexical(self, ask: str, texts: list[str]) -> list[float]:
        """Share of the ask's terms in each sentence, each term weighted by its rarity among the candidates."""
        wanted = set(self.sparse.embed_query(ask).indices)
        if not wanted:
            return [0.0] * len(texts)
        terms = [set(self.sparse.embed_passage(t).indices) & wanted for t in texts]
        n = len(texts)
        weight = {t: math.log(1 + n / (1 + sum(t in s for s in terms))) for t in wanted}
        total = sum(weight.values())
        return [sum(weight[t] for t in s) / total for s in terms]
