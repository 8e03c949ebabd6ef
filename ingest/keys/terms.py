"""Keyed BM25 term ids: the words of a sealed chunk cannot be read back from its sparse vector.

A BM25 encoder maps each word to a public hash, so an index that stores those ids gives the words of
every chunk away to anyone who can hash a dictionary. :class:`TermKeyer` replaces each id by a keyed
pseudo-random function of it (BLAKE2b under a key derived from the tenant's key): the same word gets
the same id inside one tenant (so BM25 still matches and counts it) and unrelated ids in two tenants
(so no tenant's term statistics mix with another's). Without the tenant's key an id says nothing
about its word, and crypto-shredding a tenant (destroying its key) shreds its term ids with it.
"""

from __future__ import annotations

import hashlib
import hmac

from ingest.index.port import SparseVector

TERM_KEY_CONTEXT = b"enclave/bm25-term-ids/v1"
ID_BYTES = 4  # Qdrant sparse indices are u32


def term_key(tenant_key: bytes) -> bytes:
    """The tenant's term-id key, derived from (never equal to) the tenant's data key."""
    return hmac.new(tenant_key, TERM_KEY_CONTEXT, hashlib.sha256).digest()


def keyed_id(key: bytes, term: int) -> int:
    """One term id under ``key`` (a pseudo-random u32)."""
    digest = hashlib.blake2b(term.to_bytes(8, "little"), key=key, digest_size=ID_BYTES).digest()
    return int.from_bytes(digest, "little")


def key_vector(key: bytes, vector: SparseVector) -> SparseVector:
    """``vector`` with every id keyed; two ids that collide under the key add their weights."""
    merged: dict[int, float] = {}
    for term, value in zip(vector.indices, vector.values, strict=True):
        keyed = keyed_id(key, term)
        merged[keyed] = merged.get(keyed, 0.0) + value
    return SparseVector(list(merged), list(merged.values()))
