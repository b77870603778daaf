"""tenancy: the administrators' audit log (municipal administrators are a new role)

Revision ID: tenancy_0015
Revises: checkout_0015 (written on providers_0014; re-chained when main was merged in)
Create Date: 2026-12-07 12:40:00

A municipal administrator is a staff account with role "municipal_admin" and the
municipality it manages in the existing staff_users.municipality_id: no change there.
New: admin_audit_log, who created a municipality or its administrator, imported
providers, created a terminal or a staff account, and when.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "tenancy_0015"
down_revision: str | Sequence[str] | None = "checkout_0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "admin_audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("municipality_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["municipality_id"],
            ["points_municipalities.id"],
            name=op.f("fk_admin_audit_log_municipality_id_points_municipalities"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_audit_log")),
    )
    op.create_index("ix_admin_audit_log_municipality", "admin_audit_log", ["municipality_id", "id"])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_admin_audit_log_municipality", table_name="admin_audit_log")
    op.drop_table("admin_audit_log")
