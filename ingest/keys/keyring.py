"""Envelope encryption: data keys in the relational store, wrapped, never in clear on disk.

Hierarchy: the master key (behind :class:`~ingest.keys.port.KeyEncryptionKey`) wraps one key per
tenant and the audit HMAC key; each tenant key wraps one key per document. Deleting a document's
key row makes everything sealed under it unreadable (crypto-shredding), wherever copies of the
ciphertext linger. Rotating the master key re-wraps only the master-wrapped rows: no document key
and no byte of data changes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import threading
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select

from ingest.errors import NotFound
from ingest.keys.crypto import new_key, open_sealed, seal
from ingest.keys.port import KeyEncryptionKey
from ingest.store.compliance_models import DataKey, iso_time
from ingest.store.db import session_scope

AUDIT_KEY_ID = "audit:hmac"
CACHE_LIMIT = 20_000


class KeyDestroyed(NotFound):
    """The data key is gone: its document (or tenant) was erased, so its data can never be read again."""

    code = "key_destroyed"


@dataclass(frozen=True)
class RotationReport:
    previous_version: str
    new_version: str
    rewrapped: int
    retired: list[str]


def tenant_key_id(tenant: str) -> str:
    return f"tenant:{tenant}"


def document_key_id(document_id: str) -> str:
    return f"doc:{document_id}"


class KeyRing:
    """Creates, unwraps, caches and destroys data keys; thread-safe, shared by the whole process."""

    def __init__(self, engine: Engine, kek: KeyEncryptionKey) -> None:
        self._engine = engine
        self._kek = kek
        self._cache: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        self._kek.warm_up()
        self.audit_key()

    # -- keys by purpose --------------------------------------------------------------------------
    def tenant_key(self, tenant: str) -> bytes:
        # the cache first: building the row template (an ORM model) costs more than the lookup, every request
        return self._load(tenant_key_id(tenant)) or self._get_or_create(
            DataKey(id=tenant_key_id(tenant), kind="tenant", tenant=tenant, parent="master", wrapped="")
        )

    def tenant_key_if_exists(self, tenant: str) -> bytes | None:
        """The tenant's key, or None when the tenant was erased (or never wrote anything)."""
        return self._load(tenant_key_id(tenant))

    def audit_key(self) -> bytes:
        return self._load(AUDIT_KEY_ID) or self._get_or_create(
            DataKey(id=AUDIT_KEY_ID, kind="audit", parent="master", wrapped="")
        )

    def create_document_key(self, tenant: str, document_id: str, session: Session | None = None) -> bytes:
        """A fresh key for a new document, wrapped by its tenant's key.

        With ``session`` the key row joins the caller's transaction (it exists exactly when the
        document does); the tenant key must then exist already (call :meth:`tenant_key` first,
        outside the transaction: SQLite allows one writer at a time).
        """
        row = DataKey(
            id=document_key_id(document_id), kind="document", tenant=tenant, parent=tenant_key_id(tenant), wrapped=""
        )
        if session is None:
            self.tenant_key(tenant)
            return self._get_or_create(row)
        key = new_key()
        row.wrapped, row.created_at = self._wrap_for(row, key), iso_time()
        session.add(row)
        return self._remember(row.id, key)

    def forget_document_key(self, document_id: str) -> None:
        """Drop a cached key whose row never committed (a failed upload)."""
        self._evict([document_key_id(document_id)])

    def document_key(self, document_id: str) -> bytes:
        """:raises KeyDestroyed: the document was erased (or never had a key)."""
        key = self._load(document_key_id(document_id))
        if key is None:
            raise KeyDestroyed(f"the key of document {document_id} is destroyed; its data cannot be read")
        return key

    def pseudonym_key(self, tenant: str) -> bytes:
        """Per-tenant key for stable pseudonyms; erasing the tenant makes its pseudonyms unlinkable."""
        return hmac.new(self.tenant_key(tenant), b"enclave/pseudonym/v1", hashlib.sha256).digest()

    # -- shredding --------------------------------------------------------------------------------
    def destroy_document_keys(self, session: Session, document_ids: list[str]) -> int:
        """Delete document keys inside the caller's transaction (the erasure's); returns how many existed."""
        ids = [document_key_id(d) for d in document_ids]
        found = len(session.exec(select(DataKey.id).where(col(DataKey.id).in_(ids))).all()) if ids else 0
        if ids:
            session.execute(delete(DataKey).where(col(DataKey.id).in_(ids)))
        self._evict(ids)
        return found

    def destroy_tenant_keys(self, session: Session, tenant: str) -> int:
        """Delete the tenant key and every document key under it, inside the caller's transaction."""
        ids = list(session.exec(select(DataKey.id).where(DataKey.tenant == tenant)).all())
        session.execute(delete(DataKey).where(col(DataKey.tenant) == tenant))
        self._evict(ids)
        return len(ids)

    # -- rotation ---------------------------------------------------------------------------------
    def rotate_master(self, *, retire_old: bool = True) -> RotationReport:
        """New master key version; re-wrap every master-wrapped key under it; retire the old versions."""
        previous = self._kek.current_version
        new_version = self._kek.rotate()
        with session_scope(self._engine) as session:
            rows = session.exec(select(DataKey).where(DataKey.parent == "master")).all()
            old_versions = {self._kek.version_of(r.wrapped) for r in rows} | {previous}
            for row in rows:
                if self._kek.version_of(row.wrapped) != new_version:
                    row.wrapped = self._kek.wrap(self._kek.unwrap(row.wrapped, row.id), row.id)
                    row.kek_version = new_version
                    session.add(row)
        retired = sorted(old_versions - {new_version}) if retire_old else []
        for version in retired:
            self._kek.retire(version)
        return RotationReport(previous, new_version, len(rows), retired)

    # -- internals --------------------------------------------------------------------------------
    def _get_or_create(self, template: DataKey) -> bytes:
        existing = self._load(template.id)
        if existing is not None:
            return existing
        key = new_key()
        template.wrapped = self._wrap_for(template, key)
        template.kek_version = self._kek.current_version if template.parent == "master" else None
        template.created_at = iso_time()
        try:
            with session_scope(self._engine) as session:
                session.add(template)
        except IntegrityError:  # another process created it first: use theirs
            loaded = self._load(template.id)
            if loaded is None:
                raise
            return loaded
        return self._remember(template.id, key)

    def _load(self, key_id: str) -> bytes | None:
        with self._lock:
            cached = self._cache.get(key_id)
        if cached is not None:
            return cached
        with session_scope(self._engine) as session:
            row = session.get(DataKey, key_id)
        if row is None:
            return None
        return self._remember(key_id, self._unwrap(row))

    def _wrap_for(self, row: DataKey, key: bytes) -> str:
        if row.parent == "master":
            return self._kek.wrap(key, row.id)
        parent = self._load(row.parent)
        if parent is None:
            raise KeyDestroyed(f"the key {row.parent} is destroyed; nothing new can be written under it")
        return base64.urlsafe_b64encode(seal(parent, key, row.id.encode("utf-8"))).decode("ascii")

    def _unwrap(self, row: DataKey) -> bytes:
        if row.parent == "master":
            return self._kek.unwrap(row.wrapped, row.id)
        parent = self._load(row.parent)
        if parent is None:
            raise KeyDestroyed(f"the key {row.parent} is destroyed; {row.id} cannot be unwrapped")
        return open_sealed(parent, base64.urlsafe_b64decode(row.wrapped), row.id.encode("utf-8"))

    def _remember(self, key_id: str, key: bytes) -> bytes:
        with self._lock:
            if len(self._cache) >= CACHE_LIMIT:
                # drop the older half, never everything: a key just created inside a caller's
                # still-open transaction lives only here until that transaction commits
                for stale in list(itertools.islice(self._cache, CACHE_LIMIT // 2)):
                    del self._cache[stale]
            self._cache[key_id] = key
        return key

    def _evict(self, key_ids: list[str]) -> None:
        with self._lock:
            for key_id in key_ids:
                self._cache.pop(key_id, None)
