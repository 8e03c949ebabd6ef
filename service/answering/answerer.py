"""Question in, grounded answer (or an honest "not found") out: the one object every surface calls.

``/v1/query`` (plain and streamed), ``/v1/chat/completions`` and ``enclave ask`` all go through
:class:`Answerer`. The guarantee it keeps, whatever generator sits behind the port: every sentence it
shows is either quoted verbatim from a source sentence (``quoted``) or generated and verified against
the source sentences it cites (``verified``); a generated sentence that fails the check is removed and
counted, and when none is left the answer falls back to quoting. A stream releases a sentence only
after it passed, so nothing shown is ever taken back.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from sqlmodel import col, select

from ingest.audit.trail import AuditUnavailable
from ingest.config import Settings
from ingest.documents import document_names
from ingest.errors import EnclaveError
from ingest.index.port import AccessFilter, ScoredChunk
from ingest.runtime import Components
from ingest.store.db import session_scope
from ingest.store.models import Document
from service.answering.compose import SEPARATOR, Composer, Redact, not_found
from service.answering.evidence import Evidence, SentenceScorer, sentences_of
from service.answering.generated import Piece, SentenceBuffer
from service.answering.prompt import INJECTION, MARKER, build_messages, has_evidence, is_refusal
from service.answering.salient import normalise_numbers
from service.answering.verify import LexicalCheck, SupportCheck, Verifier
from service.auth.visibility import may_see, visible_document
from service.compliance.answers import answer_rule
from service.filters import QueryFilters, narrow
from service.generation.cache_salt import tenant_cache_salt
from service.generation.port import GenerationParams, Generator
from service.question import Question, analyse
from service.rerank.port import Reranker
from service.retrieval import DocumentNames, Retrieved, document_overlap, named_document, retrieve
from service.schemas import QueryRequest, QueryResponse
from service.snippets import Focus

if TYPE_CHECKING:
    from service.auth import Principal

VALUE_WINDOW = 0.15  # a sentence holding the asked-for value may lead if it scores within this of the best
VALUE_VOTERS = 5  # top sentences whose values vote when they disagree


class AuditSink(Protocol):
    """Where an answer is recorded (``service.compliance.context.RequestAudit``)."""

    def record(
        self,
        action: str,
        outcome: str = "ok",
        *,
        document_ids: Sequence[str] = (),
        chunk_ids: Sequence[str] = (),
        query: str | None = None,
        model: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> object: ...

    def failures(
        self, action: str, *, query: str | None = None, document_ids: Sequence[str] = ()
    ) -> AbstractContextManager[None]: ...


class Scoped(Protocol):
    """What narrows a request's search (``QueryRequest``, ``SearchRequest``)."""

    @property
    def collections(self) -> list[str] | None: ...
    @property
    def filters(self) -> QueryFilters | None: ...
    @property
    def document_ids(self) -> list[str] | None: ...


def require_visible(components: Components, principal: Principal, document_ids: Sequence[str]) -> None:
    """Nothing when the caller may see every one of ``document_ids``.

    :raises NotFound: for the first one it may not see (missing, erased, another tenant's, hidden by ACL,
        classification or an ethical wall), the very error a read of that document gets.
    """
    with session_scope(components.engine) as session:
        rows = session.exec(select(Document).where(col(Document.id).in_(document_ids))).all()
    seen = {d.id for d in rows if may_see(principal, d)}
    for document_id in document_ids:
        if document_id not in seen:
            visible_document(components, principal, document_id)  # raises NotFound unless it appeared meanwhile


@dataclass(frozen=True)
class Found:
    """What retrieval returned for a question, with the filter it ran under (the focused search reuses it)."""

    retrieved: Retrieved
    access: AccessFilter
    k: int
    mode: str


@dataclass
class Prepared:
    """A question ready to be answered: what it asks, its supplied sources and its scored sentences."""

    question: Question
    supplied: list[ScoredChunk]
    ranked: list[Evidence]
    prompt_sources: list[ScoredChunk]
    party_coverage: float | None = None  # share of the named parties' words in the best-matching document


@dataclass
class Tally:
    removed: int = 0
    dropped: int = 0


@dataclass
class Answer:
    """A finished answer and the chunks it showed (what the audit record names)."""

    response: QueryResponse
    shown: list[ScoredChunk] = field(default_factory=list)


class Answerer:
    """Owns the read path after authorisation: retrieve, choose sentences, quote or generate and verify."""

    def __init__(
        self,
        settings: Settings,
        components: Components,
        generator: Generator,
        reranker: Reranker | None = None,
        checks: Sequence[SupportCheck] = (),
    ) -> None:
        self.settings, self.components, self.generator, self.reranker = settings, components, generator, reranker
        cfg = settings.answer
        self.scorer = SentenceScorer(components.embedder, components.sparse, cfg)
        self.verifier = Verifier(LexicalCheck(components.sparse, cfg.min_content_overlap), checks)

    # -- retrieval -------------------------------------------------------------------------------

    def retrieve(self, principal: Principal, req: QueryRequest) -> Found:
        """The caller's sources for ``req``: the access filter (narrowed by the request's filters) inside the search.

        :raises NotFound: ``req`` names a document the caller may not see (see :meth:`access`).
        """
        k = req.k or self.settings.retrieval.k
        access = self.access(principal, req)
        fetch = max(k, self.settings.answer.candidates)
        names = self.document_names(access.tenant)
        embed_ask = self.settings.retrieval.focus_ask_embedding
        found = retrieve(
            self.components, req.query, access, fetch, req.mode, self.reranker, names=names, embed_ask=embed_ask
        )
        return Found(found, access, k, req.mode)

    def document_names(self, tenant: str) -> DocumentNames | None:
        """Document focus's lookup of the title and parties each document's opening states (sealed in its row),
        or None where ``ENCLAVE_RETRIEVAL__DOCUMENT_FOCUS`` is off."""
        if not self.settings.retrieval.document_focus:
            return None
        return partial(document_names, self.components, tenant)

    def access(self, principal: Principal, req: Scoped) -> AccessFilter:
        """What a query or search runs under: the caller's access filter narrowed by the request's collections,
        named documents and metadata filters (each can only narrow it).

        :raises NotFound: a named document is missing or hidden from the caller, exactly as
            ``GET /v1/documents/{id}`` answers for it (which of them exist is not told).
        """
        if req.document_ids is not None:
            require_visible(self.components, principal, req.document_ids)
        store = (self.components.engine, self.components.compliance.keyring)
        return narrow(principal.access(req.collections), req.filters, store, req.document_ids)

    def prepare(self, query: str, found: Found) -> Prepared:
        """Sentences of the retrieved chunks and of the named document's best chunks for the ask, scored."""
        question = analyse(query)
        pool = list(found.retrieved.chunks)
        names = self.document_names(found.access.tenant)
        openings = names(list(dict.fromkeys(c.record.document_id for c in pool))) if names and question.parties else {}
        coverage = self._party_coverage(question, pool, openings)
        document = self._named_document(question, pool)
        if document is not None and self.settings.answer.focus_chunks:
            scoped = dataclasses.replace(found.access, document_ids=(document,))
            limit, mode = self.settings.answer.focus_chunks, found.mode
            extra = retrieve(self.components, question.ask, scoped, limit, mode, evidence=False)  # type: ignore[arg-type]
            ids = {c.record.id for c in pool}
            pool = [c for c in pool if c.record.document_id == document] + [
                c for c in extra.chunks if c.record.id not in ids
            ]
        # a sentence that addresses the model ("ignore previous instructions") is never an answer
        ranked = [e for e in self.scorer.score(question, sentences_of(pool)) if not INJECTION.search(e.text)]
        supplied = list(found.retrieved.chunks[: found.k])
        return Prepared(question, supplied, ranked, self._prompt_sources(ranked, supplied, found.k), coverage)

    def _named_document(self, question: Question, pool: Sequence[ScoredChunk]) -> str | None:
        """The document the question names (its title and parties in the retrieved text), if it names one."""
        return named_document(self.components.sparse, question.reference, pool)

    def _party_coverage(
        self, question: Question, pool: Sequence[ScoredChunk], openings: Mapping[str, str]
    ) -> float | None:
        """Share of the named parties' words in the best-matching retrieved document, its chunks or the parties its
        opening states (focus may leave the opening's chunk out of the pool); None: the question names none."""
        if not question.parties:
            return None
        overlap = document_overlap(self.components.sparse, question.parties, pool, openings)
        return max(overlap.values(), default=0.0)

    @staticmethod
    def _prompt_sources(ranked: Sequence[Evidence], supplied: Sequence[ScoredChunk], k: int) -> list[ScoredChunk]:
        """The chunks of the best sentences first, then the retrieved ones: what the model is shown."""
        out: list[ScoredChunk] = []
        for chunk in [e.chunk for e in ranked] + list(supplied):
            if len(out) >= k:
                break
            if all(c.record.id != chunk.record.id for c in out):
                out.append(chunk)
        return out

    # -- answering -------------------------------------------------------------------------------

    def mode_for(self, question: Question) -> str:
        mode = self.settings.answer.mode
        if mode == "auto":
            return "extractive" if question.kind is not None else "generative"
        return mode

    def answer(self, principal: Principal, req: QueryRequest, found: Found | None = None) -> Answer:
        """The grounded answer to ``req`` (not audited: see :meth:`audited`)."""
        events = list(self._answer_events(principal, req, found or self.retrieve(principal, req)))
        return events[-1] if isinstance(events[-1], Answer) else Answer(not_found())

    def audited(self, principal: Principal, req: QueryRequest, audit: AuditSink) -> QueryResponse:
        """:meth:`answer`, recorded as ``query.answered`` before it is returned (or its failure is)."""
        with audit.failures("query.answered", query=req.query, document_ids=req.document_ids or ()):
            answer = self.answer(principal, req)
        self.record(audit, req.query, answer, req.document_ids)
        return answer.response

    def stream(
        self, principal: Principal, req: QueryRequest, audit: AuditSink | None = None, found: Found | None = None
    ) -> Iterator[str]:
        """Server-sent events: ``token`` (whole checked sentences), one ``answer`` with citations, then ``done``.

        With ``audit``, ``query.answered`` is recorded before the ``answer`` event (or the failure is,
        before the ``error`` event).
        """
        try:
            first = True
            answer: Answer | None = None
            for event in self._answer_events(principal, req, found or self.retrieve(principal, req)):
                if isinstance(event, Answer):
                    answer = event
                    break
                yield _sse("token", {"text": event if first else SEPARATOR + event})
                first = False
            assert answer is not None
            if not answer.response.found:
                yield _sse("token", {"text": answer.response.answer})
            if audit is not None:
                self.record(audit, req.query, answer, req.document_ids)
            yield _sse("answer", answer.response.model_dump())
        except EnclaveError as exc:
            yield _sse(
                "error",
                {
                    "error": {
                        "message": exc.message,
                        "type": "server_error",
                        "param": exc.param,
                        "code": _audit_failure(audit, req.query, exc),
                    }
                },
            )
        yield _sse("done", {})

    def record(self, audit: AuditSink, query: str, answer: Answer, scope: Sequence[str] | None = None) -> None:
        """Audit ``query.answered``: the chunks shown, how the answer was grounded, what was removed, and
        the documents the question was scoped to (``scope``, when it named any)."""
        response = answer.response
        outcome = "answered" if response.found else "not_found"
        audit.record(
            "query.answered",
            outcome,
            query=query,
            model=response.model,
            chunk_ids=[c.record.id for c in answer.shown],
            document_ids=[c.record.document_id for c in answer.shown],
            detail={
                "sources": len(answer.shown),
                "dropped_citations": response.dropped_citations,
                "grounding": response.grounding,
                "unsupported_removed": response.unsupported_removed,
            }
            | scope_detail(scope),
        )

    def _answer_events(self, principal: Principal, req: QueryRequest, found: Found) -> Iterator[str | Answer]:
        """Each shown sentence as soon as it is final, then the :class:`Answer`."""
        if not has_evidence(found.retrieved, self.settings.retrieval.min_dense_score):
            yield Answer(not_found())
            return
        prepared = self.prepare(req.query, found)
        if prepared.party_coverage is not None and prepared.party_coverage < self.settings.answer.min_party_coverage:
            yield Answer(not_found())  # the agreement it names is not among the caller's documents
            return
        composer = Composer(redact=self._redactor(principal.tenant, prepared.supplied))
        tally = Tally()
        generative = self.mode_for(prepared.question) == "generative"
        if generative:
            yield from self._generate(principal, prepared, composer, tally)
        if not composer.sentences:
            self._extract(prepared, composer)
            yield from (s.text for s in composer.sentences)
        model = self.generator.model_name if generative else None  # the model consulted, even if all it wrote went
        focus = Focus(self.components.sparse, found.retrieved.query_terms)
        response = composer.response(
            prepared.supplied,
            self.settings.retrieval.snippet_chars,
            focus,
            model=model,
            removed=tally.removed,
            dropped=tally.dropped,
        )
        shown = composer.cited + [c for c in prepared.supplied if c not in composer.cited] if response.found else []
        yield Answer(response, shown)

    def _generate(self, principal: Principal, prepared: Prepared, composer: Composer, tally: Tally) -> Iterator[str]:
        """Stream the model's answer, releasing each sentence that its cited sources support."""
        messages = build_messages(prepared.question.text, prepared.prompt_sources)
        buffer = SentenceBuffer()
        for delta in self.generator.stream(messages, self._params(principal)):
            for piece in buffer.feed(delta):
                shown = self._check(piece, prepared, composer, tally)
                if shown is not None:
                    yield shown
        for piece in buffer.flush():
            shown = self._check(piece, prepared, composer, tally)
            if shown is not None:
                yield shown

    def _check(self, piece: Piece, prepared: Prepared, composer: Composer, tally: Tally) -> str | None:
        """The sentence as shown if its sources support it; else None, and it is counted as removed."""
        if not piece.plain or is_refusal(piece.plain):
            return None
        sources = prepared.prompt_sources
        valid = [n for n in piece.numbers if 1 <= n <= len(sources)]
        tally.dropped += len(piece.numbers) - len(valid)
        cited = [sources[n - 1] for n in dict.fromkeys(valid)] or sources  # unmarked: any source may support it
        verdict = self.verifier.verify(piece.plain, prepared.question.text, sentences_of(cited))
        if not verdict.supported:
            tally.removed += 1
            return None
        return composer.add(piece.plain, "verified", verdict.evidence)

    def _extract(self, prepared: Prepared, composer: Composer) -> None:
        """Quote the answering sentence(s), led by the asked-for value when the question asks for one."""
        ranked = prepared.ranked
        if not ranked:
            return
        best = ranked[0]
        lead = self._value_sentence(ranked) if prepared.question.kind else None
        if not self.scorer.supported(best) and lead is None:
            return
        first = lead or best
        if lead is not None and lead.value:
            composer.add(lead.value, "quoted", [lead])
        composer.add(quote(first.text), "quoted", [first])
        margin, quoted = self.settings.answer.quote_margin, {first.text}
        for other in ranked:
            if len(quoted) >= self.settings.answer.max_quotes or other.score < best.score - margin:
                break
            if other.text not in quoted and self.scorer.supported(other):
                composer.add(quote(other.text), "quoted", [other])
                quoted.add(other.text)

    def _value_sentence(self, ranked: Sequence[Evidence]) -> Evidence | None:
        """The best sentence holding the asked-for value; when the top sentences disagree, the value most write."""
        best = ranked[0]
        near = [e for e in ranked[:VALUE_VOTERS] if e.value and e.score >= best.score - VALUE_WINDOW]
        near = [e for e in near if e.dense >= self.scorer.cfg.min_sentence_dense]
        if not near:
            return None
        votes = Counter(_value_key(e.value) for e in near)
        top = max(votes.values())
        return next(e for e in near if votes[_value_key(e.value)] == top)

    def _params(self, principal: Principal) -> GenerationParams:
        cfg = self.settings.generator
        salt = tenant_cache_salt(self.components.compliance.keyring, principal.tenant)
        return GenerationParams(
            max_tokens=cfg.max_tokens,
            temperature=cfg.temperature,
            timeout_s=cfg.timeout_s,
            frequency_penalty=cfg.frequency_penalty,
            cache_salt=salt,
        )

    def _redactor(self, tenant: str, sources: Sequence[ScoredChunk]) -> Redact:
        """Each shown sentence is scanned under the strictest redaction rule of the sources (if any needs it)."""
        rule = answer_rule(self.settings, self.components, sources)
        redactor = self.components.compliance.redactor
        if not rule.needs_detection:
            return lambda text: text
        return lambda text: redactor.redact_text(text, tenant, rule)[0]


def quote(text: str) -> str:
    """A source sentence as the answer quotes it: its own bracketed numbers ("twelve months [4]") shown as
    "(4)" so that no reader or client mistakes them for citation markers (the ``quote`` field keeps them)."""
    return "“" + MARKER.sub(lambda m: f"({m.group(1)})", text) + "”"


def _value_key(value: str | None) -> str:
    return " ".join(normalise_numbers(value or "").lower().replace("(", " ").replace(")", " ").split())


def scope_detail(scope: Sequence[str] | None) -> dict[str, list[str]]:
    """The audit detail naming the documents a request was scoped to (none when it named none)."""
    return {} if scope is None else {"scope": list(scope)}


def _sse(event: str, data: object) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def _audit_failure(audit: AuditSink | None, query: str, exc: EnclaveError) -> str:
    """Record a stream that died (generator gone, timeout); returns the code the client should see."""
    if audit is None or isinstance(exc, AuditUnavailable):
        return exc.code
    try:
        audit.record("query.answered", f"error:{exc.code}", query=query)
    except AuditUnavailable as failed:
        return failed.code
    return exc.code
