"""providers: where a facility is (prefecture, municipality), its kind and its reading

Revision ID: providers_0014
Revises: points_0013
Create Date: 2026-12-07 10:20:00

Providers get their 全国地方公共団体コード (prefecture and municipality, empty until set),
the municipality's name, the name's kana reading, and two search keys (webapp/places/
kana.py) with the indexes the kiosk's facility search and browsing read. Kinds: a
university library and a shopping street join; "transport" (no facility the plan names)
becomes "other" (the services refuse unknown kinds). Existing rows stay valid:
their search keys are filled from their name and code.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from webapp.places.kana import search_key

revision: str = "providers_0014"
down_revision: str | Sequence[str] | None = "points_0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("prefecture_code", 6),
    ("municipality_code", 6),
    ("municipality_name", 100),
    ("name_kana", 200),
    ("search_name", 200),
    ("search_text", 500),
)


def upgrade() -> None:
    """Upgrade schema."""
    op.execute("UPDATE providers SET kind = 'other' WHERE kind NOT IN ('library', 'museum',"
               " 'sports', 'bike_park', 'lecture', 'community_plaza', 'other')")  # fmt: skip
    # Plain ADD COLUMN (no batch copy): on SQLite a copy drops the table, and dropping
    # providers would cascade to every table that names one.
    for name, length in COLUMNS:
        op.add_column(
            "providers",
            sa.Column(name, sa.String(length=length), nullable=False, server_default=""),
        )
    op.create_index(
        "ix_providers_place", "providers", ["prefecture_code", "municipality_code", "search_name"]
    )
    op.create_index("ix_providers_municipality", "providers", ["municipality_code", "search_name"])
    op.create_index("ix_providers_search_name", "providers", ["search_name"])
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, code, name_ja FROM providers")).all()
    for provider_id, code, name in rows:
        bind.execute(
            sa.text("UPDATE providers SET search_name = :n, search_text = :t WHERE id = :i"),
            {
                "n": search_key(name)[:200],
                "t": search_key(f"{name} {code}")[:500],
                "i": provider_id,
            },
        )


def downgrade() -> None:
    """Downgrade schema (the new kinds become "other")."""
    op.drop_index("ix_providers_search_name", table_name="providers")
    op.drop_index("ix_providers_municipality", table_name="providers")
    op.drop_index("ix_providers_place", table_name="providers")
    for name, _ in reversed(COLUMNS):
        op.drop_column("providers", name)
    op.execute("UPDATE providers SET kind = 'other' WHERE kind IN"
               " ('university_library', 'shopping_street')")  # fmt: skip
