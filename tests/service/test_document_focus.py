"""Document-aware retrieval (``ENCLAVE_RETRIEVAL__DOCUMENT_FOCUS``): a question that names one of the retrieved
contracts by the title and parties its opening states gets that contract's chunks, ranked by what it asks,
first; inside the caller's access filter only.

Real components: Qdrant Edge, SQLite, the packaged embedder and parser.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from ingest import documents as docs
from ingest.embedding.bm25_encoder import QdrantBm25Encoder
from ingest.index.port import AccessFilter
from ingest.runtime import build_components
from ingest.worker import drain
from service.question import analyse
from service.retrieval import resolve_document, retrieve
from tests.conftest import make_settings


def _contract(name: str, parties: str, law: str) -> str:
    filler = " ".join(f"Clause {n}. The {name} sets out obligation number {n} of {parties}." for n in range(1, 60))
    return (
        f"{name.upper()}\nThis {name} is made by and between {parties}.\n\n{filler}\n\n"
        f"Governing Law. This {name} shall be governed by the laws of the State of {law}.\n"
    )


def test_the_named_contract_leads_and_the_filter_holds(tmp_path: Path, embedder, parser) -> None:  # type: ignore[no-untyped-def]
    components = build_components(make_settings(tmp_path), embedder=embedder, parser=parser)
    try:
        ids = {}
        for name, parties, law, acl in (
            ("Supply Agreement", "Acme Corp. and Globex Inc.", "Delaware", {}),
            ("Distribution Agreement", "Initech LLC and Umbrella Ltd.", "New York", {}),
            ("Services Agreement", "Acme Corp. and Hooli Inc.", "Texas", {"groups": ["secret"]}),
        ):
            upload = docs.Upload(
                filename=f"{name}.txt",
                data=_contract(name, parties, law).encode(),
                tenant="default",
                collection="default",
                acl=acl,
            )
            ids[name] = docs.submit(components, upload).document.id
        drain(components)
        question = "Which law governs the Supply Agreement between Acme Corp. and Globex Inc.?"
        reader = AccessFilter(tenant="default", principal_user="u", principal_groups=())
        names = partial(docs.document_names, components, "default")
        found = retrieve(components, question, reader, 5, names=names).chunks
        assert found[0].record.document_id == ids["Supply Agreement"] and "Delaware" in found[0].record.text
        assert ids["Services Agreement"] not in {c.record.document_id for c in found}  # never outside the ACL
        hidden = retrieve(
            components,
            "Which law governs the Services Agreement between Acme Corp. and Hooli Inc.?",
            reader,
            5,
            names=names,
        ).chunks
        assert ids["Services Agreement"] not in {c.record.document_id for c in hidden}
    finally:
        components.close()


BM25 = QdrantBm25Encoder()
SUPPLY, DISTRIBUTION, OTHER_SUPPLY = "doc-supply", "doc-distribution", "doc-other-supply"
NAMES = {
    SUPPLY: "Supply Agreement; Acme Corp.; Globex Inc.; Supplier; Buyer",
    DISTRIBUTION: "Distribution Agreement; Initech LLC; Umbrella Ltd.",
    OTHER_SUPPLY: "Supply Agreement; Hooli Inc.; Globex Inc.",
}


def _resolved(question: str, ranked: list[str]) -> str | None:
    reference = analyse(question).reference
    return resolve_document(BM25, reference, ranked, {d: NAMES[d] for d in ranked}, question)


def test_a_contract_named_by_its_title_in_lower_case_and_one_party_is_named() -> None:
    """ "Our supply agreement with Globex": one capitalised word, which two naming words would have been needed for."""
    question = "Which law governs our supply agreement with Globex?"
    assert analyse(question).reference == "Globex"
    assert _resolved(question, [DISTRIBUTION, SUPPLY]) == SUPPLY
    assert _resolved("Which law governs the supply agreement between globex and acme?", [SUPPLY]) is None  # no name


def test_a_title_and_party_that_fit_two_contracts_name_neither() -> None:
    assert _resolved("Which law governs our supply agreement with Globex?", [SUPPLY, OTHER_SUPPLY]) is None
    assert _resolved("Which law governs our supply agreement with Acme?", [OTHER_SUPPLY, SUPPLY]) == SUPPLY


def test_a_corporate_word_or_a_title_alone_names_no_contract() -> None:
    assert _resolved("Which law governs our supply agreement with Hooli Inc.?", [DISTRIBUTION, SUPPLY]) is None
    assert _resolved("Which law governs our contract with Globex?", [SUPPLY, DISTRIBUTION]) is None  # no title stated
