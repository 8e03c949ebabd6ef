"""The VectorIndex contract: every adapter's test class inherits :class:`IndexContract`.

A subclass provides two fixtures: ``index`` (an open, empty index) and ``reopen`` (a callable that
closes an index and opens a new one over the same storage). Everything here is what a user of
Enclave would notice: the right chunk first, nobody sees another tenant's or a walled-off chunk,
deletes delete, acknowledged writes survive a restart.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import pytest

from ingest.embedding.bm25_encoder import QdrantBm25Encoder
from ingest.index.port import AccessFilter, ChunkRecord, SparseVector, VectorIndex, admits

TEXTS = {
    "law": "This agreement is governed by the laws of the State of Delaware.",
    "pay": "Invoices are payable within thirty days of receipt.",
    "hand": "Clean hands with alcohol rub for twenty seconds before touching a patient.",
}
Reopen = Callable[[VectorIndex], VectorIndex]


def chunk_id(i: int) -> str:
    return f"00000000-0000-4000-8000-{i:012d}"


def record(i: int, key: str, tenant: str = "t1", **kw: object) -> ChunkRecord:
    return ChunkRecord(
        id=chunk_id(i),
        tenant=tenant,
        collection=kw.pop("collection", "c1"),  # type: ignore[arg-type]
        document_id=kw.pop("document_id", key),
        title=key,
        text=TEXTS[key],
        page=1,
        page_end=1,  # type: ignore[arg-type]
        start=0,
        end=len(TEXTS[key]),
        ordinal=0,
        **kw,
    )  # type: ignore[arg-type]


def fill(index: VectorIndex, embedder, records: Sequence[ChunkRecord]) -> None:  # type: ignore[no-untyped-def]
    bm25 = QdrantBm25Encoder()
    index.upsert(
        records, embedder.embed_passages([r.text for r in records]), [bm25.embed_passage(r.text) for r in records]
    )


def search(
    index: VectorIndex, embedder, query: str, access: AccessFilter, mode: str = "hybrid", limit: int = 10
) -> list[str]:  # type: ignore[no-untyped-def]
    result = index.search(embedder.embed_query(query), QdrantBm25Encoder().embed_query(query), access, limit, mode)  # type: ignore[arg-type]
    return [c.record.document_id for c in result.chunks]


def _acl_grid() -> list[ChunkRecord]:
    """Chunks over every combination of tenant, collection, classification and ACL the filters distinguish."""
    acls = [((), ()), (("legal",), ()), ((), ("alice",)), (("legal", "hr"), ("bob",)), (("wall",), ())]
    combos = itertools.product(("t1", "t2"), ("c1", "c2"), ("internal", "privileged"), acls)
    return [
        ChunkRecord(
            id=chunk_id(100 + n),
            tenant=t,
            collection=c,
            document_id=f"d{n % 3}",
            title="",
            text="",
            page=None,
            page_end=None,
            start=0,
            end=1,
            ordinal=n,
            classification=cls,
            acl_groups=groups,
            acl_users=users,
        )
        for n, (t, c, cls, (groups, users)) in enumerate(combos)
    ]


FILTERS = [
    AccessFilter(tenant="t1"),
    AccessFilter(tenant="t2", collections=("c2",)),
    AccessFilter(tenant="t1", classifications=("internal",)),
    AccessFilter(tenant="t1", classifications=()),
    AccessFilter(tenant="t1", document_ids=("d0", "d2")),
    AccessFilter(tenant="t1", principal_user="alice", principal_groups=()),
    AccessFilter(tenant="t1", principal_user="bob", principal_groups=("legal",)),
    AccessFilter(tenant="t1", principal_user="eve", principal_groups=("nobody",)),
    AccessFilter(tenant="t1", principal_user="bob", principal_groups=("legal",), excluded_groups=("hr",)),
    AccessFilter(tenant="t1", excluded_groups=("wall",), collections=("c1",)),
]


class IndexContract:
    """Tests every :class:`~ingest.index.port.VectorIndex` adapter must pass."""

    @pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
    def test_relevant_chunk_ranks_first_in_every_mode(self, index: VectorIndex, embedder, mode: str) -> None:  # type: ignore[no-untyped-def]
        fill(index, embedder, [record(1, "law"), record(2, "pay"), record(3, "hand")])
        assert (
            search(index, embedder, "which state's laws govern the agreement", AccessFilter(tenant="t1"), mode)[0]
            == "law"
        )

    @pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
    def test_without_best_dense_the_same_ranking_and_no_evidence_score(  # type: ignore[no-untyped-def]
        self, index: VectorIndex, embedder, mode: str
    ) -> None:
        fill(index, embedder, [record(1, "law"), record(2, "pay"), record(3, "hand"), record(4, "law", tenant="t2")])
        query = "which state's laws govern the agreement"
        dense, sparse = embedder.embed_query(query), QdrantBm25Encoder().embed_query(query)
        access = AccessFilter(tenant="t1")
        full = index.search(dense, sparse, access, 3, mode)  # type: ignore[arg-type]
        bare = index.search(dense, sparse, access, 3, mode, best_dense=False)  # type: ignore[arg-type]
        assert [c.record.id for c in bare.chunks] == [c.record.id for c in full.chunks]
        assert [c.score for c in bare.chunks] == pytest.approx([c.score for c in full.chunks], abs=1e-5)
        assert full.best_dense_score is not None and full.best_dense_score > 0.3
        assert bare.best_dense_score is None
        assert {c.record.tenant for c in bare.chunks} == {"t1"}  # the other tenant's copy of the clause stays out

    def test_tenant_and_acl_are_enforced_inside_the_query(self, index: VectorIndex, embedder) -> None:  # type: ignore[no-untyped-def]
        fill(
            index,
            embedder,
            [
                record(1, "law", acl_groups=("legal",)),
                record(2, "pay", acl_users=("alice",)),
                record(3, "hand"),  # no ACL: the whole tenant may read it
                record(4, "law", tenant="t2", document_id="other-tenant"),
            ],
        )
        q = "governing law payment hands"
        assert set(
            search(index, embedder, q, AccessFilter(tenant="t1", principal_user="bob", principal_groups=("legal",)))
        ) == {"law", "hand"}
        assert set(
            search(index, embedder, q, AccessFilter(tenant="t1", principal_user="alice", principal_groups=()))
        ) == {"pay", "hand"}
        assert set(search(index, embedder, q, AccessFilter(tenant="t2"))) == {"other-tenant"}
        assert index.count(AccessFilter(tenant="t1", principal_user="eve", principal_groups=("none",))) == 1

    def test_collection_and_classification_filters(self, index: VectorIndex, embedder) -> None:  # type: ignore[no-untyped-def]
        fill(
            index,
            embedder,
            [
                record(1, "law", collection="contracts", classification="privileged"),
                record(2, "pay"),
                record(3, "hand"),
            ],
        )
        assert search(index, embedder, "law", AccessFilter(tenant="t1", collections=("contracts",))) == ["law"]
        assert "law" not in search(index, embedder, "law", AccessFilter(tenant="t1", classifications=("internal",)))

    def test_every_filter_admits_exactly_what_the_rule_admits(self, index: VectorIndex, embedder) -> None:  # type: ignore[no-untyped-def]
        grid = _acl_grid()
        unit = [1.0] + [0.0] * (embedder.dim - 1)
        index.upsert(grid, [unit] * len(grid), [SparseVector([1], [1.0])] * len(grid))
        for access in FILTERS:
            expected = sorted(r.id for r in grid if admits(access, r))
            found = index.search(unit, SparseVector([1], [1.0]), access, len(grid), "dense").chunks
            assert index.count(access) == len(expected), access
            assert sorted(c.record.id for c in found) == expected, access

    def test_delete_document_and_keep_version(self, index: VectorIndex, embedder) -> None:  # type: ignore[no-untyped-def]
        fill(
            index,
            embedder,
            [
                record(1, "law", document_id="d", version=1),
                record(2, "pay", document_id="d", version=2),
                record(3, "hand"),
            ],
        )
        index.delete_document("t1", "d", keep_version=2)
        assert index.count(AccessFilter(tenant="t1", document_ids=("d",))) == 1
        index.delete_document("t2", "d")  # another tenant's delete touches nothing here
        assert index.count(AccessFilter(tenant="t1", document_ids=("d",))) == 1
        index.delete_document("t1", "d")
        assert index.count(AccessFilter(tenant="t1")) == 1

    def test_same_id_replaces_and_payload_round_trips(self, index: VectorIndex, embedder) -> None:  # type: ignore[no-untyped-def]
        fill(index, embedder, [record(1, "law", version=1)])
        fill(
            index,
            embedder,
            [record(1, "law", version=2, acl_groups=("legal",), acl_users=("ann",), classification="privileged")],
        )
        assert index.count(AccessFilter(tenant="t1")) == 1
        [hit] = index.search(
            embedder.embed_query("law"), QdrantBm25Encoder().embed_query("law"), AccessFilter(tenant="t1"), 5
        ).chunks
        assert hit.record == record(
            1, "law", version=2, acl_groups=("legal",), acl_users=("ann",), classification="privileged"
        )

    def test_points_survive_reopening(self, index: VectorIndex, reopen: Reopen, embedder) -> None:  # type: ignore[no-untyped-def]
        fill(index, embedder, [record(1, "law"), record(2, "pay")])
        index.flush()
        second = reopen(index)
        assert second.healthy()
        assert second.count(AccessFilter(tenant="t1")) == 2
        assert search(second, embedder, "governing law", AccessFilter(tenant="t1"))[0] == "law"

    def test_bm25_scores_depend_only_on_what_the_caller_may_read(self, index: VectorIndex, embedder) -> None:  # type: ignore[no-untyped-def]
        """Term statistics follow the access filter: no other tenant or ACL group moves a score."""
        fill(index, embedder, [record(1, "law"), record(2, "pay"), record(3, "hand")])

        def scores(access: AccessFilter) -> list[tuple[str, float]]:
            result = index.search(
                embedder.embed_query("delaware law"),
                QdrantBm25Encoder().embed_query("delaware law"),
                access,
                10,
                "bm25",
            )
            return [(c.record.id, round(c.score, 6)) for c in result.chunks]

        tenant, reader = AccessFilter(tenant="t1"), AccessFilter(tenant="t1", principal_user="bob", principal_groups=())
        before, before_reader = scores(tenant), scores(reader)
        assert before and before[0][0] == chunk_id(1)
        # another tenant writes the same words many times, and chunks without them
        fill(index, embedder, [record(10 + i, "law", tenant="t2", document_id=f"t2-{i}") for i in range(6)])
        fill(index, embedder, [record(20 + i, "pay", tenant="t2", document_id=f"t2-pay-{i}") for i in range(6)])
        assert scores(tenant) == before
        # inside the tenant, chunks of a group bob is not in move nobody's scores but those who may read them
        fill(index, embedder, [record(30 + i, "law", acl_groups=("partners",), document_id=f"p-{i}") for i in range(4)])
        assert scores(reader) == before_reader
        assert scores(tenant) != before  # a tenant-wide reader does see them, and its statistics count them
