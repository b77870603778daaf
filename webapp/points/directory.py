"""Who may hold points: the ledger asks a directory whether a MyKey ID exists.

The identity domain owns MyKey IDs; the ledger only keeps the ID string as the owner of a
citizen account. The directory is chosen in `init_app` (app.extensions["points_directory"]).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from ..pgraw import Raw


class CitizenDirectory(Protocol):
    """Answers whether a MyKey ID exists (a point read, no history kept), on a session or,
    for the one-call grant (webapp.points.grant_pg), on a Core connection or on a lane
    connection (`exists_on`, in autocommit: its own implicit transaction)."""

    def exists(self, session: Session | Connection, mykey_id: str) -> bool:
        """True when `mykey_id` names a live MyKey ID."""
        ...

    def exists_on(self, raw: Raw, mykey_id: str) -> bool:
        """`exists`, asked on a psycopg connection (webapp.pglane)."""
        ...


class AnyMyKeyId:
    """Accepts every well-formed MyKey ID: for tests, benchmarks and the ledger alone."""

    def exists(self, session: Session | Connection, mykey_id: str) -> bool:
        """Always true (the format was checked before)."""
        return True

    def exists_on(self, raw: Raw, mykey_id: str) -> bool:
        """Always true."""
        return True


class KnownMyKeyIds:
    """A fixed set of MyKey IDs (tests)."""

    def __init__(self, ids: set[str]) -> None:
        self.ids = ids

    def exists(self, session: Session | Connection, mykey_id: str) -> bool:
        """True when the ID is in the set."""
        return mykey_id in self.ids

    def exists_on(self, raw: Raw, mykey_id: str) -> bool:
        """True when the ID is in the set."""
        return mykey_id in self.ids


class IdentityDirectory:
    """MyKey IDs as webapp.identity stores them (the production choice)."""

    def exists(self, session: Session | Connection, mykey_id: str) -> bool:
        """True when the identity table has the ID."""
        from ..identity.models import MyKeyID  # the identity domain, imported on use

        return session.scalar(select(MyKeyID.id).where(MyKeyID.id == mykey_id)) is not None

    def exists_on(self, raw: Raw, mykey_id: str) -> bool:
        """True when the identity table has the ID (a prepared point read)."""
        from ..identity.models import MyKeyID  # the identity domain, imported on use

        table = MyKeyID.__tablename__
        return raw.row(f"SELECT 1 FROM {table} WHERE id = %s", (mykey_id,)) is not None  # noqa: S608
