"""Document-aware retrieval (``ENCLAVE_RETRIEVAL__DOCUMENT_FOCUS``): a question that names one of the retrieved
contracts by the title and parties its opening states gets that contract's chunks, ranked by what it asks,
first; inside the caller's access filter only.

Real components: Qdrant Edge, SQLite, the packaged embedder and parser.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from ingest import documents as docs
from ingest.index.port import AccessFilter
from ingest.runtime import build_components
from ingest.worker import drain
from service.retrieval import retrieve
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
