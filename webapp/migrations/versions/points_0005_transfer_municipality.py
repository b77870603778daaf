"""points: no foreign key from points_transfers.municipality_id to the municipality row

Revision ID: points_0005
Revises: terminals_0004
Create Date: 2026-11-27 20:05:00.000000

Every transfer of a city share-locked its one municipality row through this key, which
PostgreSQL turns into a multixact on a hot row: under 8 concurrent grants throughput
halved. The accounts' own keys name the municipality, and the ledger's invariant
"transfers stay in one municipality" checks the copy kept on the transfer.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "points_0005"
down_revision: str | Sequence[str] | None = "terminals_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FK = "fk_points_transfers_municipality_id_points_municipalities"


def upgrade() -> None:
    """Drop the key (SQLite: batch mode copies the table)."""
    with op.batch_alter_table("points_transfers", schema=None) as batch_op:
        batch_op.drop_constraint(_FK, type_="foreignkey")


def downgrade() -> None:
    """Put the key back."""
    with op.batch_alter_table("points_transfers", schema=None) as batch_op:
        batch_op.create_foreign_key(_FK, "points_municipalities", ["municipality_id"], ["id"])
