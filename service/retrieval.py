"""The read path up to the sources: embed the query, search inside the access filter, re-check."""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ingest.embedding.port import DenseEmbedder, SparseEncoder
from ingest.index.port import AccessFilter, ScoredChunk, SearchMode, SparseVector, VectorIndex, admits
from ingest.telemetry import span
from service.question import analyse, without_names
from service.rerank.port import Reranker
from service.schemas import Citation
from service.snippets import Focus, snippet

EVIDENCE_CHUNKS = 3  # the sources whose words count as evidence (the default k): fixed, so any k gates alike
MIN_NAMED_TERMS, MIN_NAMED_SHARE = 2, 0.3  # of a question's naming words found in a document's title and parties
# words that name no one in particular (a party matched on these alone is not matched)
CORPORATE_WORDS = (
    "inc incorporated llc ltd limited corp corporation company co plc lp llp sa ag gmbh nv bv holdings group"
)
# pseudo-relevance feedback for a focused search (:func:`with_feedback`); chosen on a constructed CUAD wording
# (``TUNING`` in bench/cuad_reworded.py) and dev, never on the reworded set
FEEDBACK_CHUNKS, FEEDBACK_TERMS, FEEDBACK_MIN_CHUNKS, FEEDBACK_WEIGHT = 10, 10, 2, 0.5

DocumentNames = Callable[[Sequence[str]], Mapping[str, str]]
"""Given document ids, the title and parties each one's opening states (:attr:`ingest.preamble.Preamble.names`)."""


@dataclass(frozen=True)
class Retrieved:
    """Ranked chunks and the evidence strength: best dense cosine, and ``term_coverage``: the share of
    the question's BM25 terms (stemmed, stopwords dropped) found in the top chunks' titles and text;
    ``query_terms``: those terms, which focus each citation's snippet on the sentences that hold them."""

    chunks: list[ScoredChunk]
    best_dense_score: float | None
    term_coverage: float | None = None
    query_terms: frozenset[int] = frozenset()


class SearchStack(Protocol):
    """What a search needs: both encoders and the index (``ingest.runtime.Components`` has them)."""

    @property
    def embedder(self) -> DenseEmbedder: ...

    @property
    def sparse(self) -> SparseEncoder: ...

    @property
    def index(self) -> VectorIndex: ...


def retrieve(
    components: SearchStack,
    query: str,
    access: AccessFilter,
    k: int,
    mode: SearchMode = "hybrid",
    reranker: Reranker | None = None,
    *,
    names: DocumentNames | None = None,
    embed_ask: bool = False,
    evidence: bool = True,
) -> Retrieved:
    """Top-``k`` chunks the caller may see; the filter runs inside the index query.

    With ``evidence`` (what the answerer's gate reads), also the best dense similarity (one more
    nearest-neighbour search inside the filter: 2-3 ms of a 10 ms hybrid search at 100k chunks) and the
    term coverage; a caller that shows ranked chunks only (``POST /v1/search``) passes False and gets None
    for both.

    With a ``reranker``, the index returns its ``candidates`` and the reranker keeps the best ``k``.
    With ``names`` (document focus, ``ENCLAVE_RETRIEVAL__DOCUMENT_FOCUS``), a question that names one of
    the retrieved documents by its title and parties gets that document's chunks ranked by what it asks
    first (:func:`focused`; ``embed_ask``: ``ENCLAVE_RETRIEVAL__FOCUS_ASK_EMBEDDING``).
    """
    if access.document_ids is not None and not access.document_ids:
        return Retrieved([], None)  # metadata filters admitted no document
    with span("retrieve", **{"enclave.k": k, "enclave.mode": mode, "enclave.tenant": access.tenant}) as current:
        with span("retrieve.embed_query"):
            dense = components.embedder.embed_query(query)
            sparse = components.sparse.embed_query(query)
        with span("retrieve.search"):
            fetch = max(k, reranker.candidates) if reranker is not None else k
            result = components.index.search(dense, sparse, access, fetch, mode, best_dense=evidence)
        allowed = [c for c in result.chunks if _admitted(c, access)]
        if reranker is not None:
            with span("retrieve.rerank"):
                allowed = reranker.rerank(query, allowed, k)
        current.set_attributes({"enclave.results": len(allowed), "enclave.dropped": len(result.chunks) - len(allowed)})
        # the evidence gate reads the search as the whole question ranked it: focus reorders by the ask alone,
        # whose clauses need not repeat the names the question (and the document's opening) uses
        coverage = term_coverage(components.sparse, sparse, allowed) if evidence else None
        if names is not None:
            with span("retrieve.focus"):
                allowed = focused(components, query, access, k, mode, allowed, names, dense, embed_ask=embed_ask)
    return Retrieved(allowed, result.best_dense_score, coverage, frozenset(sparse.indices))


def focused(
    components: SearchStack,
    query: str,
    access: AccessFilter,
    k: int,
    mode: SearchMode,
    found: list[ScoredChunk],
    names: DocumentNames,
    query_vector: Sequence[float],
    *,
    embed_ask: bool = False,
) -> list[ScoredChunk]:
    """Document-aware ranking: when the question names one of the ``found`` documents by the title and
    parties its opening states (``names``, :mod:`ingest.preamble`), that document's chunks ranked by the
    ask alone lead, then the rest of ``found``.

    "When does the Marketing Affiliate Agreement between Birch First Global Investments Inc. and Mount
    Kowledge Holdings Inc. expire?": the names match every chunk of that agreement alike (its header),
    so inside it only "when does the initial term expire" can rank the clause. The ask is the question
    less the names (:func:`service.question.analyse`, then the document's own title and parties in any
    case: :func:`service.question.without_names`). The second search runs inside the caller's access
    filter narrowed to that one document, with the question's own dense vector (the names add about the
    same to every chunk of the document, and no second embedding is paid for) and the BM25 terms of the
    ask widened by the words that the chunks those terms find across the visible corpus share
    (:func:`with_feedback`), so a clause worded unlike the question still ranks. A dense-only search
    embeds the ask instead, having no BM25 side to carry it.

    With ``embed_ask``, a hybrid search embeds the ask too: a hybrid search of the ask across everything
    the caller may see finds the feedback clauses by meaning as well as by words ("which cover against
    accidents must be bought" finds insurance clauses, which share none of its words), and the search
    inside the document uses the :func:`midpoint` of the question's and the ask's vectors.
    A document whose opening names no parties (an abstract, a note) is never taken to be named by a
    question's capitalised words.
    """
    question = analyse(query)
    if not question.reference or question.ask == question.text:
        return found
    ranked = list(dict.fromkeys(c.record.document_id for c in found))
    named = names(ranked)
    document = resolve_document(components.sparse, question.reference, ranked, named, query)
    if document is None or (access.document_ids is not None and document not in access.document_ids):
        return found
    scoped = dataclasses.replace(access, document_ids=(document,))
    ask = analyse(without_names(query, named[document])).ask
    sparse = components.sparse.embed_query(ask)
    if mode == "dense":  # no BM25 side to carry the ask: the names in the question's vector would favour the preamble
        query_vector = components.embedder.embed_query(ask)
    else:  # the chunks that the ask finds across the visible corpus: how contracts word such a clause
        if mode == "hybrid" and embed_ask:  # by its meaning and its words
            ask_vector = components.embedder.embed_query(ask)
            pool = components.index.search(ask_vector, sparse, access, FEEDBACK_CHUNKS, mode, best_dense=False)
            query_vector = midpoint(query_vector, ask_vector)
        else:  # by its BM25 terms alone (no embedding to pay for)
            pool = components.index.search(query_vector, sparse, access, FEEDBACK_CHUNKS, "bm25", best_dense=False)
        sparse = with_feedback(components.sparse, sparse, [c.record.text for c in pool.chunks if _admitted(c, access)])
    # the evidence gate reads the unfocused search's best dense similarity: none is looked up here
    result = components.index.search(query_vector, sparse, scoped, k, mode, best_dense=False)
    inside = [c for c in result.chunks if _admitted(c, scoped)]
    ids = {c.record.id for c in inside}
    return (inside + [c for c in found if c.record.id not in ids])[: max(k, len(found))]


def midpoint(a: Sequence[float], b: Sequence[float]) -> list[float]:
    """The unit vector halfway between ``a`` and ``b`` (each normalised first, so neither outweighs the other)."""
    u, v = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    mid = u / (np.linalg.norm(u) or 1.0) + v / (np.linalg.norm(v) or 1.0)
    return (mid / (np.linalg.norm(mid) or 1.0)).tolist()  # type: ignore[no-any-return]


def with_feedback(encoder: SparseEncoder, ask: SparseVector, texts: Sequence[str]) -> SparseVector:
    """``ask`` (BM25 query terms) with the words that ``texts`` share added (pseudo-relevance feedback, as RM3).

    ``texts`` are the chunks the ask alone finds across everything the caller may see: how contracts word
    the kind of clause asked for ("which policies and coverage limits must be carried" finds insurance
    clauses, whose "insurance", "insured" and "policy" the named contract's clause shares and the ask
    lacks). The :data:`FEEDBACK_TERMS` words that weigh most in them (each chunk's term weights summed
    as shares of that chunk), held by at least :data:`FEEDBACK_MIN_CHUNKS` of them and not asked already,
    join at up to :data:`FEEDBACK_WEIGHT` of an asked word's weight. Words every clause of the contract
    holds ("agreement", "party") gain little: the focused search weighs terms by their IDF in that document.
    """
    weight: dict[int, float] = {}
    holders: dict[int, int] = {}
    for text in texts:
        terms = encoder.embed_passage(text)
        total = sum(terms.values) or 1.0
        for term, value in zip(terms.indices, terms.values, strict=True):
            weight[term] = weight.get(term, 0.0) + value / total
            holders[term] = holders.get(term, 0) + 1
    asked = set(ask.indices)
    shared = [t for t in weight if holders[t] >= FEEDBACK_MIN_CHUNKS and t not in asked]
    added = sorted(shared, key=lambda t: -weight[t])[:FEEDBACK_TERMS]
    if not added:
        return ask
    top = weight[added[0]]
    return SparseVector([*ask.indices, *added], [*ask.values, *(FEEDBACK_WEIGHT * weight[t] / top for t in added)])


def resolve_document(
    encoder: SparseEncoder, reference: str, ranked: Sequence[str], names: Mapping[str, str], question: str = ""
) -> str | None:
    """The document of ``ranked`` (ids in rank order) that ``reference`` names, if one is named: the best
    share of the reference's terms found in its ``names`` (at least :data:`MIN_NAMED_TERMS` of them and a
    share of :data:`MIN_NAMED_SHARE`), with a small prior for the higher-ranked document.

    People name a contract by its title in lower case and one party: "our co-branding agreement with
    Skype", where the reference (:func:`service.question.analyse` reads capitalised words) holds only
    "Skype". A document whose title (the first of its names, two words or more) the ``question`` states in
    any case is therefore also named when its parties hold at least half of the reference's words beyond
    :data:`CORPORATE_WORDS` ("Inc." names no one), one of them held by no other such document: a title and
    party that fit two of the retrieved contracts (two supply agreements with Globex) name neither. The
    best share still decides between named documents.
    """
    wanted = set(encoder.embed_query(reference).indices) if reference else set()
    distinct = wanted - set(encoder.embed_query(CORPORATE_WORDS).indices)
    # per document whose title the question states: the reference's distinct words its parties hold
    by_party: dict[str, set[int]] = {}
    for document in ranked:
        title, *parties = names.get(document, "").split("; ")
        if distinct and parties and _states(question, title):
            by_party[document] = distinct & set(encoder.embed_passage(" ".join(parties)).indices)
    holders = Counter(word for words in by_party.values() for word in words)
    best: tuple[float, str | None] = (0.0, None)
    for rank, document in enumerate(ranked):
        named = names.get(document)
        if not wanted or not named:
            continue
        shared = len(wanted & set(encoder.embed_passage(named).indices))
        share = shared / len(wanted)
        own = by_party.get(document, set())
        titled = len(own) >= len(distinct) / 2 and any(holders[word] == 1 for word in own)
        if (shared >= MIN_NAMED_TERMS and share >= MIN_NAMED_SHARE) or titled:
            best = max(best, (share + 0.1 / (1 + rank), document))
    return best[1]


def _states(text: str, title: str) -> bool:
    """Whether ``text`` holds ``title`` (two words or more), in any case and punctuation between its words."""
    words = re.findall(r"\w+", title)
    return len(words) >= 2 and re.search(r"\b" + r"\W+".join(map(re.escape, words)) + r"\b", text, re.I) is not None


def named_document(encoder: SparseEncoder, reference: str, pool: Sequence[ScoredChunk]) -> str | None:
    """The document ``reference`` names among ``pool``'s (its title and parties in their text), if it names one:
    the best share of the reference's terms, with a small prior for the higher-ranked document.

    The answerer uses it to widen its sentence pool, where a false hit costs only candidates; retrieval's
    focus, which reorders what a caller sees, resolves names against openings (:func:`resolve_document`)."""
    scores = document_overlap(encoder, reference, pool)
    ranked = [(score + 0.1 / (1 + rank), document) for rank, (document, score) in enumerate(scores.items())]
    best = max(ranked, default=(0.0, None))
    return best[1] if best[0] >= 0.3 else None


def document_overlap(
    encoder: SparseEncoder, names: str, pool: Sequence[ScoredChunk], openings: Mapping[str, str] | None = None
) -> dict[str, float]:
    """Per document of ``pool`` (in rank order), the share of the terms of ``names`` in its title and chunks,
    and in the title and parties its opening states (``openings``, where known)."""
    wanted = set(encoder.embed_query(names).indices) if names else set()
    if not wanted:
        return {}
    texts: dict[str, list[str]] = {}
    for chunk in pool:
        document = chunk.record.document_id
        texts.setdefault(document, [chunk.record.title, (openings or {}).get(document, "")]).append(chunk.record.text)
    terms = {d: set(encoder.embed_passage("\n".join(parts)).indices) for d, parts in texts.items()}
    return {d: len(wanted & have) / len(wanted) for d, have in terms.items()}


def term_coverage(encoder: SparseEncoder, query_terms: SparseVector, chunks: list[ScoredChunk]) -> float | None:
    """Share of the query's terms that occur in the top :data:`EVIDENCE_CHUNKS` chunks (None: no terms or chunks).

    A question whose distinctive words appear in no source ("the CEO's salary" over NDAs) has
    nothing to be answered from, however close its embedding happens to be.
    """
    wanted = set(query_terms.indices)
    if not wanted or not chunks:
        return None
    seen: set[int] = set()
    for chunk in chunks[:EVIDENCE_CHUNKS]:
        seen.update(encoder.embed_passage(f"{chunk.record.title}\n{chunk.record.text}").indices)
    return len(wanted & seen) / len(wanted)


def _admitted(chunk: ScoredChunk, access: AccessFilter) -> bool:
    """Belt and braces: the same rule as the index filter, checked again before a chunk leaves."""
    return admits(access, chunk.record)


def citation(
    chunk: ScoredChunk, marker: int, snippet_chars: int, cited: bool = True, focus: Focus | None = None
) -> Citation:
    """The public form of a source; with ``focus``, its snippet shows the sentences holding the question's terms."""
    record = chunk.record
    return Citation(
        marker=marker,
        document_id=record.document_id,
        title=record.title,
        page=record.page,
        page_end=record.page_end,
        start=record.start,
        end=record.end,
        chunk_start=record.start,
        chunk_end=record.end,
        snippet=snippet(record.text, snippet_chars, focus),
        score=round(chunk.score, 6),
        cited=cited,
        ocr=record.ocr,
    )
