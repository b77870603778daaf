"""points ledger: accounts, transfers, lots, programs, partners, merchants

Revision ID: points_0001
Revises:
Create Date: 2026-11-27 16:32:01.764435
"""

# ruff: noqa: E501  (generated: long CHECK constraint literals)
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "points_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "points_municipalities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=6), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("refund_window_days", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_municipalities")),
        sa.UniqueConstraint("code", name=op.f("uq_points_municipalities_code")),
    )
    op.create_table(
        "points_partners",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('credit_card', 'airline', 'mobile', 'other')",
            name=op.f("ck_points_partners_kind"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_partners")),
        sa.UniqueConstraint("code", name=op.f("uq_points_partners_code")),
    )
    op.create_table(
        "points_accepted_categories",
        sa.Column("municipality_id", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.CheckConstraint(
            "category IN ('museum', 'shop', 'transport', 'tourism', 'donation', 'crowdfunding', 'online_goods')",
            name=op.f("ck_points_accepted_categories_category"),
        ),
        sa.ForeignKeyConstraint(
            ["municipality_id"],
            ["points_municipalities.id"],
            name=op.f("fk_points_accepted_categories_municipality_id_points_municipalities"),
        ),
        sa.PrimaryKeyConstraint(
            "municipality_id", "category", name=op.f("pk_points_accepted_categories")
        ),
    )
    op.create_table(
        "points_accounts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("municipality_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("owner", sa.String(length=32), nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.Column("debits_pending", sa.BigInteger(), nullable=False),
        sa.Column("credits_pending", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('issuance', 'program', 'partner', 'citizen', 'merchant', 'expired')",
            name=op.f("ck_points_accounts_kind"),
        ),
        sa.CheckConstraint(
            "kind NOT IN ('citizen', 'program') OR balance - debits_pending >= 0",
            name=op.f("ck_points_accounts_bounded_not_negative"),
        ),
        sa.CheckConstraint(
            "debits_pending >= 0 AND credits_pending >= 0", name=op.f("ck_points_accounts_pending")
        ),
        sa.ForeignKeyConstraint(
            ["municipality_id"],
            ["points_municipalities.id"],
            name=op.f("fk_points_accounts_municipality_id_points_municipalities"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_accounts")),
        sa.UniqueConstraint(
            "municipality_id", "kind", "owner", name=op.f("uq_points_accounts_municipality_id")
        ),
    )
    with op.batch_alter_table("points_accounts", schema=None) as batch_op:
        batch_op.create_index("ix_points_accounts_owner", ["owner", "kind"], unique=False)

    op.create_table(
        "points_partner_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("secret_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["points_partners.id"],
            name=op.f("fk_points_partner_keys_partner_id_points_partners"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_partner_keys")),
        sa.UniqueConstraint("key_id", name=op.f("uq_points_partner_keys_key_id")),
    )
    with op.batch_alter_table("points_partner_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_points_partner_keys_partner_id"), ["partner_id"], unique=False
        )

    op.create_table(
        "points_merchants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("municipality_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column(
            "account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "category IN ('museum', 'shop', 'transport', 'tourism', 'donation', 'crowdfunding', 'online_goods')",
            name=op.f("ck_points_merchants_category"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["points_accounts.id"],
            name=op.f("fk_points_merchants_account_id_points_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["municipality_id"],
            ["points_municipalities.id"],
            name=op.f("fk_points_merchants_municipality_id_points_municipalities"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_merchants")),
        sa.UniqueConstraint("account_id", name=op.f("uq_points_merchants_account_id")),
        sa.UniqueConstraint(
            "municipality_id", "code", name=op.f("uq_points_merchants_municipality_id")
        ),
    )
    op.create_table(
        "points_programs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("municipality_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("category", sa.String(length=24), nullable=False),
        sa.Column("points_per_grant", sa.BigInteger(), nullable=False),
        sa.Column("expiry_days", sa.Integer(), nullable=False),
        sa.Column("cap_points_per_citizen", sa.BigInteger(), nullable=True),
        sa.Column("cap_grants_per_citizen", sa.Integer(), nullable=True),
        sa.Column(
            "account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "category IN ('volunteering', 'care_support', 'child_rearing', 'health_checkup', 'event', 'moving_in', 'other', 'partner_bonus')",
            name=op.f("ck_points_programs_category"),
        ),
        sa.CheckConstraint(
            "points_per_grant > 0 AND expiry_days > 0", name=op.f("ck_points_programs_positive")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["points_accounts.id"],
            name=op.f("fk_points_programs_account_id_points_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["municipality_id"],
            ["points_municipalities.id"],
            name=op.f("fk_points_programs_municipality_id_points_municipalities"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_programs")),
        sa.UniqueConstraint("account_id", name=op.f("uq_points_programs_account_id")),
        sa.UniqueConstraint(
            "municipality_id", "code", name=op.f("uq_points_programs_municipality_id")
        ),
    )
    op.create_table(
        "points_conversion_terms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("municipality_id", sa.Integer(), nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=False),
        sa.Column("rate_num", sa.Integer(), nullable=False),
        sa.Column("rate_den", sa.Integer(), nullable=False),
        sa.Column("bonus_bp", sa.Integer(), nullable=False),
        sa.Column("min_unit", sa.BigInteger(), nullable=False),
        sa.Column("hold_days", sa.Integer(), nullable=False),
        sa.Column("expiry_days", sa.Integer(), nullable=False),
        sa.Column("bonus_program_id", sa.Integer(), nullable=True),
        sa.Column(
            "partner_account_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.CheckConstraint(
            "rate_num > 0 AND rate_den > 0 AND bonus_bp >= 0 AND min_unit > 0 AND hold_days >= 0 AND expiry_days > 0",
            name=op.f("ck_points_conversion_terms_positive"),
        ),
        sa.ForeignKeyConstraint(
            ["bonus_program_id"],
            ["points_programs.id"],
            name=op.f("fk_points_conversion_terms_bonus_program_id_points_programs"),
        ),
        sa.ForeignKeyConstraint(
            ["municipality_id"],
            ["points_municipalities.id"],
            name=op.f("fk_points_conversion_terms_municipality_id_points_municipalities"),
        ),
        sa.ForeignKeyConstraint(
            ["partner_account_id"],
            ["points_accounts.id"],
            name=op.f("fk_points_conversion_terms_partner_account_id_points_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["points_partners.id"],
            name=op.f("fk_points_conversion_terms_partner_id_points_partners"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_conversion_terms")),
        sa.UniqueConstraint(
            "municipality_id", "partner_id", name=op.f("uq_points_conversion_terms_municipality_id")
        ),
    )
    op.create_table(
        "points_program_citizen_totals",
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column(
            "account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("grants", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["points_accounts.id"],
            name=op.f("fk_points_program_citizen_totals_account_id_points_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["program_id"],
            ["points_programs.id"],
            name=op.f("fk_points_program_citizen_totals_program_id_points_programs"),
        ),
        sa.PrimaryKeyConstraint(
            "program_id", "account_id", name=op.f("pk_points_program_citizen_totals")
        ),
    )
    op.create_table(
        "points_transfers",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("municipality_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column(
            "debit_account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "credit_account_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=160), nullable=False),
        sa.Column("payload_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "reversal_of", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column(
            "pending_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("program_id", sa.Integer(), nullable=True),
        sa.Column("hold_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("debit_balance", sa.BigInteger(), nullable=True),
        sa.Column("credit_balance", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('funding', 'grant', 'grant_revoke', 'conversion', 'conversion_bonus', 'spend', 'refund', 'expiry')",
            name=op.f("ck_points_transfers_kind"),
        ),
        sa.CheckConstraint(
            "status IN ('posted', 'pending', 'voided')", name=op.f("ck_points_transfers_status")
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_points_transfers_amount_positive")),
        sa.CheckConstraint(
            "debit_account_id <> credit_account_id",
            name=op.f("ck_points_transfers_distinct_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["credit_account_id"],
            ["points_accounts.id"],
            name=op.f("fk_points_transfers_credit_account_id_points_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["debit_account_id"],
            ["points_accounts.id"],
            name=op.f("fk_points_transfers_debit_account_id_points_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["municipality_id"],
            ["points_municipalities.id"],
            name=op.f("fk_points_transfers_municipality_id_points_municipalities"),
        ),
        sa.ForeignKeyConstraint(
            ["pending_id"],
            ["points_transfers.id"],
            name=op.f("fk_points_transfers_pending_id_points_transfers"),
        ),
        sa.ForeignKeyConstraint(
            ["program_id"],
            ["points_programs.id"],
            name=op.f("fk_points_transfers_program_id_points_programs"),
        ),
        sa.ForeignKeyConstraint(
            ["reversal_of"],
            ["points_transfers.id"],
            name=op.f("fk_points_transfers_reversal_of_points_transfers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_transfers")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_points_transfers_idempotency_key")),
        sa.UniqueConstraint("pending_id", name=op.f("uq_points_transfers_pending_id")),
    )
    with op.batch_alter_table("points_transfers", schema=None) as batch_op:
        batch_op.create_index(
            "ix_points_transfers_credit", ["credit_account_id", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_points_transfers_debit", ["debit_account_id", "created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_points_transfers_reversal_of"), ["reversal_of"], unique=False
        )

    op.create_table(
        "points_conversions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=False),
        sa.Column("municipality_id", sa.Integer(), nullable=False),
        sa.Column(
            "citizen_account_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("partner_points", sa.BigInteger(), nullable=False),
        sa.Column("base_points", sa.BigInteger(), nullable=False),
        sa.Column("bonus_points", sa.BigInteger(), nullable=False),
        sa.Column(
            "base_transfer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "bonus_transfer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("hold_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["base_transfer_id"],
            ["points_transfers.id"],
            name=op.f("fk_points_conversions_base_transfer_id_points_transfers"),
        ),
        sa.ForeignKeyConstraint(
            ["bonus_transfer_id"],
            ["points_transfers.id"],
            name=op.f("fk_points_conversions_bonus_transfer_id_points_transfers"),
        ),
        sa.ForeignKeyConstraint(
            ["citizen_account_id"],
            ["points_accounts.id"],
            name=op.f("fk_points_conversions_citizen_account_id_points_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["municipality_id"],
            ["points_municipalities.id"],
            name=op.f("fk_points_conversions_municipality_id_points_municipalities"),
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["points_partners.id"],
            name=op.f("fk_points_conversions_partner_id_points_partners"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_conversions")),
        sa.UniqueConstraint(
            "partner_id", "reference", name=op.f("uq_points_conversions_partner_id")
        ),
    )
    with op.batch_alter_table("points_conversions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_points_conversions_base_transfer_id"), ["base_transfer_id"], unique=False
        )
        batch_op.create_index(
            "ix_points_conversions_report",
            ["municipality_id", "partner_id", "created_at"],
            unique=False,
        )

    op.create_table(
        "points_lots",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "transfer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("remaining", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount > 0", name=op.f("ck_points_lots_amount_positive")),
        sa.CheckConstraint(
            "remaining >= 0 AND remaining <= amount", name=op.f("ck_points_lots_remaining")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["points_accounts.id"],
            name=op.f("fk_points_lots_account_id_points_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["transfer_id"],
            ["points_transfers.id"],
            name=op.f("fk_points_lots_transfer_id_points_transfers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_lots")),
    )
    with op.batch_alter_table("points_lots", schema=None) as batch_op:
        batch_op.create_index(
            "ix_points_lots_due",
            ["expires_at"],
            unique=False,
            sqlite_where=sa.text("remaining > 0"),
            postgresql_where=sa.text("remaining > 0"),
        )
        batch_op.create_index(
            "ix_points_lots_live",
            ["account_id", "expires_at", "id"],
            unique=False,
            sqlite_where=sa.text("remaining > 0"),
            postgresql_where=sa.text("remaining > 0"),
        )
        batch_op.create_index(
            batch_op.f("ix_points_lots_transfer_id"), ["transfer_id"], unique=False
        )

    op.create_table(
        "points_open_holds",
        sa.Column(
            "transfer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("hold_until", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["transfer_id"],
            ["points_transfers.id"],
            name=op.f("fk_points_open_holds_transfer_id_points_transfers"),
        ),
        sa.PrimaryKeyConstraint("transfer_id", name=op.f("pk_points_open_holds")),
    )
    with op.batch_alter_table("points_open_holds", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_points_open_holds_hold_until"), ["hold_until"], unique=False
        )

    op.create_table(
        "points_lot_moves",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("lot_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "transfer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("delta", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("delta <> 0", name=op.f("ck_points_lot_moves_delta_nonzero")),
        sa.ForeignKeyConstraint(
            ["lot_id"], ["points_lots.id"], name=op.f("fk_points_lot_moves_lot_id_points_lots")
        ),
        sa.ForeignKeyConstraint(
            ["transfer_id"],
            ["points_transfers.id"],
            name=op.f("fk_points_lot_moves_transfer_id_points_transfers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_lot_moves")),
    )
    with op.batch_alter_table("points_lot_moves", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_points_lot_moves_lot_id"), ["lot_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_points_lot_moves_transfer_id"), ["transfer_id"], unique=False
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("points_lot_moves", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_points_lot_moves_transfer_id"))
        batch_op.drop_index(batch_op.f("ix_points_lot_moves_lot_id"))

    op.drop_table("points_lot_moves")
    with op.batch_alter_table("points_open_holds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_points_open_holds_hold_until"))

    op.drop_table("points_open_holds")
    with op.batch_alter_table("points_lots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_points_lots_transfer_id"))
        batch_op.drop_index(
            "ix_points_lots_live",
            sqlite_where=sa.text("remaining > 0"),
            postgresql_where=sa.text("remaining > 0"),
        )
        batch_op.drop_index(
            "ix_points_lots_due",
            sqlite_where=sa.text("remaining > 0"),
            postgresql_where=sa.text("remaining > 0"),
        )

    op.drop_table("points_lots")
    with op.batch_alter_table("points_conversions", schema=None) as batch_op:
        batch_op.drop_index("ix_points_conversions_report")
        batch_op.drop_index(batch_op.f("ix_points_conversions_base_transfer_id"))

    op.drop_table("points_conversions")
    with op.batch_alter_table("points_transfers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_points_transfers_reversal_of"))
        batch_op.drop_index("ix_points_transfers_debit")
        batch_op.drop_index("ix_points_transfers_credit")

    op.drop_table("points_transfers")
    op.drop_table("points_program_citizen_totals")
    op.drop_table("points_conversion_terms")
    op.drop_table("points_programs")
    op.drop_table("points_merchants")
    with op.batch_alter_table("points_partner_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_points_partner_keys_partner_id"))

    op.drop_table("points_partner_keys")
    with op.batch_alter_table("points_accounts", schema=None) as batch_op:
        batch_op.drop_index("ix_points_accounts_owner")

    op.drop_table("points_accounts")
    op.drop_table("points_accepted_categories")
    op.drop_table("points_partners")
    op.drop_table("points_municipalities")
