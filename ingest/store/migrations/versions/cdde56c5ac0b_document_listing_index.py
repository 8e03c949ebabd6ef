"""Document listing index: a tenant's documents by creation time

``GET /v1/documents`` lists newest first; with (tenant, created_at) indexed a page is read in order
instead of sorting every document of the tenant (SQLite built a temporary B-tree for each listing).

Revision ID: cdde56c5ac0b
Revises: e3a7c1d95b20
Create Date: 2026-12-06 02:58:11.514751
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "cdde56c5ac0b"
down_revision: str | Sequence[str] | None = "e3a7c1d95b20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("document", schema=None) as batch_op:
        batch_op.create_index("ix_document_tenant_created_at", ["tenant", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("document", schema=None) as batch_op:
        batch_op.drop_index("ix_document_tenant_created_at")
