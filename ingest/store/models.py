"""Relational models: documents, their chunks' metadata, and durable ingest jobs.

Portable SQL only (SQLite today, PostgreSQL later): JSON is stored as text, times as UTC.
Chunk *text* never lives here; it lives (encrypted, later) in the index payload.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


class DocumentStatus(StrEnum):
    queued = "queued"
    processing = "processing"
    ready = "ready"
    failed = "failed"


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"


class Document(SQLModel, table=True):
    # a tenant's documents newest first (GET /v1/documents): read in order, a page without sorting them all
    __table_args__ = (Index("ix_document_tenant_created_at", "tenant", "created_at"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    tenant: str = Field(index=True, max_length=128)
    collection: str = Field(index=True, max_length=128)
    title: str = Field(max_length=4096)  # sealed under the document's key (ingest.titles); 512 characters in clear
    filename: str = Field(max_length=512)
    mime: str | None = Field(default=None, max_length=128)
    content_hash: str = Field(index=True, max_length=64)
    size_bytes: int = 0
    status: DocumentStatus = Field(default=DocumentStatus.queued, index=True)
    error: str | None = None
    error_code: str | None = Field(default=None, max_length=64)
    pages: int | None = None
    chunk_count: int = 0
    version: int = 1
    parent_id: str | None = Field(default=None, index=True, max_length=32)  # the e-mail an attachment came from
    classification: str = Field(default="internal", max_length=64)
    acl_json: str = '{"groups": [], "users": []}'
    metadata_json: str = "{}"
    # title, parties and date read from the opening (ingest.preamble), sealed under the document's key
    preamble: str | None = Field(default=None, max_length=8192)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    @property
    def acl(self) -> dict[str, list[str]]:
        loaded: dict[str, list[str]] = json.loads(self.acl_json)
        return loaded

    @property
    def metadata_dict(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.metadata_json)
        return loaded


class Chunk(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=36)
    document_id: str = Field(index=True, foreign_key="document.id", max_length=32)
    ordinal: int
    page: int | None = None
    page_end: int | None = None
    start: int
    end: int
    token_count: int
    ocr: bool = False  # the chunk's text was read by OCR from a scanned page


class Job(SQLModel, table=True):
    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    document_id: str = Field(index=True, foreign_key="document.id", max_length=32)
    version: int = 1  # the document version this job ingests
    upload_json: str | None = None  # a new version's file name, hash, ACL...: applied to the document when it is ready
    status: JobStatus = Field(default=JobStatus.queued, index=True)
    attempts: int = 0
    max_attempts: int = 3
    not_before: datetime = Field(default_factory=utcnow)
    error: str | None = None
    error_code: str | None = Field(default=None, max_length=64)
    pages_done: int = 0
    chunks_done: int = 0
    worker: str | None = Field(default=None, max_length=128)
    heartbeat_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None


class Webhook(SQLModel, table=True):
    """A portal's callback URL for job events; the secret signs deliveries, is shown only once, stored sealed."""

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    tenant: str = Field(index=True, max_length=128)
    url: str = Field(max_length=2048)
    events_json: str = '["ingest.job.completed", "ingest.job.failed"]'
    description: str | None = Field(default=None, max_length=256)
    secret: str = Field(max_length=128)
    created_by: str = Field(max_length=256)
    created_at: datetime = Field(default_factory=utcnow)

    @property
    def events(self) -> list[str]:
        loaded: list[str] = json.loads(self.events_json)
        return loaded


class DeliveryStatus(StrEnum):
    pending = "pending"
    delivered = "delivered"
    failed = "failed"


class WebhookDelivery(SQLModel, table=True):
    """One event for one webhook: durable, retried with backoff until delivered or out of attempts."""

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    webhook_id: str = Field(index=True, max_length=32)  # no foreign key: deleting a webhook keeps its history
    tenant: str = Field(index=True, max_length=128)
    event: str = Field(max_length=64)
    payload_json: str
    status: DeliveryStatus = Field(default=DeliveryStatus.pending, index=True)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, index=True)
    response_status: int | None = None
    error: str | None = Field(default=None, max_length=512)
    created_at: datetime = Field(default_factory=utcnow)
    delivered_at: datetime | None = None


class ApiKey(SQLModel, table=True):
    """A service credential: scoped to a tenant, roles and optional groups, stored only as its SHA-256 hash.

    The key itself is shown once, when it is created; ``key_hash`` finds it again on each request.
    """

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    tenant: str = Field(index=True, max_length=128)
    name: str = Field(max_length=128)
    key_hash: str = Field(unique=True, max_length=64)
    roles_json: str = "[]"
    groups_json: str = "[]"
    created_by: str = Field(default="local", max_length=256)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime | None = None
    revoked_at: datetime | None = None

    @property
    def roles(self) -> list[str]:
        loaded: list[str] = json.loads(self.roles_json)
        return loaded

    @property
    def groups(self) -> list[str]:
        loaded: list[str] = json.loads(self.groups_json)
        return loaded


class SiteSetting(SQLModel, table=True):
    """A fact about the whole site that every process must agree on (e.g. ``embedder``: which model made the
    index's dense vectors), as JSON."""

    key: str = Field(primary_key=True, max_length=64)
    value_json: str
    updated_at: datetime = Field(default_factory=utcnow)
