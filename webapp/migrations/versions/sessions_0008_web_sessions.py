"""sessions: server-side web sessions (the cookie holds an opaque token only)

Revision ID: sessions_0008
Revises: points_0007
Create Date: 2026-12-07 06:00:00.000000

A row per browser session, keyed by the SHA-256 of its cookie's token. Sessions kept in
Flask's signed cookie before this revision are not carried over: after the upgrade every
browser starts anew (staff sign in again, kiosks are opened again by an admin, citizens
set up their home card reader again).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "sessions_0008"
down_revision: str | Sequence[str] | None = "points_0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "web_sessions",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("terminal_id", sa.Integer(), nullable=True),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("idle_seconds", sa.Integer(), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_agent", sa.String(length=100), nullable=True),
        sa.CheckConstraint(
            "kind IN ('anonymous', 'staff', 'kiosk', 'home')", name=op.f("ck_web_sessions_kind")
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff_users.id"],
            name=op.f("fk_web_sessions_staff_id_staff_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["terminal_id"],
            ["terminals.id"],
            name=op.f("fk_web_sessions_terminal_id_terminals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_web_sessions")),
    )
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_web_sessions_ends_at"), ["ends_at"], unique=False)
        batch_op.create_index(
            "ix_web_sessions_kind_last_seen_at", ["kind", "last_seen_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_web_sessions_last_seen_at"), ["last_seen_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_web_sessions_staff_id"), ["staff_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_web_sessions_terminal_id"), ["terminal_id"], unique=False
        )


def downgrade() -> None:
    """Downgrade schema (every server-side session ends)."""
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_web_sessions_terminal_id"))
        batch_op.drop_index(batch_op.f("ix_web_sessions_staff_id"))
        batch_op.drop_index(batch_op.f("ix_web_sessions_last_seen_at"))
        batch_op.drop_index("ix_web_sessions_kind_last_seen_at")
        batch_op.drop_index(batch_op.f("ix_web_sessions_ends_at"))
    op.drop_table("web_sessions")
