"""Cross-tenant isolation: the same text (and, in the index, the same document ids) in two tenants;
reads, listings, counts and deletes in one never see or touch the other."""

from __future__ import annotations

from pathlib import Path

from ingest.index.port import AccessFilter, ChunkRecord
from ingest.index.qdrant_edge_index import QdrantEdgeIndex
from tests.security.conftest import Site

TEXT = (
    "Master services agreement between Initech and Umbrella. The supplier shall keep all customer data "
    "inside the European Union and shall notify the customer of any breach within 24 hours."
)
QUERY = {"query": "within how many hours must a breach be notified?", "k": 10}


def _ids(site: Site, headers: dict[str, str]) -> set[str]:
    return {r["document_id"] for r in site.client.post("/v1/search", headers=headers, json=QUERY).json()["results"]}


def _without_id(body: dict, document_id: str) -> dict:  # type: ignore[type-arg]
    return {**body["error"], "message": body["error"]["message"].replace(document_id, "<id>")}


def test_same_text_in_two_tenants_stays_apart(site: Site) -> None:
    # tenants of their own: other tests of this site upload into acme and globex
    acme, globex = site.key("initech", "reader,contributor"), site.key("umbrella", "reader,contributor")
    acme_doc, globex_doc = site.upload(acme, "msa.txt", TEXT), site.upload(globex, "msa.txt", TEXT)
    assert acme_doc != globex_doc  # same bytes, another tenant: never a "duplicate" of the other's document
    site.wait_ready(acme, acme_doc)
    site.wait_ready(globex, globex_doc)
    assert _ids(site, acme) == {acme_doc} and _ids(site, globex) == {globex_doc}

    listed = site.client.get("/v1/documents", headers=acme).json()
    assert globex_doc not in {d["id"] for d in listed["documents"]}
    assert listed["total"] == len(listed["documents"]) and all(d["id"] != globex_doc for d in listed["documents"])

    foreign, missing = (site.client.get(f"/v1/documents/{i}", headers=acme) for i in (globex_doc, "f" * 32))
    assert foreign.status_code == missing.status_code == 404
    assert _without_id(foreign.json(), globex_doc) == _without_id(missing.json(), "f" * 32)

    refused = site.client.delete(f"/v1/documents/{globex_doc}", headers=acme)
    assert refused.status_code == 404 and _ids(site, globex) == {globex_doc}
    assert site.client.delete(f"/v1/documents/{acme_doc}", headers=acme).status_code == 200
    assert _ids(site, acme) == set() and _ids(site, globex) == {globex_doc}
    assert site.client.get(f"/v1/documents/{globex_doc}", headers=globex).json()["status"] == "ready"


def test_an_admin_is_an_admin_of_its_own_tenant_only(site: Site) -> None:
    globex = site.key("globex", "contributor,reader")
    doc = site.upload(globex, "globex-only.txt", TEXT + " Globex internal copy.")
    admin = site.key("acme", "admin")
    assert site.client.get(f"/v1/documents/{doc}", headers=admin).status_code == 404
    assert site.client.delete(f"/v1/documents/{doc}", headers=admin).status_code == 404
    assert doc not in {d["id"] for d in site.client.get("/v1/documents", headers=admin).json()["documents"]}
    created = site.client.post("/v1/keys", headers=admin, json={"roles": ["admin"]}).json()
    assert created["tenant"] == "acme"
    globex_keys = {k["id"] for k in site.client.get("/v1/keys", headers=site.key("globex", "admin")).json()["keys"]}
    assert created["id"] not in globex_keys
    assert site.client.delete(f"/v1/keys/{created['id']}", headers=site.key("globex", "admin")).status_code == 404


def _record(tenant: str, point: int, text: str) -> ChunkRecord:
    return ChunkRecord(
        id=f"00000000-0000-4000-8000-{point:012d}",
        tenant=tenant,
        collection="c",
        document_id="same-id",
        title="t",
        text=text,
        page=1,
        page_end=1,
        start=0,
        end=len(text),
        ordinal=point,
    )


def test_same_document_id_in_two_tenants_in_the_index(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    from ingest.embedding.bm25_encoder import QdrantBm25Encoder

    index = QdrantEdgeIndex(tmp_path / "index", embedder.dim)
    index.warm_up()
    try:
        records = [_record("t1", 1, TEXT), _record("t1", 2, "second chunk"), _record("t2", 3, TEXT)]
        bm25 = QdrantBm25Encoder()
        index.upsert(
            records, embedder.embed_passages([r.text for r in records]), [bm25.embed_passage(r.text) for r in records]
        )
        one, two = (
            AccessFilter(tenant="t1", document_ids=("same-id",)),
            AccessFilter(tenant="t2", document_ids=("same-id",)),
        )
        assert (index.count(one), index.count(two)) == (2, 1)
        found = index.search(embedder.embed_query(TEXT), bm25.embed_query(TEXT), AccessFilter(tenant="t2"), 10)
        assert [c.record.tenant for c in found.chunks] == ["t2"]
        index.delete_document("t1", "same-id")
        assert (index.count(one), index.count(two)) == (0, 1)
    finally:
        index.close()
