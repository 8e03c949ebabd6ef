"""Encryption at rest for the index payload and the original uploads, in one place.

:class:`SealedIndex` wraps any :class:`~ingest.index.port.VectorIndex`: callers hand it and get
back chunk text and titles in clear, while the adapter only ever stores them sealed under the
document's key (the vectors are computed from clear text before this point, so dense and BM25
search are unaffected). It also keys every BM25 term id under the tenant's key (:mod:`ingest.keys.terms`)
on the way in, for stored chunks and queries alike, so the index never holds a word's public hash.
:class:`SealedBlobStore` does the same for original uploads. A chunk
whose key was destroyed (an erased document) no longer opens and is dropped from results.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

from ingest.blobs import BlobStore
from ingest.errors import EnclaveError
from ingest.index.port import (
    AccessFilter,
    ChunkRecord,
    ScoredChunk,
    SearchMode,
    SearchResult,
    SparseVector,
    VectorIndex,
)
from ingest.keys.crypto import BLOB_MAGIC, DecryptionFailed, open_sealed, open_text, seal, seal_text
from ingest.keys.keyring import KeyRing
from ingest.keys.terms import key_vector, term_key

log = logging.getLogger(__name__)


def _aad(record: ChunkRecord, part: str) -> bytes:
    return f"chunk:{record.document_id}:{record.id}:{part}".encode()


class SealedIndex:
    """A :class:`VectorIndex` whose payload text and title are AES-256-GCM sealed per document."""

    def __init__(self, inner: VectorIndex, keyring: KeyRing) -> None:
        self.inner = inner
        self._keyring = keyring
        if hasattr(inner, "legacy_terms"):  # an index of the earlier format is re-keyed as it is upgraded
            inner.legacy_terms = self._key_terms

    def warm_up(self) -> None:
        self.inner.warm_up()

    def upsert(
        self, records: Sequence[ChunkRecord], dense: Sequence[Sequence[float]], sparse: Sequence[SparseVector]
    ) -> None:
        keyed = [self._key_terms(r.tenant, sp) for r, sp in zip(records, sparse, strict=True)]
        self.inner.upsert([self._seal(r) for r in records], dense, keyed)

    def delete_document(self, tenant: str, document_id: str, *, keep_version: int | None = None) -> None:
        self.inner.delete_document(tenant, document_id, keep_version=keep_version)

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
        tenant_key = self._keyring.tenant_key_if_exists(access.tenant)
        # a tenant without a key has no chunks: its query terms can match nothing
        keyed = key_vector(term_key(tenant_key), sparse) if tenant_key is not None else SparseVector([], [])
        result = self.inner.search(dense, keyed, access, limit, mode, best_dense=best_dense)
        opened = [chunk for chunk in map(self._open, result.chunks) if chunk is not None]
        return SearchResult(chunks=opened, best_dense_score=result.best_dense_score, extra=result.extra)

    def count(self, access: AccessFilter) -> int:
        return self.inner.count(access)

    def healthy(self) -> bool:
        return self.inner.healthy()

    def flush(self) -> None:
        self.inner.flush()

    def close(self) -> None:
        self.inner.close()

    def optimize(self) -> bool:
        """Compact the underlying index when the adapter can (drops deleted points from disk)."""
        optimize = getattr(self.inner, "optimize", None)
        return bool(optimize()) if optimize is not None else False

    def _key_terms(self, tenant: str, sparse: SparseVector) -> SparseVector:
        return key_vector(term_key(self._keyring.tenant_key(tenant)), sparse)

    def _seal(self, record: ChunkRecord) -> ChunkRecord:
        key = self._keyring.document_key(record.document_id)
        return replace(
            record,
            text=seal_text(key, record.text, _aad(record, "text")),
            title=seal_text(key, record.title, _aad(record, "title")),
        )

    def _open(self, chunk: ScoredChunk) -> ScoredChunk | None:
        record = chunk.record
        try:
            key = self._keyring.document_key(record.document_id)
            opened = replace(
                record,
                text=open_text(key, record.text, _aad(record, "text")),
                title=open_text(key, record.title, _aad(record, "title")),
            )
        except EnclaveError as exc:  # erased (key destroyed), altered, or stored in clear: never shown
            log.warning("index.chunk_withheld document=%s reason=%s", record.document_id, exc.code)
            return None
        return replace(chunk, record=opened)


def document_id_of(blob_key: str) -> str:
    """Originals are stored under the document id, optionally with a suffix (``<id>.v2``)."""
    return blob_key.split(".", 1)[0]


class SealedBlobStore:
    """A :class:`BlobStore` that seals every original under its document's key."""

    def __init__(self, inner: BlobStore, keyring: KeyRing) -> None:
        self.inner = inner
        self._keyring = keyring

    def put(self, key: str, data: bytes) -> None:
        document_key = self._keyring.document_key(document_id_of(key))
        self.inner.put(key, BLOB_MAGIC + seal(document_key, data, f"blob:{key}".encode()))

    def get(self, key: str) -> bytes:
        """:raises DecryptionFailed: altered or stored in clear; :raises KeyDestroyed: erased."""
        stored = self.inner.get(key)
        if not stored.startswith(BLOB_MAGIC):
            raise DecryptionFailed(f"original {key} is not encrypted; re-upload it")
        document_key = self._keyring.document_key(document_id_of(key))
        return open_sealed(document_key, stored[len(BLOB_MAGIC) :], f"blob:{key}".encode())

    def delete(self, key: str) -> None:
        self.inner.delete(key)
