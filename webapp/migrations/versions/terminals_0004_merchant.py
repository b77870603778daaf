"""terminals: a shop till's merchant (terminals.merchant_id -> points_merchants.id)

Revision ID: terminals_0004
Revises: staff_0003
Create Date: 2026-11-27 19:45:00.000000

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "terminals_0004"
down_revision: str | Sequence[str] | None = "staff_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema.

    On SQLite, batch mode copies `terminals` (a foreign key cannot be added by ALTER
    there), as `alembic upgrade` does with its own connection, foreign keys unenforced;
    PostgreSQL adds the column, then the constraint. Existing tills keep merchant_id
    NULL: nobody opens them until an admin picks their merchant on /admin/terminals.
    """
    with op.batch_alter_table("terminals", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "merchant_id",
                sa.Integer(),
                sa.ForeignKey(
                    "points_merchants.id",
                    name=op.f("fk_terminals_merchant_id_points_merchants"),
                ),
                nullable=True,
            )
        )
        batch_op.create_index(batch_op.f("ix_terminals_merchant_id"), ["merchant_id"], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("terminals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_terminals_merchant_id"))
        batch_op.drop_constraint(
            batch_op.f("fk_terminals_merchant_id_points_merchants"), type_="foreignkey"
        )
        batch_op.drop_column("merchant_id")
