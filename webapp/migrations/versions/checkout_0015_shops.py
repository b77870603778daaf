"""checkout: online shops (settings, API keys), checkouts, the webhook outbox

Revision ID: checkout_0015
Revises: retention_0015
Create Date: 2026-12-07 12:40:00

An online shop is a merchant of category online_goods with its settings (registered
origins, webhook URL, signing secret: points_shops) and API keys
(points_merchant_keys); it makes checkouts (points_checkouts) that citizens pay at home
(a spend in the ledger), and hears of them by webhooks sent from points_webhook_outbox.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "checkout_0015"
down_revision: str | Sequence[str] | None = "retention_0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "points_merchant_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("secret_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["points_merchants.id"],
            name=op.f("fk_points_merchant_keys_merchant_id_points_merchants"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_merchant_keys")),
        sa.UniqueConstraint("key_id", name=op.f("uq_points_merchant_keys_key_id")),
    )
    op.create_index(
        op.f("ix_points_merchant_keys_merchant_id"),
        "points_merchant_keys",
        ["merchant_id"],
        unique=False,
    )
    op.create_table(
        "points_shops",
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("origins", sa.JSON(), nullable=False),
        sa.Column("webhook_url", sa.String(length=500), nullable=True),
        sa.Column("signing_secret", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["points_merchants.id"],
            name=op.f("fk_points_shops_merchant_id_points_merchants"),
        ),
        sa.PrimaryKeyConstraint("merchant_id", name=op.f("pk_points_shops")),
    )
    op.create_table(
        "points_checkouts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("return_url", sa.String(length=1000), nullable=False),
        sa.Column("payload_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "spend_transfer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('open', 'paid', 'cancelled')", name=op.f("ck_points_checkouts_status")
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_points_checkouts_amount_positive")),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["points_merchants.id"],
            name=op.f("fk_points_checkouts_merchant_id_points_merchants"),
        ),
        sa.ForeignKeyConstraint(
            ["spend_transfer_id"],
            ["points_transfers.id"],
            name=op.f("fk_points_checkouts_spend_transfer_id_points_transfers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_checkouts")),
        sa.UniqueConstraint(
            "merchant_id", "reference", name=op.f("uq_points_checkouts_merchant_id")
        ),
    )
    op.create_table(
        "points_webhook_outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("event_id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("checkout_id", sa.String(length=40), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'failed')",
            name=op.f("ck_points_webhook_outbox_status"),
        ),
        sa.ForeignKeyConstraint(
            ["checkout_id"],
            ["points_checkouts.id"],
            name=op.f("fk_points_webhook_outbox_checkout_id_points_checkouts"),
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["points_merchants.id"],
            name=op.f("fk_points_webhook_outbox_merchant_id_points_merchants"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_webhook_outbox")),
        sa.UniqueConstraint("event_id", name=op.f("uq_points_webhook_outbox_event_id")),
    )
    op.create_index(
        "ix_points_webhook_outbox_due",
        "points_webhook_outbox",
        ["status", "next_attempt_at"],
        unique=False,
    )
    op.create_index(
        "ix_points_webhook_outbox_merchant",
        "points_webhook_outbox",
        ["merchant_id", "id"],
        unique=False,
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_points_webhook_outbox_merchant", table_name="points_webhook_outbox")
    op.drop_index("ix_points_webhook_outbox_due", table_name="points_webhook_outbox")
    op.drop_table("points_webhook_outbox")
    op.drop_table("points_checkouts")
    op.drop_table("points_shops")
    op.drop_index(op.f("ix_points_merchant_keys_merchant_id"), table_name="points_merchant_keys")
    op.drop_table("points_merchant_keys")
