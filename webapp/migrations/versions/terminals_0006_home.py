"""terminals: a citizen's own card reader at home (kind `home`, no provider)

Revision ID: terminals_0006
Revises: points_0005
Create Date: 2026-11-27 20:20:00.000000

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "terminals_0006"
down_revision: str | Sequence[str] | None = "points_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema.

    `provider_id` becomes nullable, and a CHECK ties NULL to kind `home` (every existing
    terminal has a provider and another kind, so it holds at once). On SQLite batch mode
    copies the table (ALTER cannot change nullability there).
    """
    with op.batch_alter_table("terminals", schema=None) as batch_op:
        batch_op.alter_column("provider_id", existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column("owner_key_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_check_constraint(
            "home_has_no_provider", "(kind = 'home') = (provider_id IS NULL)"
        )
        batch_op.create_index(
            "ix_terminals_kind_last_used_at", ["kind", "last_used_at"], unique=False
        )


def downgrade() -> None:
    """Downgrade schema (home terminals, their bridges and codes go first)."""
    homes = "SELECT id FROM terminals WHERE kind = 'home'"
    op.execute(f"DELETE FROM bridge_pairing_codes WHERE terminal_id IN ({homes})")  # noqa: S608
    op.execute(f"DELETE FROM bridge_devices WHERE terminal_id IN ({homes})")  # noqa: S608
    op.execute("DELETE FROM terminals WHERE kind = 'home'")
    with op.batch_alter_table("terminals", schema=None) as batch_op:
        batch_op.drop_index("ix_terminals_kind_last_used_at")
        batch_op.drop_constraint(op.f("ck_terminals_home_has_no_provider"), type_="check")
        batch_op.drop_column("last_used_at")
        batch_op.drop_column("owner_key_hash")
        batch_op.alter_column("provider_id", existing_type=sa.Integer(), nullable=False)
