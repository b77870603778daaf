"""links: a link's verification (unverified claim, verified by staff, by the library)

Revision ID: links_0009
Revises: sessions_0008
Create Date: 2026-12-07 08:00:00.000000

`verified_by_staff` becomes `verification` ('unverified', 'staff', 'library') with the
time it was verified. A number is unique per provider among verified links only (a
partial unique index): unverified claims may repeat, so making one never tells anyone
whether the number is someone else's, and the citizen who proves a number gets it.

Links made before this revision without staff (at a kiosk or at home) become unverified
claims: their holders are asked to show their library card once at the counter (or to
verify with their library password where the library has SIP2).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "links_0009"
down_revision: str | Sequence[str] | None = "sessions_0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VERIFIED_ONLY = sa.text("verification <> 'unverified'")


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("service_links", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "verification",
                sa.String(length=16),
                nullable=False,
                server_default="unverified",
            )
        )
        batch_op.add_column(sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE service_links SET verification = 'staff', verified_at = created_at "
        "WHERE verified_by_staff"
    )
    with op.batch_alter_table("service_links", schema=None) as batch_op:
        batch_op.alter_column("verification", server_default=None)
        batch_op.drop_constraint("uq_service_links_provider_number", type_="unique")
        batch_op.drop_column("verified_by_staff")
        batch_op.create_check_constraint(
            "verification", "verification IN ('unverified', 'staff', 'library')"
        )
        batch_op.create_index(
            "ix_service_links_provider_number", ["provider_id", "customer_number"], unique=False
        )
        batch_op.create_index(
            "uq_service_links_verified_number",
            ["provider_id", "customer_number"],
            unique=True,
            sqlite_where=VERIFIED_ONLY,
            postgresql_where=VERIFIED_ONLY,
        )


def downgrade() -> None:
    """Downgrade schema: unverified claims of a number someone holds verified go (the old
    schema had one link per number)."""
    op.execute(
        "DELETE FROM service_links WHERE verification = 'unverified' AND EXISTS ("
        "SELECT 1 FROM service_links AS v WHERE v.provider_id = service_links.provider_id "
        "AND v.customer_number = service_links.customer_number "
        "AND v.verification <> 'unverified')"
    )
    op.execute(
        "DELETE FROM service_links WHERE verification = 'unverified' AND id NOT IN ("
        "SELECT MIN(id) FROM service_links GROUP BY provider_id, customer_number)"
    )
    with op.batch_alter_table("service_links", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("verified_by_staff", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.execute("UPDATE service_links SET verified_by_staff = (verification <> 'unverified')")
    with op.batch_alter_table("service_links", schema=None) as batch_op:
        batch_op.alter_column("verified_by_staff", server_default=None)
        batch_op.drop_index("uq_service_links_verified_number")
        batch_op.drop_index("ix_service_links_provider_number")
        batch_op.drop_constraint(op.f("ck_service_links_verification"), type_="check")
        batch_op.drop_column("verified_at")
        batch_op.drop_column("verification")
        batch_op.create_unique_constraint(
            "uq_service_links_provider_number", ["provider_id", "customer_number"]
        )
