"""baseline: documents, chunks, jobs, webhooks, audit chain, data keys

Revision ID: 3d0f5e7b28a4
Revises:
Create Date: 2026-11-29 04:19:14.749772
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

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
        sa.Column("time", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("tenant", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
        sa.Column("roles_json", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("auth_method", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("request_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("client", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("document_ids_json", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("chunk_ids_json", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("model", sqlmodel.sql.sqltypes.AutoString(length=256), nullable=True),
        sa.Column("decision", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("decision_reason", sqlmodel.sql.sqltypes.AutoString(length=512), nullable=True),
        sa.Column("query_ciphertext", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=True),
        sa.Column("detail_json", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("key_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("prev_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
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
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=160), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("tenant", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("parent", sqlmodel.sql.sqltypes.AutoString(length=160), nullable=False),
        sa.Column("kek_version", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("wrapped", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("datakey", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_datakey_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_datakey_tenant"), ["tenant"], unique=False)

    op.create_table(
        "document",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("tenant", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("collection", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=512), nullable=False),
        sa.Column("filename", sqlmodel.sql.sqltypes.AutoString(length=512), nullable=False),
        sa.Column("mime", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("content_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("status", sa.Enum("queued", "processing", "ready", "failed", name="documentstatus"), nullable=False),
        sa.Column("error", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("error_code", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("pages", sa.Integer(), nullable=True),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("classification", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("acl_json", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("metadata_json", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("document", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_document_collection"), ["collection"], unique=False)
        batch_op.create_index(batch_op.f("ix_document_content_hash"), ["content_hash"], unique=False)
        batch_op.create_index(batch_op.f("ix_document_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_document_tenant"), ["tenant"], unique=False)

    op.create_table(
        "webhook",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("tenant", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("url", sqlmodel.sql.sqltypes.AutoString(length=2048), nullable=False),
        sa.Column("events_json", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("description", sqlmodel.sql.sqltypes.AutoString(length=256), nullable=True),
        sa.Column("secret", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("webhook", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_webhook_tenant"), ["tenant"], unique=False)

    op.create_table(
        "webhookdelivery",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("webhook_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("tenant", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("event", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("payload_json", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("status", sa.Enum("pending", "delivered", "failed", name="deliverystatus"), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("error", sqlmodel.sql.sqltypes.AutoString(length=512), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("delivered_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("webhookdelivery", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_webhookdelivery_next_attempt_at"), ["next_attempt_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_webhookdelivery_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_webhookdelivery_tenant"), ["tenant"], unique=False)
        batch_op.create_index(batch_op.f("ix_webhookdelivery_webhook_id"), ["webhook_id"], unique=False)

    op.create_table(
        "chunk",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("document_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
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
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("document_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("status", sa.Enum("queued", "running", "done", "failed", name="jobstatus"), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("not_before", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("error", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("error_code", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("pages_done", sa.Integer(), nullable=False),
        sa.Column("chunks_done", sa.Integer(), nullable=False),
        sa.Column("worker", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("heartbeat_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("started_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("finished_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
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
