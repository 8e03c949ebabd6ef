"""Site settings: facts every process must agree on, such as which embedder made the index's vectors

Revision ID: 9b1e4f0c2d7a
Revises: 5636ce80ff5a
Create Date: 2026-12-04 18:45:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision: str = "9b1e4f0c2d7a"
down_revision: str | Sequence[str] | None = "5636ce80ff5a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sitesetting",
        sa.Column("key", AutoString(length=64), nullable=False),
        sa.Column("value_json", AutoString(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    op.drop_table("sitesetting")
