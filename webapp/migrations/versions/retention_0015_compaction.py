"""points retention: pooled accounts, summary transfers, an optional refund window

Revision ID: retention_0015
Revises: providers_0014
Create Date: 2026-12-07 12:45:00

`flask points compact` (webapp.points.retention) rewrites history older than the refund
window: the citizen's side of a payment moves to an anonymous pool account (kind
`pool`) and the citizen keeps a monthly total with it (transfer kind `summary`). The
municipality's refund window becomes an override of the platform's setting (NULL: the
platform's, 90 days by default); windows already set stay as they are. A municipality
remembers up to when its payments are compacted (`compacted_until`), where the next run
starts.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "retention_0015"
down_revision: str | Sequence[str] | None = "providers_0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_TRANSFER_KINDS = (
    "funding", "grant", "grant_revoke", "conversion", "conversion_bonus", "spend", "refund",
    "expiry", "donation", "donation_return",
)  # fmt: skip
OLD_ACCOUNT_KINDS = ("issuance", "program", "partner", "citizen", "merchant", "expired")


def _kinds(kinds: tuple[str, ...]) -> str:
    return f"kind IN ({', '.join(repr(k) for k in kinds)})"


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("points_transfers", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_points_transfers_kind"), type_="check")
        batch_op.create_check_constraint("kind", _kinds((*OLD_TRANSFER_KINDS, "summary")))
    with op.batch_alter_table("points_accounts", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_points_accounts_kind"), type_="check")
        batch_op.create_check_constraint("kind", _kinds((*OLD_ACCOUNT_KINDS, "pool")))
    with op.batch_alter_table("points_municipalities", schema=None) as batch_op:
        batch_op.alter_column("refund_window_days", existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column("compacted_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Downgrade schema (refused once compaction ran: pools and summaries break the CHECKs)."""
    op.execute(
        "UPDATE points_municipalities SET refund_window_days = 90 WHERE refund_window_days IS NULL"
    )
    with op.batch_alter_table("points_municipalities", schema=None) as batch_op:
        batch_op.drop_column("compacted_until")
        batch_op.alter_column("refund_window_days", existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table("points_accounts", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_points_accounts_kind"), type_="check")
        batch_op.create_check_constraint("kind", _kinds(OLD_ACCOUNT_KINDS))
    with op.batch_alter_table("points_transfers", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_points_transfers_kind"), type_="check")
        batch_op.create_check_constraint("kind", _kinds(OLD_TRANSFER_KINDS))
