"""Terminals, pairing and bridge authentication: plain Python over a database session.

Pairing codes are made by an admin for one terminal, live `PAIRING_TTL` (10 minutes),
work once, and are stored as a hash only. A code is 10 characters of Crockford's
base32 (no I, L, O, U: nothing to misread at a counter), shown as `XXXXX-XXXXX`: 50 bits,
so guessing one within its ten minutes is hopeless even without the rate limit.

A terminal has at most one active bridge: pairing a new one revokes the others (the
counter PC was replaced), and the caller cuts their connections off.

A shop till (kind `merchant`) always names an existing merchant (加盟店); no other kind
names one. Providers carry no municipality, so any merchant may be picked; the till
itself lets in only the staff of the merchant it names (webapp.points.terminal).

A home terminal (kind `home`, a citizen's own reader) is never made by an admin: the
citizen's browser makes one (`create_home_terminal`) and keeps the random owner key in
its signed session cookie; only the key's hash is stored. It is of no use once its
pairing code expired unpaired, or after `idle` without use (`home_expired`), and
`delete_stale_home_terminals` removes such ones with their bridges and codes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Container
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlalchemy import delete, exists, or_, select, update
from sqlalchemy.orm import Session

from bridge import seal
from bridge.wire import auth_transcript, check_transcript, unb64u

from ..inputs import NAME_LENGTH, control_character, text_problem
from ..points.models import Merchant, Municipality
from .errors import BridgeAuthError, InvalidRequest, PairingError, UnknownBridge, UnknownTerminal
from .models import BridgeDevice, PairingCode, Terminal, TerminalKind, utcnow

PAIRING_TTL = timedelta(minutes=10)
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base32
CODE_LENGTH = 10
_READ_AS = str.maketrans({"I": "1", "L": "1", "O": "0"})


def _check_merchant(s: Session, kind: str, merchant_id: int | None) -> None:
    """A till names an existing merchant; other kinds name none (InvalidRequest)."""
    if kind != TerminalKind.MERCHANT:
        if merchant_id is not None:
            raise InvalidRequest(
                f"a {kind} terminal has no merchant: only a shop till does",
                code="merchant_not_allowed",
            )
        return
    if merchant_id is None:
        raise InvalidRequest("a shop till must name its merchant", code="merchant_required")
    if isinstance(merchant_id, bool) or not isinstance(merchant_id, int):
        raise InvalidRequest("merchant_id must be an integer", code="unknown_merchant")
    if s.get(Merchant, merchant_id) is None:
        raise InvalidRequest(f"no merchant {merchant_id}", code="unknown_merchant")


def create_terminal(
    s: Session, provider_id: int, kind: str, name: str, *, merchant_id: int | None = None
) -> Terminal:
    """Add a terminal for a provider; a shop till names its merchant (never a home one)."""
    if kind not in TerminalKind.STAFFED:
        raise InvalidRequest(f"kind must be one of {', '.join(TerminalKind.STAFFED)}")
    if not name.strip() or text_problem(name, max_length=NAME_LENGTH):
        raise InvalidRequest(f"name must be 1-{NAME_LENGTH} characters, no control characters")
    _check_merchant(s, kind, merchant_id)
    terminal = Terminal(
        provider_id=provider_id, kind=kind, name=name.strip(), merchant_id=merchant_id
    )
    s.add(terminal)
    s.commit()
    return terminal


def set_merchant(s: Session, terminal_id: int, merchant_id: int) -> Terminal:
    """Bind a shop till to another merchant: from the next request on, only that
    merchant's staff use it (the previous merchant's staff lose it at once)."""
    terminal = get_terminal(s, terminal_id)
    _check_merchant(s, terminal.kind, merchant_id)
    terminal.merchant_id = merchant_id
    s.commit()
    return terminal


@dataclass(frozen=True)
class MerchantChoice:
    """A merchant as a till's admin picks it: id, code, name and municipality."""

    id: int
    code: str
    name: str
    municipality: str
    active: bool


MERCHANT_CHOICES_MAX = 2000  # a select beyond this needs a search box instead


def _choices(s: Session, *where: Any, limit: int) -> list[MerchantChoice]:
    rows = s.execute(
        select(Merchant, Municipality)
        .join(Municipality, Municipality.id == Merchant.municipality_id)
        .where(*where)
        .order_by(Municipality.code, Merchant.code)
        .limit(limit)
    ).all()
    return [
        MerchantChoice(m.id, m.code, m.name, f"{muni.name} ({muni.code})", m.active)
        for m, muni in rows
    ]


def merchant_choices(
    s: Session, *, within: Any = None, limit: int = MERCHANT_CHOICES_MAX
) -> list[MerchantChoice]:
    """Merchants a till may be bound to (those `within` a condition, e.g. an admin's
    scope), by municipality code then merchant code."""
    return _choices(s, *(() if within is None else (within,)), limit=limit)


def merchants_of(s: Session, terminals: list[Terminal]) -> dict[int, MerchantChoice]:
    """The merchants these tills name, by id (one query)."""
    ids = sorted({t.merchant_id for t in terminals if t.merchant_id is not None})
    if not ids:
        return {}
    return {c.id: c for c in _choices(s, Merchant.id.in_(ids), limit=len(ids))}


def get_terminal(s: Session, terminal_id: int) -> Terminal:
    """The terminal, or UnknownTerminal."""
    terminal = s.get(Terminal, terminal_id)
    if terminal is None:
        raise UnknownTerminal(f"no terminal {terminal_id}")
    return terminal


# -- pairing -------------------------------------------------------------------------


def normalize_code(text: str) -> str:
    """Uppercase, drop separators, read I/L as 1 and O as 0 (what people type)."""
    return "".join(ch for ch in text.upper() if ch.isalnum()).translate(_READ_AS)


def hash_code(text: str) -> str:
    """What is stored of a pairing code: SHA-256 of its normal form."""
    return hashlib.sha256(normalize_code(text).encode()).hexdigest()


def new_code() -> str:
    """A fresh random pairing code, shown as XXXXX-XXXXX."""
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return f"{raw[:5]}-{raw[5:]}"


@dataclass(frozen=True)
class IssuedCode:
    """A pairing code as the admin sees it once (only its hash is kept)."""

    code: str
    terminal_id: int
    expires_at: datetime


def create_pairing_code(
    s: Session, terminal_id: int, *, now: datetime | None = None, ttl: timedelta = PAIRING_TTL
) -> IssuedCode:
    """Make a one-time pairing code for a terminal."""
    get_terminal(s, terminal_id)
    now = now or utcnow()
    code = new_code()
    row = PairingCode(
        code_hash=hash_code(code), terminal_id=terminal_id, created_at=now, expires_at=now + ttl
    )
    s.add(row)
    s.commit()
    return IssuedCode(code, terminal_id, row.expires_at)


@dataclass(frozen=True)
class Paired:
    """The new bridge, and the bridges of the same terminal this pairing revoked."""

    bridge: BridgeDevice
    replaced: tuple[str, ...]


def _check_auth_key(text: str) -> str:
    try:
        raw = unb64u(text)
        ed25519.Ed25519PublicKey.from_public_bytes(raw)
    except (ValueError, TypeError):
        raise InvalidRequest("auth_public_key must be a raw Ed25519 key, base64url") from None
    return text


def _check_seal_key(text: str) -> str:
    try:
        seal.load_public_key_b64u(text)
    except (seal.SealError, TypeError):
        raise InvalidRequest("seal_public_key must be a raw P-256 point, base64url") from None
    return text


def pair(
    s: Session,
    code: str,
    auth_public_key: str,
    seal_public_key: str,
    *,
    name: str = "",
    now: datetime | None = None,
) -> Paired:
    """Exchange a pairing code for an enrolled bridge; PairingError if the code is no good."""
    now = now or utcnow()
    _check_auth_key(auth_public_key)
    _check_seal_key(seal_public_key)
    if control_character(name):
        raise InvalidRequest("name must have no control characters")
    if len(normalize_code(code)) != CODE_LENGTH:
        raise PairingError("this is not a pairing code", code="invalid_code")
    row = s.scalars(select(PairingCode).where(PairingCode.code_hash == hash_code(code))).first()
    if row is None:
        raise PairingError("unknown pairing code", code="invalid_code")
    if row.used_at is not None:
        raise PairingError("this pairing code was already used", code="used_code")
    if row.expires_at <= now:
        raise PairingError("this pairing code has expired", code="expired_code")
    bridge_id = "brg_" + secrets.token_urlsafe(15)
    # Claim the code atomically: of two concurrent pairings, one updates the row.
    claimed = s.execute(
        update(PairingCode)
        .where(PairingCode.id == row.id, PairingCode.used_at.is_(None))
        .values(used_at=now, bridge_id=bridge_id)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        s.rollback()
        raise PairingError("this pairing code was already used", code="used_code")
    replaced = s.scalars(
        select(BridgeDevice.id).where(
            BridgeDevice.terminal_id == row.terminal_id, BridgeDevice.revoked_at.is_(None)
        )
    ).all()
    if replaced:
        s.execute(update(BridgeDevice).where(BridgeDevice.id.in_(replaced)).values(revoked_at=now))
    device = BridgeDevice(
        id=bridge_id,
        terminal_id=row.terminal_id,
        name=name.strip()[:100],
        auth_public_key=auth_public_key,
        seal_public_key=seal_public_key,
        paired_at=now,
    )
    s.add(device)
    s.commit()
    return Paired(device, tuple(replaced))


# -- bridges -------------------------------------------------------------------------


def get_bridge(s: Session, bridge_id: str) -> BridgeDevice:
    """The bridge, or UnknownBridge."""
    device = s.get(BridgeDevice, bridge_id)
    if device is None:
        raise UnknownBridge(f"no bridge {bridge_id}")
    return device


def revoke(s: Session, bridge_id: str, *, now: datetime | None = None) -> BridgeDevice:
    """Revoke a bridge (idempotent); the caller cuts its live connection off."""
    device = get_bridge(s, bridge_id)
    if device.revoked_at is None:
        device.revoked_at = now or utcnow()
        s.commit()
    return device


def authenticate(
    s: Session, bridge_id: str, origin: str, nonce: bytes, signature: bytes
) -> BridgeDevice:
    """Check a bridge's answer to our challenge; BridgeAuthError if it does not hold."""
    device = s.get(BridgeDevice, bridge_id)
    # Unknown id and bad signature answer alike: nothing to learn by probing ids.
    if device is None:
        raise BridgeAuthError("authentication failed", code="unauthorized")
    key = ed25519.Ed25519PublicKey.from_public_bytes(unb64u(device.auth_public_key))
    try:
        key.verify(signature, auth_transcript(origin, bridge_id, nonce))
    except InvalidSignature:
        raise BridgeAuthError("authentication failed", code="unauthorized") from None
    if device.revoked_at is not None:
        raise BridgeAuthError("this bridge was revoked: pair it again", code="revoked")
    return device


def check_signed(
    s: Session, bridge_id: str, origin: str, nonce: bytes, signature: bytes
) -> BridgeDevice:
    """The bridge asking about itself (`ichimai-bridge status`): its device, revoked or
    not, if the signature over `wire.check_transcript` holds; else BridgeAuthError.

    The nonce is the bridge's own: no round trip, so a replayed request (through TLS,
    hard to get) learns again only this bridge's state. It answers nothing else.
    """
    device = s.get(BridgeDevice, bridge_id)
    if device is None:
        raise BridgeAuthError("authentication failed", code="unauthorized")
    key = ed25519.Ed25519PublicKey.from_public_bytes(unb64u(device.auth_public_key))
    try:
        key.verify(signature, check_transcript(origin, bridge_id, nonce))
    except InvalidSignature:
        raise BridgeAuthError("authentication failed", code="unauthorized") from None
    return device


def mark_connected(
    s: Session, bridge_ids: list[str], worker: str, *, now: datetime | None = None
) -> set[str]:
    """Record that `worker` holds these bridges' connections (one batch); refresh
    last-seen; return those among them revoked meanwhile (to be cut off)."""
    if not bridge_ids:
        return set()
    now = now or utcnow()
    revoked: set[str] = set()
    for start in range(0, len(bridge_ids), 500):  # bounded IN lists
        chunk = bridge_ids[start : start + 500]
        s.execute(
            update(BridgeDevice)
            .where(BridgeDevice.id.in_(chunk))
            .values(last_seen_at=now, connected_worker=worker)
        )
        revoked |= set(
            s.scalars(
                select(BridgeDevice.id).where(
                    BridgeDevice.id.in_(chunk), BridgeDevice.revoked_at.is_not(None)
                )
            )
        )
    s.commit()
    return revoked


def mark_disconnected(
    s: Session, bridge_ids: list[str], worker: str, *, now: datetime | None = None
) -> None:
    """Record disconnects (unless another worker holds a newer connection meanwhile)."""
    now = now or utcnow()
    for start in range(0, len(bridge_ids), 500):
        chunk = bridge_ids[start : start + 500]
        s.execute(
            update(BridgeDevice)
            .where(BridgeDevice.id.in_(chunk), BridgeDevice.connected_worker == worker)
            .values(connected_worker=None, last_seen_at=now)
        )
    s.commit()


def touch(
    s: Session, bridge_ids: list[str], worker: str, *, now: datetime | None = None
) -> set[str]:
    """Refresh last-seen of connected bridges; returns those among them now revoked."""
    return mark_connected(s, bridge_ids, worker, now=now)


def is_online(
    device: BridgeDevice,
    now: datetime,
    window: timedelta,
    alive: Container[str] | None = None,
) -> bool:
    """Connected to a worker that is alive, and seen within `window`.

    `alive` (the workers that answer now, `registry.workers_alive`) is what catches a
    worker that died: its rows keep saying "connected" until the window passes, but a
    dead worker answers nothing, on any bus, within a second.
    """
    return (
        device.revoked_at is None
        and device.connected_worker is not None
        and (alive is None or device.connected_worker in alive)
        and device.last_seen_at is not None
        and now - device.last_seen_at <= window
    )


def bridge_view(
    device: BridgeDevice,
    now: datetime,
    window: timedelta,
    alive: Container[str] | None = None,
) -> dict[str, object]:
    """A bridge as the admin API shows it."""
    return {
        "id": device.id,
        "terminal_id": device.terminal_id,
        "name": device.name,
        "paired_at": device.paired_at.isoformat(),
        "revoked_at": device.revoked_at.isoformat() if device.revoked_at else None,
        "last_seen_at": device.last_seen_at.isoformat() if device.last_seen_at else None,
        "online": is_online(device, now, window, alive),
        "seal_public_key": device.seal_public_key,
    }


def list_bridges(
    s: Session,
    *,
    terminal_id: int | None = None,
    limit: int = 500,
    after: str | None = None,
) -> list[BridgeDevice]:
    """Bridges by id (keyset pagination with `after`), optionally of one terminal."""
    query = select(BridgeDevice).order_by(BridgeDevice.id).limit(max(1, min(limit, 1000)))
    if terminal_id is not None:
        query = query.where(BridgeDevice.terminal_id == terminal_id)
    if after is not None:
        query = query.where(BridgeDevice.id > after)
    return list(s.scalars(query))


# -- home terminals ------------------------------------------------------------------

HOME_NAME = "自宅のカードリーダー"  # shown in the page header; the citizen's own reader
HOME_TOUCH_EVERY = timedelta(hours=1)  # last_used_at is coarse: one write an hour at most


def _owner_hash(owner_key: str) -> str:
    return hashlib.sha256(owner_key.encode()).hexdigest()


@dataclass(frozen=True)
class HomeTerminal:
    """A new home terminal, the owner key for the browser's session, its pairing code."""

    terminal: Terminal
    owner_key: str
    code: IssuedCode


def create_home_terminal(
    s: Session, *, now: datetime | None = None, ttl: timedelta = PAIRING_TTL
) -> HomeTerminal:
    """A citizen's own terminal (no provider) with a fresh owner key and pairing code.

    The owner key (256 random bits) and the pairing code are drawn independently of each
    other and of the terminal id: none of the three tells anything about another.
    """
    now = now or utcnow()
    owner_key = secrets.token_urlsafe(32)
    terminal = Terminal(
        provider_id=None,
        kind=TerminalKind.HOME,
        name=HOME_NAME,
        owner_key_hash=_owner_hash(owner_key),
        created_at=now,
        last_used_at=now,
    )
    s.add(terminal)
    s.flush()
    code = create_pairing_code(s, terminal.id, now=now, ttl=ttl)  # commits
    return HomeTerminal(terminal, owner_key, code)


def owner_key_matches(terminal: Terminal, owner_key: object) -> bool:
    """Whether `owner_key` (from the session) is the key of this home terminal."""
    if terminal.kind != TerminalKind.HOME or not terminal.owner_key_hash:
        return False
    if not isinstance(owner_key, str) or not owner_key:
        return False
    return hmac.compare_digest(_owner_hash(owner_key), terminal.owner_key_hash)


def has_active_bridge(s: Session, terminal_id: int) -> bool:
    """Whether the terminal has a paired, unrevoked bridge (one indexed lookup)."""
    found = s.scalars(
        select(BridgeDevice.id)
        .where(BridgeDevice.terminal_id == terminal_id, BridgeDevice.revoked_at.is_(None))
        .limit(1)
    ).first()
    return found is not None


def had_revoked_bridge(s: Session, terminal_id: int) -> bool:
    """Whether a bridge of the terminal was revoked (one indexed lookup)."""
    found = s.scalars(
        select(BridgeDevice.id)
        .where(BridgeDevice.terminal_id == terminal_id, BridgeDevice.revoked_at.is_not(None))
        .limit(1)
    ).first()
    return found is not None


def home_paired(s: Session, terminal_id: int) -> bool:
    """Whether the home terminal has an active bridge (one indexed lookup)."""
    return has_active_bridge(s, terminal_id)


def home_expired(
    s: Session,
    terminal: Terminal,
    *,
    idle: timedelta,
    now: datetime | None = None,
    pairing_ttl: timedelta = PAIRING_TTL,
) -> bool:
    """No use any more: never paired within the code's life, or unused for `idle`."""
    now = now or utcnow()
    last = terminal.last_used_at or terminal.created_at
    if now - last > idle:
        return True
    return now - terminal.created_at > pairing_ttl and not home_paired(s, terminal.id)


def touch_home(s: Session, terminal: Terminal, *, now: datetime | None = None) -> None:
    """Record that the home terminal was used (at most one write per HOME_TOUCH_EVERY)."""
    now = now or utcnow()
    if terminal.last_used_at is None or now - terminal.last_used_at >= HOME_TOUCH_EVERY:
        terminal.last_used_at = now
        s.commit()


@dataclass(frozen=True)
class HomeCleanup:
    """What `delete_stale_home_terminals` removed (bridge ids: to cut off if connected)."""

    terminals: int
    bridge_ids: tuple[str, ...]


def delete_stale_home_terminals(
    s: Session,
    *,
    idle: timedelta,
    now: datetime | None = None,
    pairing_ttl: timedelta = PAIRING_TTL,
    batch: int = 500,
) -> HomeCleanup:
    """Delete expired home terminals with their bridges and pairing codes (in batches).

    Idle ones by the (kind, last_used_at) index; never-paired ones among those older than
    the pairing code's life that have no active bridge.
    """
    now = now or utcnow()
    paired = exists().where(
        BridgeDevice.terminal_id == Terminal.id, BridgeDevice.revoked_at.is_(None)
    )
    stale = (
        select(Terminal.id)
        .where(
            Terminal.kind == TerminalKind.HOME,
            or_(
                Terminal.last_used_at < now - idle,
                Terminal.last_used_at.is_(None) & (Terminal.created_at < now - idle),
                (Terminal.created_at < now - pairing_ttl) & ~paired,
            ),
        )
        .order_by(Terminal.id)
        .limit(batch)
    )
    removed = 0
    bridge_ids: list[str] = []
    while ids := list(s.scalars(stale)):
        bridge_ids += s.scalars(
            select(BridgeDevice.id).where(
                BridgeDevice.terminal_id.in_(ids), BridgeDevice.revoked_at.is_(None)
            )
        )
        s.execute(delete(PairingCode).where(PairingCode.terminal_id.in_(ids)))
        s.execute(delete(BridgeDevice).where(BridgeDevice.terminal_id.in_(ids)))
        s.execute(delete(Terminal).where(Terminal.id.in_(ids)))
        s.commit()
        removed += len(ids)
    return HomeCleanup(removed, tuple(bridge_ids))
