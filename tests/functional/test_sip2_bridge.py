"""SIP2 through a real bridge: the platform's bus -> the worker holding the bridge's
WebSocket -> the bridge (BridgeThread) -> the demo library system on TCP or TLS.

UTF-8 and Shift_JIS, checksums on and off, TLS, the system dropping the connection (the
bridge logs in again), the system down (a clear code, no hang), and a capture of every
frame, bus message, log record and the database during verifications: no library
password is ever seen by the platform.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge import wire
from bridge.pairing import BridgeIdentity
from bridge.sip2_wire import Sip2EndSession, Sip2Patron, Sip2Status
from tests.fixtures.sip2 import NoReaders, TlsFiles, seal_patron_password, sealed_config
from webapp import library_demo
from webapp.library_demo import PATRONS, DemoLibrary
from webapp.terminals import sip2 as frames
from webapp.terminals.remote import BusTerminalLink, Sip2Failed
from webapp.terminals.testing import BridgeThread, LivePlatform

VALID, PAUL, BLOCKED, EXPIRED, LOST, JAPANESE = PATRONS


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[LivePlatform]:
    with LivePlatform(tmp_path) as live:
        yield live


@pytest.fixture
def identity(platform: LivePlatform, tmp_path: Path) -> BridgeIdentity:
    return platform.pair_bridge(tmp_path / "bridge-home", platform.terminal("Kiosk", "kiosk"))


@pytest.fixture
def bridge(platform: LivePlatform, identity: BridgeIdentity) -> Iterator[BridgeThread]:
    with BridgeThread(identity, NoReaders(), backoff_base=0.05, backoff_cap=0.2) as running:
        platform.wait_ready(identity.terminal_id)
        yield running
        running.session.sip2.close()


@pytest.fixture
def link(platform: LivePlatform) -> BusTerminalLink:
    return BusTerminalLink(platform.bus)


class Kiosk:
    """What the platform's kiosk flow does: configure once, then verify numbers."""

    def __init__(self, link: BusTerminalLink, identity: BridgeIdentity) -> None:
        self.link, self.identity = link, identity
        self.terminal = identity.terminal_id

    def configure(self, library: DemoLibrary, **options: Any) -> Sip2Status:
        config = sealed_config(
            self.identity.seal_key.public_key(),
            self.identity.bridge_id,
            port=library.port,
            **options,
        )
        return self.link.sip2_configure(self.terminal, config)

    def verify(self, number: str, password: str | None = None, frame: Any = None) -> Any:
        command_id = wire.new_id()
        sealed = None
        if password is not None:
            # The kiosk page seals the typed password to the bridge for this command.
            sealed = seal_patron_password(
                self.identity.seal_key.public_key(), self.identity.bridge_id, command_id, password
            )
        text = (frame or frames.patron_information)(number)
        return self.link.sip2_exchange(
            self.terminal, text, sealed=sealed, command_id=command_id, timeout=15
        )


@pytest.fixture
def kiosk(link: BusTerminalLink, identity: BridgeIdentity, bridge: BridgeThread) -> Kiosk:
    return Kiosk(link, identity)


def failure(call: Callable[[], Any]) -> str:
    with pytest.raises(Sip2Failed) as caught:
        call()
    return caught.value.wire_code


@pytest.mark.parametrize(
    ("charset", "checksums"), [("utf-8", False), ("shift_jis", True), ("utf-8", True)]
)
def test_verify_through_the_bridge(kiosk: Kiosk, charset: str, checksums: bool) -> None:
    with DemoLibrary(charset=charset, checksums=checksums, patron_status=False) as library:
        status = kiosk.configure(library, charset=charset, checksums=checksums, patron_status=False)
        assert status.online and status.library_name == library_demo.LIBRARY_NAME
        assert "23" not in status.supported and "63" in status.supported
        assert kiosk.verify(VALID.number, VALID.password) == Sip2Patron(True, True, ())
        assert kiosk.verify(VALID.number, "wrong").valid_password is False
        assert kiosk.verify(PAUL.number, PAUL.password).valid_password is True
        assert kiosk.verify(JAPANESE.number, JAPANESE.password).valid_password is True
        assert kiosk.verify(BLOCKED.number, BLOCKED.password).valid_patron is False
        assert kiosk.verify(EXPIRED.number).flag("charge_privileges_denied")
        assert kiosk.verify(LOST.number).flag("card_reported_lost")
        assert kiosk.verify(VALID.number, frame=frames.end_patron_session) == Sip2EndSession(True)
        assert failure(lambda: kiosk.verify(VALID.number, frame=frames.patron_status)) == (
            "sip2_refused"
        )
        checkout = "11YN20250101    12000020250101    120000AO|AA0000000011|ABbook|AC|"
        assert failure(lambda: kiosk.link.sip2_exchange(kiosk.terminal, checkout)) == (
            "sip2_refused"
        )
        assert set(library.commands()) <= {"93", "99", "63", "35"}
        assert library.commands()["93"] == 1


def test_tls(kiosk: Kiosk, tls_files: TlsFiles) -> None:
    with DemoLibrary(tls=(tls_files.cert, tls_files.key)) as library:
        assert failure(lambda: kiosk.configure(library, tls=True)) == "sip2_tls"
        assert kiosk.configure(library, tls=True, ca_pem=tls_files.ca_pem).online
        assert kiosk.verify(VALID.number, VALID.password).valid_password is True


def test_the_system_drops_the_connection(kiosk: Kiosk, bridge: BridgeThread) -> None:
    with DemoLibrary() as library:
        kiosk.configure(library)
        assert kiosk.verify(VALID.number, VALID.password).valid_password is True
        assert library.drop_connections() == 1
        time.sleep(0.05)
        assert kiosk.verify(VALID.number, VALID.password).valid_password is True
        assert library.commands()["93"] == 2
        connection = bridge.session.sip2.connection
        assert connection is not None and connection.logins == 2


def test_the_system_down(kiosk: Kiosk) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: refused
        port = closed.getsockname()[1]
        down = DemoLibrary(port=port)  # only for its port number; never started
        started = time.monotonic()
        assert failure(lambda: kiosk.configure(down)) == "sip2_unreachable"
        assert failure(lambda: kiosk.verify(VALID.number, VALID.password)) == "sip2_unreachable"
        assert time.monotonic() - started < 5
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        silent_port = silent.getsockname()[1]
        hung = DemoLibrary(port=silent_port)
        started = time.monotonic()
        assert failure(lambda: kiosk.configure(hung, reply_timeout=0.5)) == "sip2_timeout"
        assert time.monotonic() - started < 5


def test_not_configured_and_offline(
    kiosk: Kiosk, link: BusTerminalLink, platform: LivePlatform
) -> None:
    assert failure(lambda: kiosk.verify(VALID.number)) == "sip2_not_configured"
    nobody = platform.terminal("Kiosk without a bridge", "kiosk")
    assert failure(lambda: link.sip2_exchange(nobody, frames.sc_status())) == "bridge_offline"


def test_the_throttle_holds_against_the_platform(kiosk: Kiosk) -> None:
    with DemoLibrary() as library:
        kiosk.configure(library)
        for guess in ("a", "b", "c", "d", "e"):
            assert kiosk.verify(VALID.number, guess).valid_password is False
        asked = library.commands()["63"]
        assert failure(lambda: kiosk.verify(VALID.number, VALID.password)) == "sip2_throttled"
        assert library.commands()["63"] == asked


def test_the_platform_never_sees_a_library_password(
    kiosk: Kiosk,
    platform: LivePlatform,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    """Every wire frame (both ways), bus request and reply, log record and the database."""
    seen: list[str] = []
    encode, decode = wire.encode, wire.decode

    def encode_and_record(frame: Any) -> str:
        text = encode(frame)
        seen.append(text)
        return text

    def decode_and_record(text: str | bytes) -> Any:
        seen.append(text if isinstance(text, str) else text.decode("utf-8", "replace"))
        return decode(text)

    monkeypatch.setattr(wire, "encode", encode_and_record)
    monkeypatch.setattr(wire, "decode", decode_and_record)
    bus = platform.bus
    request = bus.request

    def request_and_record(channel: str, message: Any, timeout: float) -> Any:
        seen.append(json.dumps(message))
        reply = request(channel, message, timeout)
        seen.append(json.dumps(reply))
        return reply

    monkeypatch.setattr(bus, "request", request_and_record)
    caplog.set_level(logging.DEBUG)
    with DemoLibrary(charset="shift_jis", checksums=True) as library:
        kiosk.configure(library, charset="shift_jis", checksums=True)
        for patron in PATRONS:
            kiosk.verify(patron.number, patron.password)
        kiosk.verify(VALID.number, "wrong-guess-77")
        # The library system did get them (the check is not vacuous).
        assert VALID.password.encode("cp932") in library.raw()
        assert JAPANESE.password.encode("cp932") in library.raw()
        assert library_demo.LOGIN_PASSWORD.encode() in library.raw()
    assert any('"sip2"' in text for text in seen) and any("sip2_result" in t for t in seen)
    captured = "\n".join(seen) + "\n" + caplog.text
    database = b"".join(p.read_bytes() for p in tmp_path.glob("platform.db*"))
    secrets = [p.password for p in PATRONS] + [
        "wrong-guess-77",
        library_demo.LOGIN_PASSWORD,
        library_demo.TERMINAL_PASSWORD,
    ]
    for secret in secrets:
        for form in (secret, json.dumps(secret)[1:-1]):
            assert form not in captured, secret
            for encoding in ("utf-8", "cp932"):
                assert form.encode(encoding) not in database, secret
    # Nor anything personal from the replies, on the wire or in the database.
    for leak in [p.name for p in PATRONS] + ["patron@example.jp", "JPY"]:
        assert leak not in captured and json.dumps(leak)[1:-1] not in captured
        for encoding in ("utf-8", "cp932"):
            assert leak.encode(encoding) not in database, leak
