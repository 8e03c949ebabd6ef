"""Document preamble: the title, parties and date a document's opening states, sealed under its key

Rows written before this revision have none until a new version is ingested (``enclave index rebuild``
reads every document again and fills it).

Revision ID: e3a7c1d95b20
Revises: 9b1e4f0c2d7a
Create Date: 2026-12-05 08:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision: str = "e3a7c1d95b20"
down_revision: str | Sequence[str] | None = "9b1e4f0c2d7a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("document", schema=None) as batch_op:
        batch_op.add_column(sa.Column("preamble", AutoString(length=8192), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("document", schema=None) as batch_op:
        batch_op.drop_column("preamble")
