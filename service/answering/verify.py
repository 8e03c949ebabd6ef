"""Is a generated sentence supported by the sentences it cites? The lexical check, always on.

A sentence passes when every checkable claim in it (numbers, dates, durations, amounts, names,
section references, negations: :mod:`salient`) is written in its evidence — the cited sentences, or
the question itself (the user's own words are not an invention) — and most of its content words
(BM25 stems) are too. The check is a small port: a served entailment (NLI) or cross-encoder model can
be added behind :class:`SupportCheck` and runs after the lexical one, never instead of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ingest.embedding.port import SparseEncoder
from service.answering.evidence import Evidence
from service.answering.salient import claims, unsupported

MIN_CONTENT_OVERLAP = 0.6  # share of the sentence's content words that its evidence must contain
MAX_EVIDENCE = 2  # a claim may combine at most this many sentences of its sources


class SupportCheck(Protocol):
    """Decides whether ``evidence`` (source sentences) supports ``claim`` (one answer sentence)."""

    def supports(self, claim: str, evidence: str, question: str) -> bool: ...


@dataclass(frozen=True)
class Verdict:
    """The outcome for one answer sentence: the sentences that support it (empty: unsupported) and why not."""

    evidence: list[Evidence]
    missing: list[str]

    @property
    def supported(self) -> bool:
        return bool(self.evidence) and not self.missing


class LexicalCheck:
    """:class:`SupportCheck` by normalised claims and content-word overlap."""

    def __init__(self, sparse: SparseEncoder, min_overlap: float = MIN_CONTENT_OVERLAP) -> None:
        self.sparse, self.min_overlap = sparse, min_overlap

    def supports(self, claim: str, evidence: str, question: str) -> bool:
        return not self.missing(claim, evidence, question)

    def missing(self, claim: str, evidence: str, question: str) -> list[str]:
        """What in ``claim`` is found neither in ``evidence`` nor in ``question`` (empty: supported)."""
        asked = claims(question)
        claimed = {kind: values - asked[kind] for kind, values in claims(claim).items()}
        gaps = unsupported(claimed, f"{evidence}\n{question}")
        # Content words beyond the question's own must come from the evidence; a sentence that only
        # restates the question ("The NDA between Acme and Globex.") or says nothing ("Yes.") is not an answer.
        wanted = set(self.sparse.embed_query(claim).indices) - set(self.sparse.embed_query(question).indices)
        if not wanted:
            return [*gaps, "no content"]
        have = set(self.sparse.embed_passage(evidence).indices)
        if len(wanted & have) / len(wanted) < self.min_overlap:
            gaps.append("content")
        return gaps

    def overlap(self, claim: str, text: str) -> float:
        wanted = set(self.sparse.embed_query(claim).indices)
        return len(wanted & set(self.sparse.embed_passage(text).indices)) / len(wanted) if wanted else 0.0


class Verifier:
    """Finds the sentences that support an answer sentence, in its cited sources or (unmarked) in any source."""

    def __init__(self, lexical: LexicalCheck, extra: Sequence[SupportCheck] = ()) -> None:
        self.lexical, self.extra = lexical, list(extra)

    def verify(self, claim: str, question: str, pool: Sequence[Evidence]) -> Verdict:
        """The best-supported reading of ``claim`` from ``pool`` (the cited sources' sentences)."""
        if not pool:
            return Verdict([], ["no source"])
        ranked = sorted(pool, key=lambda e: -self.lexical.overlap(claim, e.text))[:MAX_EVIDENCE]
        for evidence in ([ranked[0]], ranked):
            text = " ".join(e.text for e in evidence)
            missing = self.lexical.missing(claim, text, question)
            if not missing and all(check.supports(claim, text, question) for check in self.extra):
                return Verdict(list(evidence), [])
        return Verdict([], self.lexical.missing(claim, " ".join(e.text for e in ranked), question) or ["entailment"])
