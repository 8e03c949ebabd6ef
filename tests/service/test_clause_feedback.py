"""The focused search's ask: names taken out whatever their case, and widened by the words the clauses it
finds across the caller's corpus share (pseudo-relevance feedback), read only from what the caller may see.

Real components: Qdrant Edge, SQLite, the packaged embedder and parser, Qdrant's BM25 encoder.
"""

from __future__ import annotations

from functools import partial

import pytest

from ingest import documents as docs
from ingest.embedding.bm25_encoder import QdrantBm25Encoder
from ingest.index.port import AccessFilter, SparseVector
from ingest.runtime import Components
from ingest.worker import drain
from service import retrieval
from service.question import analyse, without_names


def test_the_documents_names_leave_the_ask_in_any_case() -> None:
    names = "Co-Branding Agreement; theglobe.com Inc.; The Boxlot Company; Boxlot"
    question = "May a party inspect the books under the co-branding agreement between THEGLOBE.COM, INC. and Boxlot?"
    ask = analyse(without_names(question, names)).ask
    assert "co-branding" not in ask.lower() and "theglobe" not in ask.lower()
    assert "inspect the books" in ask
    # one word may be what is asked about: single-word names stay (analyse drops them only when capitalised)
    assert "licensee" in without_names("What must the licensee pay under the supply agreement?", "Licensee")


def test_a_name_that_starts_in_lower_case_is_read_whole() -> None:
    question = analyse("Does our sponsorship agreement with iVillage, Inc. give anyone exclusive rights?")
    assert question.reference == "iVillage Inc." and "Village" not in question.ask
    assert analyse("What does the contract say about exclusive rights?").reference == ""


def test_feedback_adds_the_words_the_found_clauses_share() -> None:
    encoder = QdrantBm25Encoder()
    ask = encoder.embed_query("which coverage must be carried")
    texts = [
        "Insurance. Distributor shall carry insurance coverage with reputable insurers under policies naming Acme.",
        "Insurance. Each party shall maintain insurance policies with insurers rated A- or better.",
        "Insurance. Licensee shall keep product liability insurance policies in force; zebra.",
    ]
    widened = retrieval.with_feedback(encoder, ask, texts)
    added = dict(zip(widened.indices[len(ask.indices) :], widened.values[len(ask.indices) :], strict=True))
    assert widened.indices[: len(ask.indices)] == ask.indices and widened.values[: len(ask.indices)] == ask.values
    for shared in ("insurance", "policies", "insurers"):
        assert encoder.embed_query(shared).indices[0] in added
    assert encoder.embed_query("zebra").indices[0] not in added  # in one found clause only
    assert not set(added) & set(ask.indices)  # an asked word is not added twice
    assert len(added) <= retrieval.FEEDBACK_TERMS
    assert max(added.values()) == pytest.approx(retrieval.FEEDBACK_WEIGHT)
    assert retrieval.with_feedback(encoder, ask, []) == ask


def _contract(name: str, parties: str, clause: str) -> str:
    filler = " ".join(f"Clause {n}. The {name} sets out obligation number {n} of {parties}." for n in range(1, 40))
    return f"{name.upper()}\nThis {name} is made by and between {parties}.\n\n{filler}\n\n{clause}\n"


def _ingest(components: Components, contracts: list[tuple[str, str, str, dict[str, list[str]]]]) -> dict[str, str]:
    """Each (title, parties, closing clause, ACL) as a contract; the document id of each title."""
    ids = {}
    for name, parties, clause, acl in contracts:
        data = _contract(name, parties, clause).encode()
        upload = docs.Upload(filename=f"{name}.txt", data=data, tenant="default", collection="default", acl=acl)
        ids[name] = docs.submit(components, upload).document.id
    drain(components)
    return ids


def _feedback_reads(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The chunk texts each focused search hands to :func:`service.retrieval.with_feedback`, in order."""
    read: list[list[str]] = []
    real = retrieval.with_feedback

    def spy(encoder: QdrantBm25Encoder, ask: SparseVector, texts: list[str]) -> SparseVector:
        read.append(list(texts))
        return real(encoder, ask, texts)

    monkeypatch.setattr(retrieval, "with_feedback", spy)
    return read


READER = AccessFilter(tenant="default", principal_user="u", principal_groups=())


def test_feedback_reads_only_what_the_caller_may_see(components: Components, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = _ingest(
        components,
        [
            (
                "Supply Agreement",
                "Acme Corp. and Globex Inc.",
                "Insurance. Supplier shall maintain insurance policies with reputable insurers.",
                {},
            ),
            (
                "Distribution Agreement",
                "Initech LLC and Umbrella Ltd.",
                "Insurance. Distributor shall carry insurance coverage under policies with insurers.",
                {},
            ),
            (
                "Services Agreement",
                "Hooli Inc. and Vandelay Industries",
                "Insurance. Provider shall carry coverage under policies with insurers; secret-canary.",
                {"groups": ["secret"]},
            ),
        ],
    )
    read = _feedback_reads(monkeypatch)
    question = "What coverage must be carried under the Supply Agreement between Acme Corp. and Globex Inc.?"
    names = partial(docs.document_names, components, "default")
    found = retrieval.retrieve(components, question, READER, 5, names=names).chunks
    assert read and read[-1], "the focused search read no clauses for feedback"
    assert not any("secret-canary" in text for text in read[-1])  # never a clause the caller may not see
    assert found[0].record.document_id == ids["Supply Agreement"]
    insider = AccessFilter(tenant="default", principal_user="u", principal_groups=("secret",))
    retrieval.retrieve(components, question, insider, 5, names=names)
    assert any("secret-canary" in text for text in read[-1])  # the same search reads it for a member


def test_with_the_ask_embedded_feedback_finds_a_clause_kind_by_meaning_when_it_shares_no_word(
    components: Components, monkeypatch: pytest.MonkeyPatch
) -> None:
    supplier = "Insurance. Supplier shall maintain insurance policies."
    _ingest(
        components,
        [
            ("Supply Agreement", "Acme Corp. and Globex Inc.", supplier, {}),
            ("Distribution Agreement", "Initech LLC and Umbrella Ltd.", "Insurance. Distributor is insured.", {}),
        ],
    )
    read = _feedback_reads(monkeypatch)
    asked = "Which cover against accidents must be bought"
    question = f"{asked} under the Supply Agreement between Acme Corp. and Globex Inc.?"
    ask, clause = components.sparse.embed_query(asked), components.sparse.embed_passage(supplier)
    assert not set(ask.indices) & set(clause.indices)  # no word in common: only the meaning can find it
    names = partial(docs.document_names, components, "default")
    retrieval.retrieve(components, question, READER, 3, names=names)  # the default: the ask's words only
    assert read, "the question was not focused on the Supply Agreement"
    assert not any("insur" in text.lower() for text in read[-1])
    found = retrieval.retrieve(components, question, READER, 3, names=names, embed_ask=True).chunks
    assert sum("insur" in text.lower() for text in read[-1]) == 2  # both contracts' insurance clauses
    assert supplier in found[0].record.text
