"""The bridge's SIP2 commands through BridgeSession, against the demo library system (TCP)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from bridge import wire
from bridge.seal import generate_device_key
from bridge.session import BridgeSession
from bridge.sip2.throttle import PasswordThrottle
from bridge.sip2_wire import PATRON_FLAGS, Sip2EndSession, Sip2Patron, Sip2Status
from tests.fixtures.sip2 import seal_patron_password, sealed_config
from webapp.library_demo import PATRONS, DemoLibrary
from webapp.terminals import sip2 as frames

BRIDGE = "bridge-sip2-unit"
VALID, _, BLOCKED, EXPIRED, LOST, JAPANESE = PATRONS


@pytest.fixture
def key() -> Any:
    return generate_device_key()


@pytest.fixture
def session(key: Any) -> Iterator[BridgeSession]:
    s = BridgeSession(BRIDGE, key)
    yield s
    s.sip2.close()


def configure(session: BridgeSession, key: Any, library: DemoLibrary, **options: Any) -> Any:
    config = sealed_config(key.public_key(), BRIDGE, port=library.port, **options)
    return session.handle(wire.Sip2ConfigureCommand(config))


def ask(
    session: BridgeSession, key: Any, frame: str, password: str | None = None
) -> wire.Sip2Result | wire.Error:
    command_id = wire.new_id()
    sealed = None
    if password is not None:
        sealed = seal_patron_password(key.public_key(), BRIDGE, command_id, password)
    answer = session.handle(wire.Sip2Command(frame, sealed=sealed, id=command_id))
    assert isinstance(answer, wire.Sip2Result | wire.Error)
    assert answer.id == command_id
    return answer


def patron(answer: Any) -> Sip2Patron:
    assert isinstance(answer, wire.Sip2Result), answer
    assert isinstance(answer.projection, Sip2Patron)
    return answer.projection


def test_not_configured(session: BridgeSession, key: Any) -> None:
    answer = ask(session, key, frames.sc_status())
    assert isinstance(answer, wire.Error) and answer.code == "sip2_not_configured"


@pytest.mark.parametrize(
    ("charset", "checksums"),
    [("utf-8", False), ("utf-8", True), ("shift_jis", False), ("shift_jis", True), ("cp850", True)],
)
def test_configure_and_verify(
    session: BridgeSession, key: Any, charset: str, checksums: bool
) -> None:
    with DemoLibrary(charset=charset, checksums=checksums) as library:
        answer = configure(session, key, library, charset=charset, checksums=checksums)
        assert isinstance(answer, wire.Sip2Result), answer
        status = answer.projection
        assert isinstance(status, Sip2Status) and status.online
        assert status.institution_id == "JP-1000001" and status.protocol_version == "2.00"
        assert {"63", "23", "35", "11", "09"} <= set(status.supported)
        assert patron(
            ask(session, key, frames.patron_information(VALID.number), VALID.password)
        ) == (Sip2Patron(True, True, ()))
        wrong = patron(ask(session, key, frames.patron_information(VALID.number), "nope"))
        assert wrong.valid_password is False
        assert patron(ask(session, key, frames.patron_information(BLOCKED.number))) == Sip2Patron(
            False, None, ()
        )
        expired = patron(ask(session, key, frames.patron_status(EXPIRED.number)))
        assert expired.flags == PATRON_FLAGS[:4] and expired.flag("charge_privileges_denied")
        lost = patron(ask(session, key, frames.patron_information(LOST.number)))
        assert lost.flags == ("charge_privileges_denied", "card_reported_lost")
        # 佐藤 ポール: "ポ" carries the byte of "|" in Shift_JIS, and reads fine.
        assert patron(ask(session, key, frames.patron_information(PATRONS[1].number))).valid_patron
        end = ask(session, key, frames.end_patron_session(VALID.number))
        assert isinstance(end, wire.Sip2Result) and end.projection == Sip2EndSession(True)
        japanese = ask(session, key, frames.patron_information(JAPANESE.number), JAPANESE.password)
        if charset == "cp850":
            assert isinstance(japanese, wire.Error) and japanese.code == "sip2_charset"
        else:
            assert patron(japanese).valid_password is True
        assert set(library.commands()) <= {"93", "99", "63", "23", "35"}
        assert library.logins == [("ichimai-bridge", True)]


def test_a_shift_jis_password_that_would_be_cut_is_refused(
    session: BridgeSession, key: Any
) -> None:
    with DemoLibrary(charset="shift_jis") as library:
        configure(session, key, library, charset="shift_jis")
        before = library.commands()["63"]
        answer = ask(session, key, frames.patron_information(VALID.number), "ポチ")
        assert isinstance(answer, wire.Error) and answer.code == "sip2_charset"
        assert library.commands()["63"] == before


def test_the_projection_carries_nothing_personal(
    session: BridgeSession, key: Any, demo_library: DemoLibrary
) -> None:
    configure(session, key, demo_library)
    answer = ask(session, key, frames.patron_information(VALID.number), VALID.password)
    text = wire.encode(answer)  # type: ignore[arg-type]
    for leak in (VALID.name, "山田", "JPY", "300", "1000", "patron@example.jp", "012-345", "本町"):
        assert leak not in text
    assert VALID.number not in text and VALID.password not in text


def test_wrong_login_password(session: BridgeSession, key: Any, demo_library: DemoLibrary) -> None:
    answer = configure(session, key, demo_library, login_password="wrong")
    assert isinstance(answer, wire.Error) and answer.code == "sip2_login_refused"
    assert demo_library.logins == [("ichimai-bridge", False)]
    # The settings are kept; the next exchange tries (and fails) again.
    again = ask(session, key, frames.sc_status())
    assert isinstance(again, wire.Error) and again.code == "sip2_login_refused"


def test_a_login_envelope_for_another_target_does_not_open(
    session: BridgeSession, key: Any, demo_library: DemoLibrary
) -> None:
    config = sealed_config(key.public_key(), BRIDGE, port=demo_library.port)
    moved = type(config)(**{**_fields(config), "port": demo_library.port + 1})
    answer = session.handle(wire.Sip2ConfigureCommand(moved))
    assert isinstance(answer, wire.Error) and answer.code == "sip2_seal"
    other = sealed_config(key.public_key(), "another-bridge", port=demo_library.port)
    answer = session.handle(wire.Sip2ConfigureCommand(other))
    assert isinstance(answer, wire.Error) and answer.code == "sip2_seal"
    assert not demo_library.received


def _fields(config: Any) -> dict[str, Any]:
    return {name: getattr(config, name) for name in config.__slots__}


def test_a_patron_password_sealed_for_another_command_does_not_open(
    session: BridgeSession, key: Any, demo_library: DemoLibrary
) -> None:
    configure(session, key, demo_library)
    demo_library.clear()
    sealed = seal_patron_password(key.public_key(), BRIDGE, "cmd-other", VALID.password)
    frame = frames.patron_information(VALID.number)
    answer = session.handle(wire.Sip2Command(frame, sealed=sealed, id="cmd-this"))
    assert isinstance(answer, wire.Error) and answer.code == "sip2_seal"
    # A login envelope is not a patron password either.
    login = sealed_config(key.public_key(), BRIDGE, port=demo_library.port).login_password
    answer = session.handle(wire.Sip2Command(frame, sealed=login, id="cmd-login"))
    assert isinstance(answer, wire.Error) and answer.code == "sip2_seal"
    assert not demo_library.received


@pytest.mark.parametrize(
    "frame",
    [
        "9300CNichimai-bridge|COx|",
        "11YN20250101    12000020250101    120000AOJP-1000001|AA0000000011|ABbook|AC|",
        "6300020250101    120000Y         AO|AA0000000011|",
        "6300020250101    120000          AO|AA0000000011|ADsecret|",
        "6300020250101    120000          AO|AA0000000011|ACterm|",
        "6300020250101    120000          AOOTHER|AA0000000011|",
        "6300020250101    120000          AO|AA0000000011|AY1AZF9C6",
        "not sip2",
    ],
    ids=["login", "checkout", "summary", "AD", "AC", "AO", "checksum", "junk"],
)
def test_refused_before_anything_is_sent(
    session: BridgeSession, key: Any, demo_library: DemoLibrary, frame: str
) -> None:
    configure(session, key, demo_library)
    demo_library.clear()
    answer = ask(session, key, frame)
    assert isinstance(answer, wire.Error) and answer.code == "sip2_refused"
    assert not demo_library.received


def test_no_23_when_the_system_has_none(session: BridgeSession, key: Any) -> None:
    with DemoLibrary(patron_status=False) as library:
        configure(session, key, library, patron_status=False)
        answer = ask(session, key, frames.patron_status(VALID.number))
        assert isinstance(answer, wire.Error) and answer.code == "sip2_refused"
        assert "23" not in library.commands()


def test_throttle(key: Any, demo_library: DemoLibrary) -> None:
    now = [1000.0]
    session = BridgeSession(BRIDGE, key)
    session.sip2.throttle = PasswordThrottle(clock=lambda: now[0])
    configure(session, key, demo_library)
    frame = frames.patron_information(VALID.number)
    for _ in range(5):
        assert patron(ask(session, key, frame, "guess")).valid_password is False
    sent = demo_library.commands()["63"]
    for password in ("guess", VALID.password):
        answer = ask(session, key, frame, password)
        assert isinstance(answer, wire.Error) and answer.code == "sip2_throttled"
    assert demo_library.commands()["63"] == sent  # not asked
    # Without a password the patron can still be looked up; other patrons are unaffected.
    assert patron(ask(session, key, frame)).valid_patron is True
    other = frames.patron_information(LOST.number)
    assert patron(ask(session, key, other, LOST.password)).valid_password is True
    now[0] += 15 * 60 + 1
    assert patron(ask(session, key, frame, VALID.password)).valid_password is True
    session.sip2.close()


def test_the_password_is_never_logged(
    session: BridgeSession, key: Any, demo_library: DemoLibrary, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    configure(session, key, demo_library)
    ask(session, key, frames.patron_information(VALID.number), VALID.password)
    ask(session, key, "6300020250101    120000          AO|AA0000000011|ADleak-me|")
    text = caplog.text
    for secret in (VALID.password, "leak-me", "demo-sip2-login", "demo-terminal", VALID.number):
        assert secret not in text
