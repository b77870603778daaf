"""points: the ledger's transfers as PostgreSQL functions (one call per transfer)

Revision ID: ledgerspeed_0015
Revises: tenancy_0015 (main's head when main was merged in; providers_0014 before)
Create Date: 2026-12-07 12:30:00

`points_grant_v1`, `points_spend_v1` and `points_refund_v1` (webapp.points.pg_functions): a
staff grant, a spend and a merchant's refund, each written by one function called as its
own transaction, one round trip.
PostgreSQL only; nothing on SQLite (its path stays in Python). A later version of a
function is a new name created by a new migration; a released text never changes.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from webapp.points import pg_functions

revision: str = "ledgerspeed_0015"
down_revision: str | Sequence[str] | None = "tenancy_0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAMES = (pg_functions.GRANT_V1_NAME, pg_functions.SPEND_V1_NAME, pg_functions.REFUND_V1_NAME)


def upgrade() -> None:
    """Upgrade schema."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in NAMES:
        op.execute(pg_functions.ALL[name][0])


def downgrade() -> None:
    """Downgrade schema."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in NAMES:
        op.execute(pg_functions.drop_sql(name))
