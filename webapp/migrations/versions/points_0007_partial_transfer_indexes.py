"""points: reversal_of and pending_id indexed only where set (partial indexes)

Revision ID: points_0007
Revises: terminals_0006
Create Date: 2026-11-27 20:55:00.000000

Most transfers reverse nothing and resolve no hold; a full index still took an entry for
their NULLs on every grant, about a tenth of a grant's server time. The unique rule on
pending_id (at most one transfer resolves a pending one) is unchanged: NULLs never
conflicted.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "points_0007"
down_revision: str | Sequence[str] | None = "terminals_0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_REVERSAL = "ix_points_transfers_reversal_of"
_PENDING = "uq_points_transfers_pending_id"


def _where(column: str) -> dict[str, sa.TextClause]:
    clause = sa.text(f"{column} IS NOT NULL")
    return {"sqlite_where": clause, "postgresql_where": clause}


def upgrade() -> None:
    """Swap the full index and the unique constraint for partial indexes."""
    op.drop_index(_REVERSAL, table_name="points_transfers")
    op.create_index(_REVERSAL, "points_transfers", ["reversal_of"], **_where("reversal_of"))
    with op.batch_alter_table("points_transfers", schema=None) as batch_op:
        batch_op.drop_constraint(_PENDING, type_="unique")
    op.create_index(
        _PENDING, "points_transfers", ["pending_id"], unique=True, **_where("pending_id")
    )


def downgrade() -> None:
    """Back to a full index and a unique constraint."""
    op.drop_index(_PENDING, table_name="points_transfers")
    with op.batch_alter_table("points_transfers", schema=None) as batch_op:
        batch_op.create_unique_constraint(_PENDING, ["pending_id"])
    op.drop_index(_REVERSAL, table_name="points_transfers")
    op.create_index(_REVERSAL, "points_transfers", ["reversal_of"])
