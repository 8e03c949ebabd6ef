"""The Qdrant Edge adapter against the index contract: filters inside the query, deletes, persistence."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.embedding.bm25_encoder import QdrantBm25Encoder
from ingest.index.port import AccessFilter, ChunkRecord
from ingest.index.qdrant_edge_index import QdrantEdgeIndex

TEXTS = {
    "law": "This agreement is governed by the laws of the State of Delaware.",
    "pay": "Invoices are payable within thirty days of receipt.",
    "hand": "Clean hands with alcohol rub for twenty seconds before touching a patient.",
}


def _record(i: int, key: str, tenant: str = "t1", **kw: object) -> ChunkRecord:
    return ChunkRecord(id=f"00000000-0000-4000-8000-{i:012d}", tenant=tenant, collection=kw.pop("collection", "c1"),  # type: ignore[arg-type]
                       document_id=kw.pop("document_id", key), title=key, text=TEXTS[key], page=1, page_end=1,  # type: ignore[arg-type]
                       start=0, end=len(TEXTS[key]), ordinal=0, **kw)  # type: ignore[arg-type]


@pytest.fixture
def index(tmp_path: Path, embedder):  # type: ignore[no-untyped-def]
    idx = QdrantEdgeIndex(tmp_path / "index", embedder.dim)
    idx.warm_up()
    yield idx
    idx.close()


def _fill(index: QdrantEdgeIndex, embedder, records: list[ChunkRecord]) -> None:  # type: ignore[no-untyped-def]
    bm25 = QdrantBm25Encoder()
    index.upsert(records, embedder.embed_passages([r.text for r in records]), [bm25.embed_passage(r.text) for r in records])


def _search(index: QdrantEdgeIndex, embedder, query: str, access: AccessFilter, mode: str = "hybrid") -> list[str]:  # type: ignore[no-untyped-def]
    result = index.search(embedder.embed_query(query), QdrantBm25Encoder().embed_query(query), access, 10, mode)  # type: ignore[arg-type]
    return [c.record.document_id for c in result.chunks]


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_relevant_chunk_ranks_first_in_every_mode(index: QdrantEdgeIndex, embedder, mode: str) -> None:  # type: ignore[no-untyped-def]
    _fill(index, embedder, [_record(1, "law"), _record(2, "pay"), _record(3, "hand")])
    assert _search(index, embedder, "which state's laws govern the agreement", AccessFilter(tenant="t1"), mode)[0] == "law"


def test_tenant_and_acl_are_enforced_inside_the_query(index: QdrantEdgeIndex, embedder) -> None:  # type: ignore[no-untyped-def]
    _fill(index, embedder, [
        _record(1, "law", acl_groups=("legal",)),
        _record(2, "pay", acl_users=("alice",)),
        _record(3, "hand"),  # no ACL: the whole tenant may read it
        _record(4, "law", tenant="t2", document_id="other-tenant"),
    ])
    q = "governing law payment hands"
    assert set(_search(index, embedder, q, AccessFilter(tenant="t1", principal_user="bob", principal_groups=("legal",)))) == {"law", "hand"}
    assert set(_search(index, embedder, q, AccessFilter(tenant="t1", principal_user="alice", principal_groups=()))) == {"pay", "hand"}
    assert set(_search(index, embedder, q, AccessFilter(tenant="t2"))) == {"other-tenant"}
    assert index.count(AccessFilter(tenant="t1", principal_user="eve", principal_groups=("none",))) == 1


def test_collection_and_classification_filters(index: QdrantEdgeIndex, embedder) -> None:  # type: ignore[no-untyped-def]
    _fill(index, embedder, [_record(1, "law", collection="contracts", classification="privileged"), _record(2, "pay"), _record(3, "hand")])
    assert _search(index, embedder, "law", AccessFilter(tenant="t1", collections=("contracts",))) == ["law"]
    assert "law" not in _search(index, embedder, "law", AccessFilter(tenant="t1", classifications=("internal",)))


def test_delete_document_and_keep_version(index: QdrantEdgeIndex, embedder) -> None:  # type: ignore[no-untyped-def]
    _fill(index, embedder, [_record(1, "law", document_id="d", version=1), _record(2, "pay", document_id="d", version=2), _record(3, "hand")])
    index.delete_document("t1", "d", keep_version=2)
    assert index.count(AccessFilter(tenant="t1", document_ids=("d",))) == 1
    index.delete_document("t2", "d")  # another tenant's delete touches nothing here
    assert index.count(AccessFilter(tenant="t1", document_ids=("d",))) == 1
    index.delete_document("t1", "d")
    assert index.count(AccessFilter(tenant="t1")) == 1


def test_points_survive_reopening(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    first = QdrantEdgeIndex(tmp_path / "idx", embedder.dim)
    first.warm_up()
    _fill(first, embedder, [_record(1, "law"), _record(2, "pay")])
    first.close()
    second = QdrantEdgeIndex(tmp_path / "idx", embedder.dim)
    second.warm_up()
    assert second.count(AccessFilter(tenant="t1")) == 2
    assert _search(second, embedder, "governing law", AccessFilter(tenant="t1"))[0] == "law"
    second.close()
