"""points: administration in the UI (program dates and kinds, expiry policy, audit log)

Revision ID: points_0012
Revises: identity_0011
Create Date: 2026-12-07 09:40:00

Programs get start and end instants and two more kinds (long life, lifelong learning); a
municipality gets its expiry policy (the validity new programs and partners start from);
a partner registered by a municipality's officer names that municipality; and every
change an officer makes is kept in points_audit_log (who, when, what: never citizen data).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "points_0012"
down_revision: str | Sequence[str] | None = "identity_0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_KINDS = (
    "volunteering", "care_support", "child_rearing", "health_checkup", "event", "moving_in",
    "other", "partner_bonus",
)  # fmt: skip
NEW_KINDS = (*OLD_KINDS[:6], "long_life", "lifelong_learning", *OLD_KINDS[6:])


def _kinds(kinds: tuple[str, ...]) -> str:
    return f"category IN ({', '.join(repr(k) for k in kinds)})"


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "points_audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("municipality_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["municipality_id"],
            ["points_municipalities.id"],
            name=op.f("fk_points_audit_log_municipality_id_points_municipalities"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_audit_log")),
    )
    op.create_index(
        "ix_points_audit_log_municipality", "points_audit_log", ["municipality_id", "id"]
    )
    with op.batch_alter_table("points_municipalities", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("default_expiry_days", sa.Integer(), nullable=False, server_default="365")
        )
    with op.batch_alter_table("points_programs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("starts_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.drop_constraint(op.f("ck_points_programs_category"), type_="check")
        batch_op.create_check_constraint("category", _kinds(NEW_KINDS))
    with op.batch_alter_table("points_partners", schema=None) as batch_op:
        batch_op.add_column(sa.Column("municipality_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_points_partners_municipality_id"), ["municipality_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_points_partners_municipality_id_points_municipalities"),
            "points_municipalities",
            ["municipality_id"],
            ["id"],
        )


def downgrade() -> None:
    """Downgrade schema (programs of the two new kinds become `other`)."""
    with op.batch_alter_table("points_partners", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_points_partners_municipality_id_points_municipalities"),
            type_="foreignkey",
        )
        batch_op.drop_index(batch_op.f("ix_points_partners_municipality_id"))
        batch_op.drop_column("municipality_id")
    op.execute(
        "UPDATE points_programs SET category = 'other'"
        " WHERE category IN ('long_life', 'lifelong_learning')"
    )
    with op.batch_alter_table("points_programs", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_points_programs_category"), type_="check")
        batch_op.create_check_constraint("category", _kinds(OLD_KINDS))
        batch_op.drop_column("ends_at")
        batch_op.drop_column("starts_at")
    with op.batch_alter_table("points_municipalities", schema=None) as batch_op:
        batch_op.drop_column("default_expiry_days")
    op.drop_index("ix_points_audit_log_municipality", table_name="points_audit_log")
    op.drop_table("points_audit_log")
