"""sip2: a library's connection to its own system

Revision ID: sip2_0010
Revises: links_0009
Create Date: 2026-12-07 08:28:47.278372

One row per library that checks its patrons' numbers and passwords with its own system
(SIP2) through one of its bridges: the connection, and its passwords as envelopes sealed
to that bridge (the platform never holds them in the clear). No patron data.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "sip2_0010"
down_revision: str | Sequence[str] | None = "links_0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "library_sip2",
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("terminal_id", sa.Integer(), nullable=False),
        sa.Column("bridge_id", sa.String(length=40), nullable=False),
        sa.Column("host", sa.String(length=253), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("tls", sa.Boolean(), nullable=False),
        sa.Column("ca_pem", sa.Text(), nullable=True),
        sa.Column("charset", sa.String(length=16), nullable=False),
        sa.Column("checksums", sa.Boolean(), nullable=False),
        sa.Column("patron_status", sa.Boolean(), nullable=False),
        sa.Column("institution_id", sa.String(length=64), nullable=False),
        sa.Column("location_code", sa.String(length=64), nullable=False),
        sa.Column("login_user", sa.String(length=64), nullable=False),
        sa.Column("login_password", sa.JSON(), nullable=False),
        sa.Column("terminal_password", sa.JSON(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("check_code", sa.String(length=32), nullable=True),
        sa.CheckConstraint(
            "charset IN ('utf-8', 'shift_jis', 'cp850')", name=op.f("ck_library_sip2_charset")
        ),
        sa.CheckConstraint("port BETWEEN 1 AND 65535", name=op.f("ck_library_sip2_port")),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_library_sip2_provider_id_providers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["terminal_id"],
            ["terminals.id"],
            name=op.f("fk_library_sip2_terminal_id_terminals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("provider_id", name=op.f("pk_library_sip2")),
    )
    with op.batch_alter_table("library_sip2", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_library_sip2_terminal_id"), ["terminal_id"], unique=False
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("library_sip2", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_library_sip2_terminal_id"))

    op.drop_table("library_sip2")
