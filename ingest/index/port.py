"""The vector index port.

An index stores one point per chunk: a dense vector (cosine), a sparse BM25 vector and a payload
``{tenant, collection, document_id, version, acl_groups, acl_users, classification, page, page_end,
start, end, ordinal, title, text}``. Every search takes an :class:`AccessFilter` that the adapter
must turn into a filter *inside the index query* — never a post-filter — so that a caller can
neither see nor be slowed down by chunks it may not read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

SearchMode = Literal["hybrid", "dense", "bm25"]


@dataclass(frozen=True)
class SparseVector:
    indices: list[int]
    values: list[float]


@dataclass(frozen=True)
class ChunkRecord:
    """One chunk as the index stores it."""

    id: str
    tenant: str
    collection: str
    document_id: str
    title: str
    text: str
    page: int | None
    page_end: int | None
    start: int
    end: int
    ordinal: int
    version: int = 1
    classification: str = "internal"
    acl_groups: tuple[str, ...] = ()
    acl_users: tuple[str, ...] = ()
    ocr: bool = False  # the text was read by OCR from a scanned page (citations say so)


@dataclass(frozen=True)
class AccessFilter:
    """What a caller may see: always one tenant; optionally narrowed further.

    ``principal_groups``/``principal_user`` restrict to chunks whose ACL names one of them; a
    chunk with an empty ACL is visible to the whole tenant. ``None`` means no ACL restriction
    (tenant-wide admin or the embedded dev mode). ``excluded_groups`` is an ethical wall: a chunk
    whose ACL names any of them is invisible, whatever else admits it. ``classifications=()``
    admits nothing.
    """

    tenant: str
    collections: tuple[str, ...] | None = None
    document_ids: tuple[str, ...] | None = None
    classifications: tuple[str, ...] | None = None
    principal_user: str | None = None
    principal_groups: tuple[str, ...] | None = None
    excluded_groups: tuple[str, ...] | None = None


class Labelled(Protocol):
    """What access is decided on: a chunk, or a document's row seen the same way."""

    @property
    def tenant(self) -> str: ...
    @property
    def collection(self) -> str: ...
    @property
    def document_id(self) -> str: ...
    @property
    def classification(self) -> str: ...
    @property
    def acl_groups(self) -> tuple[str, ...]: ...
    @property
    def acl_users(self) -> tuple[str, ...]: ...


def admits(access: AccessFilter, record: Labelled) -> bool:
    """The filter's rule in Python: what every adapter's index filter must agree with, chunk for chunk."""
    if record.tenant != access.tenant:
        return False
    if access.collections is not None and record.collection not in access.collections:
        return False
    if access.document_ids is not None and record.document_id not in access.document_ids:
        return False
    if access.classifications is not None and record.classification not in access.classifications:
        return False
    if access.excluded_groups and set(record.acl_groups) & set(access.excluded_groups):
        return False
    if access.principal_groups is None and access.principal_user is None:
        return True
    if not record.acl_groups and not record.acl_users:
        return True
    return (
        bool(set(record.acl_groups) & set(access.principal_groups or ())) or access.principal_user in record.acl_users
    )


@dataclass(frozen=True)
class ScoredChunk:
    record: ChunkRecord
    score: float
    dense_score: float | None = None


@dataclass(frozen=True)
class SearchResult:
    """Ranked chunks plus the best dense similarity seen (the evidence strength)."""

    chunks: list[ScoredChunk]
    best_dense_score: float | None = None
    extra: dict[str, float] = field(default_factory=dict)


class VectorIndex(Protocol):
    """Contract every index adapter honours (see tests/ingest/index_contract.py)."""

    def warm_up(self) -> None:
        """Open or create the collection with its payload indexes."""

    def upsert(
        self,
        records: Sequence[ChunkRecord],
        dense: Sequence[Sequence[float]],
        sparse: Sequence[SparseVector],
    ) -> None:
        """Insert or replace chunks (same id → replaced)."""

    def delete_document(self, tenant: str, document_id: str, *, keep_version: int | None = None) -> None:
        """Remove a document's chunks (all versions, or all but ``keep_version``)."""

    def search(
        self,
        dense: Sequence[float],
        sparse: SparseVector,
        access: AccessFilter,
        limit: int,
        mode: SearchMode = "hybrid",
        *,
        best_dense: bool = True,
    ) -> SearchResult:
        """Rank chunks the caller may see, best first; with ``best_dense``, also the best dense similarity
        among them (:attr:`SearchResult.best_dense_score`, one more nearest-neighbour search: a search whose
        evidence strength nobody reads passes False and gets None)."""

    def count(self, access: AccessFilter) -> int:
        """Number of chunks the filter admits."""

    def healthy(self) -> bool:
        """Whether the index answers."""

    def flush(self) -> None:
        """Make acknowledged writes durable."""

    def close(self) -> None:
        """Release files and threads."""
