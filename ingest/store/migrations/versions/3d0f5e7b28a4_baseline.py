"""baseline: documents, chunks, jobs, webhooks, audit chain, data keys

Revision ID: 3d0f5e7b28a4
Revises:
Create Date: 2026-11-29 04:19:14.749772
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

ENUMS = ("documentstatus", "jobstatus", "deliverystatus")  # PostgreSQL types that drop_table leaves behind


def _audit_append_only() -> None:
    """SQLite: the same triggers ``compliance_models`` attaches when the models create the table."""
    if op.get_bind().dialect.name != "sqlite":
        return
    for verb in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER IF NOT EXISTS auditrecord_no_{verb.lower()} BEFORE {verb} ON auditrecord "
            "BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END"
        )


revision: str = "3d0f5e7b28a4"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "auditrecord",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("time", AutoString(length=32), nullable=False),
        sa.Column("tenant", AutoString(length=128), nullable=False),
        sa.Column("subject", AutoString(length=256), nullable=False),
        sa.Column("roles_json", AutoString(), nullable=False),
        sa.Column("auth_method", AutoString(length=32), nullable=False),
        sa.Column("action", AutoString(length=64), nullable=False),
        sa.Column("outcome", AutoString(length=64), nullable=False),
        sa.Column("request_id", AutoString(length=64), nullable=True),
        sa.Column("client", AutoString(length=128), nullable=True),
        sa.Column("document_ids_json", AutoString(), nullable=False),
        sa.Column("chunk_ids_json", AutoString(), nullable=False),
        sa.Column("model", AutoString(length=256), nullable=True),
        sa.Column("decision", AutoString(length=16), nullable=True),
        sa.Column("decision_reason", AutoString(length=512), nullable=True),
        sa.Column("query_ciphertext", AutoString(), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=True),
        sa.Column("detail_json", AutoString(), nullable=False),
        sa.Column("key_id", AutoString(length=64), nullable=False),
        sa.Column("prev_hash", AutoString(length=64), nullable=False),
        sa.Column("hash", AutoString(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("hash"),
    )
    with op.batch_alter_table("auditrecord", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_auditrecord_action"), ["action"], unique=False)
        batch_op.create_index(batch_op.f("ix_auditrecord_subject"), ["subject"], unique=False)
        batch_op.create_index(batch_op.f("ix_auditrecord_tenant"), ["tenant"], unique=False)
        batch_op.create_index(batch_op.f("ix_auditrecord_time"), ["time"], unique=False)

    op.create_table(
        "datakey",
        sa.Column("id", AutoString(length=160), nullable=False),
        sa.Column("kind", AutoString(length=16), nullable=False),
        sa.Column("tenant", AutoString(length=128), nullable=True),
        sa.Column("parent", AutoString(length=160), nullable=False),
        sa.Column("kek_version", AutoString(length=64), nullable=True),
        sa.Column("wrapped", AutoString(), nullable=False),
        sa.Column("created_at", AutoString(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("datakey", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_datakey_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_datakey_tenant"), ["tenant"], unique=False)

    op.create_table(
        "document",
        sa.Column("id", AutoString(length=32), nullable=False),
        sa.Column("tenant", AutoString(length=128), nullable=False),
        sa.Column("collection", AutoString(length=128), nullable=False),
        sa.Column("title", AutoString(length=512), nullable=False),
        sa.Column("filename", AutoString(length=512), nullable=False),
        sa.Column("mime", AutoString(length=128), nullable=True),
        sa.Column("content_hash", AutoString(length=64), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("status", sa.Enum("queued", "processing", "ready", "failed", name="documentstatus"), nullable=False),
        sa.Column("error", AutoString(), nullable=True),
        sa.Column("error_code", AutoString(length=64), nullable=True),
        sa.Column("pages", sa.Integer(), nullable=True),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("classification", AutoString(length=64), nullable=False),
        sa.Column("acl_json", AutoString(), nullable=False),
        sa.Column("metadata_json", AutoString(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("document", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_document_collection"), ["collection"], unique=False)
        batch_op.create_index(batch_op.f("ix_document_content_hash"), ["content_hash"], unique=False)
        batch_op.create_index(batch_op.f("ix_document_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_document_tenant"), ["tenant"], unique=False)

    op.create_table(
        "webhook",
        sa.Column("id", AutoString(length=32), nullable=False),
        sa.Column("tenant", AutoString(length=128), nullable=False),
        sa.Column("url", AutoString(length=2048), nullable=False),
        sa.Column("events_json", AutoString(), nullable=False),
        sa.Column("description", AutoString(length=256), nullable=True),
        sa.Column("secret", AutoString(length=128), nullable=False),
        sa.Column("created_by", AutoString(length=256), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("webhook", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_webhook_tenant"), ["tenant"], unique=False)

    op.create_table(
        "webhookdelivery",
        sa.Column("id", AutoString(length=32), nullable=False),
        sa.Column("webhook_id", AutoString(length=32), nullable=False),
        sa.Column("tenant", AutoString(length=128), nullable=False),
        sa.Column("event", AutoString(length=64), nullable=False),
        sa.Column("payload_json", AutoString(), nullable=False),
        sa.Column("status", sa.Enum("pending", "delivered", "failed", name="deliverystatus"), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("error", AutoString(length=512), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("delivered_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("webhookdelivery", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_webhookdelivery_next_attempt_at"), ["next_attempt_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_webhookdelivery_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_webhookdelivery_tenant"), ["tenant"], unique=False)
        batch_op.create_index(batch_op.f("ix_webhookdelivery_webhook_id"), ["webhook_id"], unique=False)

    op.create_table(
        "chunk",
        sa.Column("id", AutoString(length=36), nullable=False),
        sa.Column("document_id", AutoString(length=32), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("page", sa.Integer(), nullable=True),
        sa.Column("page_end", sa.Integer(), nullable=True),
        sa.Column("start", sa.Integer(), nullable=False),
        sa.Column("end", sa.Integer(), nullable=False),
        sa.Column("token_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["document.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("chunk", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_chunk_document_id"), ["document_id"], unique=False)

    op.create_table(
        "job",
        sa.Column("id", AutoString(length=32), nullable=False),
        sa.Column("document_id", AutoString(length=32), nullable=False),
        sa.Column("status", sa.Enum("queued", "running", "done", "failed", name="jobstatus"), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("not_before", UTCDateTime(), nullable=False),
        sa.Column("error", AutoString(), nullable=True),
        sa.Column("error_code", AutoString(length=64), nullable=True),
        sa.Column("pages_done", sa.Integer(), nullable=False),
        sa.Column("chunks_done", sa.Integer(), nullable=False),
        sa.Column("worker", AutoString(length=128), nullable=True),
        sa.Column("heartbeat_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["document.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_job_document_id"), ["document_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_job_status"), ["status"], unique=False)
    _audit_append_only()


def downgrade() -> None:
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_status"))
        batch_op.drop_index(batch_op.f("ix_job_document_id"))

    op.drop_table("job")
    with op.batch_alter_table("chunk", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_chunk_document_id"))

    op.drop_table("chunk")
    with op.batch_alter_table("webhookdelivery", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhookdelivery_webhook_id"))
        batch_op.drop_index(batch_op.f("ix_webhookdelivery_tenant"))
        batch_op.drop_index(batch_op.f("ix_webhookdelivery_status"))
        batch_op.drop_index(batch_op.f("ix_webhookdelivery_next_attempt_at"))

    op.drop_table("webhookdelivery")
    with op.batch_alter_table("webhook", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_tenant"))

    op.drop_table("webhook")
    with op.batch_alter_table("document", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_document_tenant"))
        batch_op.drop_index(batch_op.f("ix_document_status"))
        batch_op.drop_index(batch_op.f("ix_document_content_hash"))
        batch_op.drop_index(batch_op.f("ix_document_collection"))

    op.drop_table("document")
    with op.batch_alter_table("datakey", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_datakey_tenant"))
        batch_op.drop_index(batch_op.f("ix_datakey_kind"))

    op.drop_table("datakey")
    with op.batch_alter_table("auditrecord", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_auditrecord_time"))
        batch_op.drop_index(batch_op.f("ix_auditrecord_tenant"))
        batch_op.drop_index(batch_op.f("ix_auditrecord_subject"))
        batch_op.drop_index(batch_op.f("ix_auditrecord_action"))

    op.drop_table("auditrecord")
    if op.get_bind().dialect.name == "postgresql":
        for name in ENUMS:
            sa.Enum(name=name).drop(op.get_bind(), checkfirst=True)
