"""ingest: attachments as child documents, OCR flag on chunks, job version and pending upload

Revision ID: ab83f36d3a5e
Revises: ed8fb934a4cd
Create Date: 2026-11-29 04:35:18.639445
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision: str = "ab83f36d3a5e"
down_revision: str | Sequence[str] | None = "ed8fb934a4cd"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # existing rows: chunks were not OCR'd, jobs ingested version 1
    with op.batch_alter_table("chunk", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ocr", sa.Boolean(), nullable=False, server_default=sa.false()))

    with op.batch_alter_table("document", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent_id", AutoString(length=32), nullable=True))
        batch_op.create_index(batch_op.f("ix_document_parent_id"), ["parent_id"], unique=False)

    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("upload_json", AutoString(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.drop_column("upload_json")
        batch_op.drop_column("version")

    with op.batch_alter_table("document", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_document_parent_id"))
        batch_op.drop_column("parent_id")

    with op.batch_alter_table("chunk", schema=None) as batch_op:
        batch_op.drop_column("ocr")
