"""Ending, listing and cleaning up server-side sessions. No Flask imports.

Every function that ends sessions deletes their rows, commits, then publishes on the bus:

    channel "sessions.ended"
    {"keys": ["<sha-256 hex of a token>", ...], "terminal_ids": [<int>, ...]}

`keys` are the ended sessions' keys (never tokens); `terminal_ids` the distinct terminals
those sessions were bound to (a counter, a kiosk or a home terminal). Long-lived
connections (the terminal WebSocket) subscribe and close whatever belonged to an ended
session, on every worker. Messages carry at most PUBLISH_CHUNK keys; a larger ending is
several messages. A session rotated to a new token (sign-in, binding a kiosk or a home
terminal), ended by its owner (sign-out), by an admin, by a password change or a
deactivation, or expired and deleted, is announced the same way.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, and_, delete, or_, select, true
from sqlalchemy.orm import Session

from ..bus import Bus
from ..staff.models import StaffUser
from ..terminals.models import Terminal, TerminalKind
from .models import SessionKind, WebSession

log = logging.getLogger(__name__)

ENDED_CHANNEL = "sessions.ended"
# 500 keys of 64 hex characters are ~34 KB of JSON: under the bus's 64 KiB message limit.
PUBLISH_CHUNK = 500
TOKEN_BYTES = 32  # 256 bits from `secrets`: the cookie's whole content
PAGE_SIZE = 50


def new_token() -> str:
    """A fresh session token for a cookie (43 URL-safe characters, 256 random bits)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def key_of(token: str) -> str:
    """The row key of a token: its SHA-256, hex (a database dump gives no live cookie)."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class Ended:
    """Sessions just ended: their keys and the terminals they were bound to."""

    keys: tuple[str, ...] = ()
    terminal_ids: tuple[int, ...] = ()

    def __len__(self) -> int:
        return len(self.keys)


def publish_ended(bus: Bus, ended: Ended) -> None:
    """Announce `ended` on ENDED_CHANNEL (several messages when large); never raises.

    The rows are already deleted and committed: a bus that is down costs only the early
    close of a socket, which the socket's own checks catch later.
    """
    keys = list(ended.keys)
    for start in range(0, len(keys), PUBLISH_CHUNK):
        chunk = keys[start : start + PUBLISH_CHUNK]
        message = {"keys": chunk, "terminal_ids": list(ended.terminal_ids)}
        try:
            bus.publish(ENDED_CHANNEL, message)
        except Exception:
            log.exception("could not announce %d ended session(s)", len(chunk))


def _delete_where(s: Session, bus: Bus, condition: ColumnElement[bool]) -> Ended:
    """Delete the rows matching `condition` in one statement, commit, announce them."""
    rows = s.execute(
        delete(WebSession)
        .where(condition)
        .returning(WebSession.key, WebSession.terminal_id)
        .execution_options(synchronize_session=False)
    ).all()
    s.commit()
    ended = Ended(
        tuple(key for key, _ in rows),
        tuple(sorted({terminal for _, terminal in rows if terminal is not None})),
    )
    if ended.keys:
        publish_ended(bus, ended)
    return ended


def end_sessions(s: Session, bus: Bus, keys: Iterable[str]) -> Ended:
    """End the sessions with these keys (sign-out, an admin's "End")."""
    wanted = list(keys)
    if not wanted:
        return Ended()
    return _delete_where(s, bus, WebSession.key.in_(wanted))


def end_staff_sessions(s: Session, bus: Bus, staff_id: int, *, keep: str | None = None) -> Ended:
    """End every session of a staff member but `keep` (deactivation, password change)."""
    condition = WebSession.staff_id == staff_id
    if keep is not None:
        condition = and_(condition, WebSession.key != keep)
    return _delete_where(s, bus, condition)


def end_terminal_sessions(s: Session, bus: Bus, terminal_id: int) -> Ended:
    """End every session bound to a terminal (an admin revokes a kiosk or home binding)."""
    return _delete_where(s, bus, WebSession.terminal_id == terminal_id)


def delete_expired(s: Session, bus: Bus, now: datetime, limit: int) -> Ended:
    """Delete up to `limit` sessions that ended before `now` (idle or past their lifetime).

    On PostgreSQL concurrent clean-ups skip each other's rows (SKIP LOCKED) instead of
    waiting for them; SQLite has one writer anyway.
    """
    batch = (
        select(WebSession.key)
        .where(WebSession.ends_at <= now)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    return _delete_where(s, bus, WebSession.key.in_(batch))


def cleanup(s: Session, bus: Bus, now: datetime, batch: int = 500) -> int:
    """Delete every session ended before `now`, `batch` rows per transaction; the count."""
    total = 0
    while True:
        done = delete_expired(s, bus, now, batch)
        total += len(done)
        if len(done) < batch:
            return total


def is_active(s: Session, key: str, now: datetime) -> bool:
    """Whether the session with `key` exists and has not ended (one read by primary key)."""
    ends_at = s.scalar(select(WebSession.ends_at).where(WebSession.key == key))
    return ends_at is not None and ends_at > now


# --- The admin page ---------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """Whose sessions an admin may see and end: every one (`provider_id` None: a platform
    admin) or those of one provider's staff and of its kiosks (a provider admin)."""

    provider_id: int | None
    # A municipal administrator's: its staff (webapp/tenancy/scope.py) and its providers'
    # kiosks; `provider_id` is then None.
    staff_where: ColumnElement[bool] | None = None
    terminals_where: ColumnElement[bool] | None = None

    def sessions(self) -> ColumnElement[bool]:
        """The condition on WebSession rows within this scope."""
        if self.staff_where is not None and self.terminals_where is not None:
            kiosks_of = select(Terminal.id).where(
                self.terminals_where, Terminal.kind == TerminalKind.KIOSK
            )
            return or_(
                WebSession.staff_id.in_(select(StaffUser.id).where(self.staff_where)),
                and_(WebSession.kind == SessionKind.KIOSK, WebSession.terminal_id.in_(kiosks_of)),
            )
        if self.provider_id is None:
            return true()
        staff = select(StaffUser.id).where(StaffUser.provider_id == self.provider_id)
        kiosks = select(Terminal.id).where(
            Terminal.provider_id == self.provider_id, Terminal.kind == TerminalKind.KIOSK
        )
        return or_(
            WebSession.staff_id.in_(staff),
            and_(WebSession.kind == SessionKind.KIOSK, WebSession.terminal_id.in_(kiosks)),
        )

    def may_revoke(self, terminal: Terminal) -> bool:
        """Whether this scope may revoke `terminal`'s binding (a kiosk of its provider; a
        home terminal for platform admins only: it belongs to no provider). A municipal
        administrator's view checks the terminal is its own first (AdminScope.terminal)."""
        if self.staff_where is not None:
            return terminal.kind == TerminalKind.KIOSK
        if self.provider_id is None:
            return terminal.kind in TerminalKind.SELF_SERVICE
        return terminal.kind == TerminalKind.KIOSK and terminal.provider_id == self.provider_id


@dataclass(frozen=True)
class SessionRow:
    """One live session as the admin page shows it."""

    key: str
    kind: str
    created_at: datetime
    last_seen_at: datetime
    ends_at: datetime
    user_agent: str | None
    staff_login: str | None
    staff_role: str | None
    terminal_id: int | None
    terminal_name: str | None
    terminal_kind: str | None


@dataclass(frozen=True)
class Listing:
    """A page of sessions, latest seen first."""

    rows: list[SessionRow] = field(default_factory=list)
    page: int = 0
    has_next: bool = False


def list_sessions(
    s: Session, scope: Scope, now: datetime, *, page: int = 0, kinds: Sequence[str] = ()
) -> Listing:
    """Live sessions within `scope` (of `kinds`, if given), PAGE_SIZE per page, latest
    seen first (by the last_seen_at indexes)."""
    page = max(0, page)
    stmt = (
        select(
            WebSession.key,
            WebSession.kind,
            WebSession.created_at,
            WebSession.last_seen_at,
            WebSession.ends_at,
            WebSession.user_agent,
            StaffUser.login,
            StaffUser.role,
            WebSession.terminal_id,
            Terminal.name,
            Terminal.kind,
        )
        .outerjoin(StaffUser, StaffUser.id == WebSession.staff_id)
        .outerjoin(Terminal, Terminal.id == WebSession.terminal_id)
        .where(WebSession.ends_at > now, scope.sessions())
        .order_by(WebSession.last_seen_at.desc(), WebSession.key)
        .limit(PAGE_SIZE + 1)
        .offset(page * PAGE_SIZE)
    )
    if kinds:
        stmt = stmt.where(WebSession.kind.in_(list(kinds)))
    rows = [SessionRow(*row) for row in s.execute(stmt)]
    return Listing(rows[:PAGE_SIZE], page, len(rows) > PAGE_SIZE)


def end_in_scope(s: Session, bus: Bus, scope: Scope, key: str) -> Ended:
    """End one session if `scope` may see it (else nothing: the caller answers 404)."""
    return _delete_where(s, bus, and_(WebSession.key == key, scope.sessions()))


def list_bindings(s: Session, scope: Scope, now: datetime, *, page: int = 0) -> Listing:
    """Live kiosk and home sessions within `scope`: the browsers bound to a terminal."""
    return list_sessions(s, scope, now, page=page, kinds=(SessionKind.KIOSK, SessionKind.HOME))
