"""points: causes and crowdfunding projects, donations and their returns

Revision ID: points_0013
Revises: points_0012
Create Date: 2026-12-07 10:20:00

A municipality lists causes and crowdfunding projects (points_causes, each with its own
account); citizens give points to them (transfer kind `donation`), and a project that
missed its goal gives them back as reversals (`donation_return`) if the municipality
chose so.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "points_0013"
down_revision: str | Sequence[str] | None = "points_0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_KINDS = (
    "funding", "grant", "grant_revoke", "conversion", "conversion_bonus", "spend", "refund",
    "expiry",
)  # fmt: skip
NEW_KINDS = (*OLD_KINDS, "donation", "donation_return")


def _kinds(kinds: tuple[str, ...]) -> str:
    return f"kind IN ({', '.join(repr(k) for k in kinds)})"


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "points_causes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("municipality_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(length=1000), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column(
            "account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("goal_points", sa.BigInteger(), nullable=True),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("miss_policy", sa.String(length=16), nullable=False),
        sa.Column("fresh_days", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('cause', 'project')", name=op.f("ck_points_causes_kind")),
        sa.CheckConstraint(
            "miss_policy IN ('return', 'keep')", name=op.f("ck_points_causes_miss_policy")
        ),
        sa.CheckConstraint(
            "status IN ('open', 'closed', 'met', 'missed_kept', 'missed_returned')",
            name=op.f("ck_points_causes_status"),
        ),
        sa.CheckConstraint(
            "kind = 'cause' OR (goal_points > 0 AND ends_at IS NOT NULL)",
            name=op.f("ck_points_causes_project"),
        ),
        sa.CheckConstraint("fresh_days > 0", name=op.f("ck_points_causes_fresh_days")),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["points_accounts.id"],
            name=op.f("fk_points_causes_account_id_points_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["municipality_id"],
            ["points_municipalities.id"],
            name=op.f("fk_points_causes_municipality_id_points_municipalities"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_causes")),
        sa.UniqueConstraint("account_id", name=op.f("uq_points_causes_account_id")),
        sa.UniqueConstraint(
            "municipality_id", "code", name=op.f("uq_points_causes_municipality_id")
        ),
    )
    with op.batch_alter_table("points_transfers", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_points_transfers_kind"), type_="check")
        batch_op.create_check_constraint("kind", _kinds(NEW_KINDS))


def downgrade() -> None:
    """Downgrade schema (refused while donations exist: they would break the CHECK)."""
    with op.batch_alter_table("points_transfers", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_points_transfers_kind"), type_="check")
        batch_op.create_check_constraint("kind", _kinds(OLD_KINDS))
    op.drop_table("points_causes")
