"""Home terminals (kind `home`): no provider, owner key hash, expiry, clean-up."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bridge import seal
from bridge.pairing import auth_public_b64u
from webapp import db
from webapp.providers.models import Provider
from webapp.terminals import services
from webapp.terminals.errors import InvalidRequest
from webapp.terminals.models import BridgeDevice, PairingCode, Terminal, TerminalKind, utcnow
from webapp.terminals.testing import build_app

IDLE = timedelta(days=30)


@pytest.fixture
def s(tmp_path: Path) -> Iterator[Session]:
    app = build_app(f"sqlite:///{tmp_path / 't.db'}")
    with app.app_context(), db.new_session() as session:
        yield session
    app.extensions["bus"].close()


def _pair(s: Session, code: str, **kw: Any) -> services.Paired:
    auth = auth_public_b64u(ed25519.Ed25519PrivateKey.generate())
    sealing = seal.public_key_b64u(seal.generate_device_key().public_key())
    return services.pair(s, code, auth, sealing, **kw)


def test_a_home_terminal_has_no_provider_and_only_a_key_hash(s: Session) -> None:
    made = services.create_home_terminal(s)
    terminal = made.terminal
    assert terminal.kind == TerminalKind.HOME and terminal.provider_id is None
    assert terminal.owner_key_hash and made.owner_key not in terminal.owner_key_hash
    assert services.owner_key_matches(terminal, made.owner_key)
    for wrong in (None, "", "x", made.owner_key + "x", 42):
        assert not services.owner_key_matches(terminal, wrong)
    assert made.code.terminal_id == terminal.id
    assert not services.home_paired(s, terminal.id)
    assert _pair(s, made.code.code).bridge.terminal_id == terminal.id
    assert services.home_paired(s, terminal.id)


def test_admins_cannot_make_one_and_the_database_ties_kind_to_provider(s: Session) -> None:
    provider = Provider(code="JP-1", kind="library", name_ja="図書館")
    s.add(provider)
    s.commit()
    with pytest.raises(InvalidRequest):
        services.create_terminal(s, provider.id, TerminalKind.HOME, "home")
    for kind, provider_id in ((TerminalKind.HOME, provider.id), (TerminalKind.KIOSK, None)):
        s.add(Terminal(kind=kind, provider_id=provider_id, name="x"))
        with pytest.raises(IntegrityError):
            s.commit()
        s.rollback()


def test_expiry_unpaired_after_the_code_and_idle_after_n_days(s: Session) -> None:
    now = utcnow()
    unpaired = services.create_home_terminal(s, now=now).terminal
    paired = services.create_home_terminal(s, now=now)
    _pair(s, paired.code.code, now=now)
    ttl = services.PAIRING_TTL
    assert not services.home_expired(s, unpaired, idle=IDLE, now=now + ttl)
    assert services.home_expired(s, unpaired, idle=IDLE, now=now + ttl + timedelta(seconds=1))
    assert not services.home_expired(s, paired.terminal, idle=IDLE, now=now + IDLE)
    later = now + IDLE + timedelta(seconds=1)
    assert services.home_expired(s, paired.terminal, idle=IDLE, now=later)
    services.touch_home(s, paired.terminal, now=now + timedelta(days=1))
    assert not services.home_expired(s, paired.terminal, idle=IDLE, now=later)
    # Touches are coarse: within an hour, nothing is written.
    services.touch_home(s, paired.terminal, now=now + timedelta(days=1, minutes=30))
    assert paired.terminal.last_used_at == now + timedelta(days=1)


def test_cleanup_deletes_expired_ones_with_their_bridges_and_codes(s: Session) -> None:
    now = utcnow()
    unpaired = services.create_home_terminal(s, now=now).terminal.id
    idle = services.create_home_terminal(s, now=now)
    idle_bridge = _pair(s, idle.code.code, now=now).bridge.id
    fresh = services.create_home_terminal(s, now=now)
    _pair(s, fresh.code.code, now=now)
    services.touch_home(s, fresh.terminal, now=now + IDLE)
    provider = Provider(code="JP-2", kind="library", name_ja="図書館")
    s.add(provider)
    s.commit()
    kiosk = services.create_terminal(s, provider.id, TerminalKind.KIOSK, "kiosk").id

    soon = services.delete_stale_home_terminals(s, idle=IDLE, now=now + timedelta(minutes=5))
    assert soon == services.HomeCleanup(0, ())
    done = services.delete_stale_home_terminals(
        s, idle=IDLE, now=now + IDLE + timedelta(hours=1), batch=1
    )
    assert done == services.HomeCleanup(2, (idle_bridge,))
    left = set(s.scalars(select(Terminal.id)))
    assert left == {fresh.terminal.id, kiosk}
    assert unpaired not in left
    assert set(s.scalars(select(BridgeDevice.terminal_id))) == {fresh.terminal.id}
    assert set(s.scalars(select(PairingCode.terminal_id))) == {fresh.terminal.id}


@pytest.mark.parametrize("role", ["platform_admin", "points_officer", "counter_staff"])
def test_no_staff_member_may_open_a_home_terminal(
    s: Session, monkeypatch: pytest.MonkeyPatch, role: str
) -> None:
    """Not even a platform admin: a home terminal has no provider, and a staff member
    without one must not match it by None == None."""
    from types import SimpleNamespace

    from webapp.cardflow import binding

    home = services.create_home_terminal(s).terminal
    user = SimpleNamespace(role=role, provider_id=None, merchant_id=None, active=True)
    monkeypatch.setattr(binding, "current_staff", lambda: user)
    assert binding.staff_may_use(home) is False
    kiosk_like = SimpleNamespace(provider_id=None, kind=TerminalKind.KIOSK, merchant_id=None)
    assert binding.staff_may_use(kiosk_like) is False  # type: ignore[arg-type]
