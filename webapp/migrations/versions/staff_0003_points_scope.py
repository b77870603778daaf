"""staff scope for points roles: a points officer's municipality, merchant staff's merchant

Revision ID: staff_0003
Revises: core_0002
Create Date: 2026-11-27 18:05:00.000000

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "staff_0003"
down_revision: str | Sequence[str] | None = "core_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("municipality_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("merchant_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_staff_users_municipality_id"), ["municipality_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_staff_users_merchant_id"), ["merchant_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_staff_users_municipality_id_points_municipalities"),
            "points_municipalities",
            ["municipality_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_staff_users_merchant_id_points_merchants"),
            "points_merchants",
            ["merchant_id"],
            ["id"],
            ondelete="CASCADE",
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_staff_users_merchant_id_points_merchants"), type_="foreignkey"
        )
        batch_op.drop_constraint(
            batch_op.f("fk_staff_users_municipality_id_points_municipalities"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_staff_users_merchant_id"))
        batch_op.drop_index(batch_op.f("ix_staff_users_municipality_id"))
        batch_op.drop_column("merchant_id")
        batch_op.drop_column("municipality_id")
