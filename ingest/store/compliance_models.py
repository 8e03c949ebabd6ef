"""Relational models of the compliance core: the audit chain and wrapped data keys.

Portable SQL only (SQLite and PostgreSQL): lists and objects are JSON text, times are fixed-width
ISO-8601 UTC strings (so they sort and compare as text and hash the same on every backend).
Neither table ever holds document text or a query in clear.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DDL, event
from sqlmodel import Field, SQLModel


def iso_time(moment: datetime | None = None) -> str:
    """Fixed-width UTC time (``2024-05-01T12:00:00.000000Z``): sorts as text, hashes identically everywhere."""
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class AuditRecord(SQLModel, table=True):
    """One link of the hash chain; ``seq`` is assigned as the predecessor's ``seq + 1``."""

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    time: str = Field(index=True, max_length=32)
    tenant: str = Field(index=True, max_length=128)
    subject: str = Field(index=True, max_length=256)
    roles_json: str = "[]"
    auth_method: str = Field(default="unknown", max_length=32)
    action: str = Field(index=True, max_length=64)
    outcome: str = Field(max_length=64)
    request_id: str | None = Field(default=None, max_length=64)  # the caller's X-Request-ID (or the server's)
    server_request_id: str | None = Field(default=None, max_length=64)  # the server's own, never from the caller
    client: str | None = Field(default=None, max_length=128)
    document_ids_json: str = "[]"
    chunk_ids_json: str = "[]"
    model: str | None = Field(default=None, max_length=256)
    decision: str | None = Field(default=None, max_length=16)
    decision_reason: str | None = Field(default=None, max_length=512)
    query_ciphertext: str | None = None
    latency_ms: int | None = None
    detail_json: str = "{}"
    key_id: str = Field(max_length=64)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64, unique=True)


class DataKey(SQLModel, table=True):
    """A data key wrapped by its parent: tenant and audit keys by the master key, document keys by their tenant's key.

    ``kek_version`` names the master key version that wrapped a master-wrapped key (rotation
    re-wraps these rows and nothing else; document keys and the data they protect are untouched).
    """

    id: str = Field(primary_key=True, max_length=160)
    kind: str = Field(index=True, max_length=16)  # "tenant" | "document" | "audit"
    tenant: str | None = Field(default=None, index=True, max_length=128)
    parent: str = Field(max_length=160)  # "master" or the id of the wrapping tenant key
    kek_version: str | None = Field(default=None, max_length=64)
    wrapped: str
    created_at: str = Field(default="", max_length=32)


# Defence in depth on SQLite: the chain is append-only for anyone going through the engine.
# (Someone with the file can still drop these; that is what the HMAC chain and checkpoints catch.)
for _verb in ("UPDATE", "DELETE"):
    event.listen(
        AuditRecord.__table__,  # type: ignore[attr-defined]
        "after_create",
        DDL(  # type: ignore[no-untyped-call]
            f"CREATE TRIGGER IF NOT EXISTS auditrecord_no_{_verb.lower()} BEFORE {_verb} ON auditrecord "
            "BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END"
        ).execute_if(dialect="sqlite"),
    )
