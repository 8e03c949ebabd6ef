"""What the BM25 index gives away (security review, findings 3 and 4), attacked over the API.

- Term statistics are per tenant and per reader: another tenant's uploads never move a score (the
  review saw 3.25 → 1.83), nor do a group's documents move the scores of a reader outside the group.
- Term ids are keyed under the tenant's key: the stored index holds no word's public hash, so hashing a
  dictionary offline recovers nothing, and the same word has unrelated ids in two tenants.
- Erasure reaches every byte: after DELETE, a canary word's keyed id is in no file under the data
  directory (no write-ahead log keeps it; the segment that held it is vacuumed).
"""

from __future__ import annotations

import struct
import uuid
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.embedding.bm25_encoder import QdrantBm25Encoder
from ingest.index.port import SparseVector
from ingest.keys.terms import key_vector, keyed_id, term_key
from tests.security.conftest import Site

BM25 = QdrantBm25Encoder()


def term_id(word: str) -> int:
    """The public id the BM25 tokenizer gives ``word`` (what an attacker computes from a dictionary)."""
    [term] = BM25.embed_query(word).indices
    return term


def files_holding(root: Path, term: int) -> list[str]:
    """Files under ``root`` whose bytes hold ``term`` as a little- or big-endian u32 (how the engine stores ids)."""
    forms = (struct.pack("<I", term), struct.pack(">I", term))
    return sorted(
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and any(f in p.read_bytes() for f in forms)
    )


def canary() -> str:
    return "zq" + uuid.uuid4().hex[:10] + "x"


def bm25_scores(site: Site, headers: dict[str, str], query: str) -> dict[str, float]:
    response = site.client.post("/v1/search", headers=headers, json={"query": query, "k": 10, "mode": "bm25"})
    assert response.status_code == 200, response.text
    return {c["document_id"]: c["score"] for c in response.json()["results"]}


def test_another_tenants_uploads_never_move_a_score(site: Site) -> None:
    word = canary()
    acme, globex = site.key("acme", "contributor,reader"), site.key("globex", "contributor,reader")
    mine = site.upload(acme, "acme.txt", f"The {word} clause survives termination of this agreement.")
    other = site.upload(acme, "acme-2.txt", "Payment is due within thirty days of the invoice date.")
    site.wait_ready(acme, mine, other)
    before = bm25_scores(site, acme, f"{word} clause")
    assert mine in before

    flood = [site.upload(globex, f"g{i}.txt", f"{word} {word} appears in the {word} clause, {i}.") for i in range(5)]
    site.wait_ready(globex, *flood)
    assert bm25_scores(site, acme, f"{word} clause") == before
    assert set(bm25_scores(site, globex, word)) == set(flood)  # globex does find its own


def test_a_groups_documents_never_move_the_scores_of_a_reader_outside_it(site: Site) -> None:
    word = canary()
    writer = site.key("acme", "contributor,reader", groups="partners")
    outsider = site.key("acme", "reader", groups="staff")
    shared = site.upload(writer, "shared.txt", f"The {word} policy applies to every employee.")
    site.wait_ready(writer, shared)
    before = bm25_scores(site, outsider, f"{word} policy")
    assert shared in before

    hidden = [
        site.upload(
            writer,
            f"p{i}.txt",
            f"{word} {word}: the partners' {word} policy, part {i}.",
            acl='{"groups": ["partners"]}',
        )
        for i in range(4)
    ]
    site.wait_ready(writer, *hidden)
    assert bm25_scores(site, outsider, f"{word} policy") == before
    assert set(bm25_scores(site, writer, word)) >= set(hidden)  # a partner sees them (and counts them)


def test_the_index_holds_keyed_term_ids_and_erasure_removes_them(site: Site) -> None:
    word = canary()
    acme = site.key("acme", "contributor,reader,admin")
    data = site.state.settings.data_dir
    document = site.upload(acme, "memo.txt", f"Project {word} is confidential.\n\nIts budget is two million dollars.")
    site.wait_ready(acme, document)
    site.state.components.index.flush()

    public = term_id(word)
    keyed = keyed_id(term_key(site.state.components.compliance.keyring.tenant_key("acme")), public)
    assert files_holding(data, public) == []  # a dictionary attack on the stored index finds nothing
    assert files_holding(data / "index", keyed), "the scanner must see the keyed id where it is stored"
    assert bm25_scores(site, acme, word), "and the word is still found through the API"

    receipt = site.client.delete(f"/v1/documents/{document}", headers=acme)
    assert receipt.status_code == 200, receipt.text
    assert receipt.json()["verification"]["index_points_remaining"] == 0
    assert files_holding(data, keyed) == []
    assert files_holding(data, public) == []
    assert bm25_scores(site, acme, word) == {}


@settings(max_examples=50, deadline=None)
@given(
    words=st.lists(st.from_regex(r"[a-z]{3,12}", fullmatch=True), min_size=1, max_size=20, unique=True),
    tenants=st.lists(st.binary(min_size=32, max_size=32), min_size=2, max_size=2, unique=True),
)
def test_keyed_ids_are_per_tenant_and_keep_bm25_weights(words: list[str], tenants: list[bytes]) -> None:
    vector = BM25.embed_passage(" ".join(words))
    a, b = (key_vector(term_key(k), vector) for k in tenants)
    for keyed in (a, b):
        assert abs(sum(keyed.values) - sum(vector.values)) < 1e-4  # weights kept (ids that collide are added)
        assert len(set(keyed.indices)) == len(keyed.indices)  # ... and never repeated
        assert not set(keyed.indices) & set(vector.indices)  # public ids do not survive
    assert set(a.indices) != set(b.indices)  # the same words, unrelated ids in another tenant
    again = key_vector(term_key(tenants[0]), vector)
    assert again == a  # deterministic inside a tenant: a query meets its documents
    assert key_vector(term_key(tenants[0]), SparseVector([], [])) == SparseVector([], [])
