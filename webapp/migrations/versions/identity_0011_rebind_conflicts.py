"""identity: MyKey IDs a card renewal could not bring together

Revision ID: identity_0011
Revises: sip2_0010
Create Date: 2026-12-07 09:30:00

When J-LIS's old-to-new certificate linkage would move a card's binding onto a MyKey ID
while both the old and the new ID hold links or points, nothing is merged: the pair of
IDs is kept here for staff (no card key, no serial, no date of the renewal).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "identity_0011"
down_revision: str | Sequence[str] | None = "sip2_0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "identity_rebind_conflicts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("old_mykey_id", sa.String(length=8), nullable=False),
        sa.Column("new_mykey_id", sa.String(length=8), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_rebind_conflicts")),
        sa.UniqueConstraint(
            "old_mykey_id",
            "new_mykey_id",
            name=op.f("uq_identity_rebind_conflicts_old_mykey_id"),
        ),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("identity_rebind_conflicts")
