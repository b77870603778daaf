"""sip2_verify_roundtrip, its baseline parts: a patron check against the library system.

- `sip2_roundtrip_bare`: a bare 63 Patron Information round trip (with AD) to the demo
  library system (webapp/library_demo.py, pysip2's server on 127.0.0.1), from a plain
  socket with pysip2's codec, logged in once: what the library system itself costs.
- `sip2_verify_roundtrip_bridge`: the same check as the platform makes it: a sealed
  patron password (sealed per command, as the kiosk page does), `sip2_exchange` on the
  platform's bus -> the worker holding the bridge's WebSocket -> the bridge (firewall,
  throttle, unsealing, its own connection) -> the same system, and the projection back.
  Baseline: the bare round trip.
- `sip2_verify_roundtrip`: the kiosk's request to its verdict: `POST /flow/do/link_verify`
  of a citizen signed in at a kiosk (the Flask app in process: its session, the flow
  store, the purpose), the sealed password through the bus, the library's connector
  bridge, the same system, and the verified link written. The page's own work (sealing,
  `link_prepare` before it) is outside the timer; the link is undone between runs,
  untimed. Baseline: the bare round trip; what the platform adds is value - baseline.

Medians of RUNS (200) after a warm-up, in milliseconds.

    python -m bench.bench_sip2 [RUNS]
"""

from __future__ import annotations

import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pysip2 import (
    LoginRequest,
    PatronInformationRequest,
    PatronInformationResponse,
    decode_message,
    encode_message,
)

from bench.run import emit
from bridge import wire
from bridge.seal import SecretContext, seal_secret
from webapp import library_demo
from webapp.library_demo import PATRONS, DemoLibrary
from webapp.terminals import sip2 as frames
from webapp.terminals.remote import BusTerminalLink
from webapp.terminals.testing import BridgeThread, LivePlatform

RUNS = 200
WARMUP = 20
PATRON = PATRONS[0]


def _read(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\r"):
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def bare(port: int, runs: int) -> list[float]:
    """63 round trips on one logged-in socket, as a SIP2 client would make them."""
    times = []
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        login = LoginRequest(
            uid_algorithm="0",
            pwd_algorithm="0",  # noqa: S106 - not a password
            login_user_id=library_demo.LOGIN_USER,
            login_password=library_demo.LOGIN_PASSWORD,
        )
        sock.sendall(encode_message(login, encoding="utf-8"))
        _read(sock)
        for i in range(WARMUP + runs):
            started = time.perf_counter()
            request = PatronInformationRequest(
                language="000",
                transaction_date=frames.transaction_date(),
                summary=" " * 10,
                institution_id=library_demo.INSTITUTION,
                patron_identifier=PATRON.number,
                terminal_password=library_demo.TERMINAL_PASSWORD,
                patron_password=PATRON.password,
            )
            sock.sendall(encode_message(request, encoding="utf-8"))
            reply = decode_message(_read(sock), encoding="utf-8").message
            elapsed = time.perf_counter() - started
            assert isinstance(reply, PatronInformationResponse)
            assert reply.valid_patron_password == "Y"  # noqa: S105 - a flag
            if i >= WARMUP:
                times.append(elapsed * 1000)
    return times


class _NoReaders:
    def start(self, session: Any) -> None:
        """No card reader."""

    def stop(self) -> None:
        """No card reader."""


def through_the_bridge(port: int, runs: int) -> list[float]:
    """The platform's sip2_exchange with a freshly sealed password, to the same system."""
    times = []
    with tempfile.TemporaryDirectory() as tmp, LivePlatform(Path(tmp)) as platform:
        identity = platform.pair_bridge(Path(tmp) / "bridge", platform.terminal("Kiosk", "kiosk"))
        with BridgeThread(identity, _NoReaders()) as bridge:
            platform.wait_ready(identity.terminal_id)
            bridge.session.sip2.throttle.limit = 10**9  # right passwords only; no limit hit
            public, bridge_id = identity.seal_key.public_key(), identity.bridge_id
            target = f"tcp://127.0.0.1:{port}"

            def seal(secret: str, purpose: str, binding: str) -> dict[str, Any]:
                return seal_secret(public, secret, SecretContext(bridge_id, purpose, binding))

            from bridge.sip2_wire import Sip2Config

            config = Sip2Config(
                "127.0.0.1",
                port,
                library_demo.LOGIN_USER,
                seal(library_demo.LOGIN_PASSWORD, "sip2-login", target),
                institution_id=library_demo.INSTITUTION,
                terminal_password=seal(library_demo.TERMINAL_PASSWORD, "sip2-terminal", target),
            )
            link = BusTerminalLink(platform.bus)
            link.sip2_configure(identity.terminal_id, config)
            for i in range(WARMUP + runs):
                command_id = wire.new_id()
                sealed = seal(PATRON.password, "sip2-patron", command_id)  # the page's part
                started = time.perf_counter()
                answer = link.sip2_exchange(
                    identity.terminal_id,
                    frames.patron_information(PATRON.number),
                    sealed=sealed,
                    command_id=command_id,
                )
                elapsed = time.perf_counter() - started
                assert getattr(answer, "valid_password", None) is True
                if i >= WARMUP:
                    times.append(elapsed * 1000)
            bridge.session.sip2.close()
    return times


def through_the_kiosk(library: DemoLibrary, runs: int) -> list[float]:
    """A kiosk citizen's link_verify requests, each a verified link, to the same system."""
    from bridge.readers import SimReader
    from bridge.seal import SealContext, seal_pin
    from bridge.vcard.cardfile import CardFile, card_data_from_issued
    from bridge.vcard.jlis import DemoJLIS
    from webapp import db
    from webapp.demo_data import ensure_providers
    from webapp.sip2.demo import connect_demo_library
    from webapp.terminals import services as terminal_services
    from webapp.terminals.models import TerminalKind

    times = []
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        jlis = DemoJLIS.init(tmp / "jlis")
        card = tmp / "card.json"
        data = card_data_from_issued(jlis.issue(), pin="1234", sign_password="ABC123")  # noqa: S106
        CardFile.create(card, data)
        extra = {
            "DEMO_MODE": True,
            "DEMO_JLIS_DIR": str(jlis.directory),
            "JPKI_CRL_SOURCES": [str(jlis.directory / "auth.crl")],
            "CARD_KEY_SECRET": "bench sip2 verify: 32+ bytes of secret key",
            # Right passwords only: no limit is ever near, none may skew the figure.
            "LIBRARY_PASSWORD_LIMIT_PER_NUMBER": "1000000 per minute",
            "LIBRARY_PASSWORD_LIMIT_PER_TERMINAL": "1000000 per minute",
        }
        with LivePlatform(tmp, extra=extra) as platform:
            with platform.app.app_context(), db.new_session() as s:
                library_id = ensure_providers(s).library.id
                kiosk, connector = (
                    terminal_services.create_terminal(s, library_id, kind, kind).id
                    for kind in (TerminalKind.KIOSK, TerminalKind.COUNTER)
                )
            kiosk_identity = platform.pair_bridge(tmp / "kiosk", kiosk)
            connector_identity = platform.pair_bridge(tmp / "connector", connector)
            with (
                BridgeThread(connector_identity, _NoReaders()) as connector_bridge,
                BridgeThread(kiosk_identity, SimReader(card)),
            ):
                platform.wait_ready(kiosk)
                platform.wait_ready(connector)
                connector_bridge.session.sip2.throttle.limit = 10**9
                with platform.app.app_context(), db.new_session() as s:
                    provider = ensure_providers(s).library
                    connect_demo_library(
                        s, provider, connector, host=library.host, port=library.port
                    )
                    terms = provider.terms_version
                client = platform.app.test_client()
                with client.session_transaction() as sess:
                    sess["terminal_id"], sess["terminal_kind"] = kiosk, TerminalKind.KIOSK
                prompt = client.post("/flow/begin", json={"purpose": "kiosk"}).get_json()["pin"]
                sealed_pin = seal_pin(
                    prompt["seal_public_key"],
                    "1234",
                    SealContext(prompt["bridge_id"], prompt["command_id"]),
                )
                signed_in = client.post(
                    "/flow/pin/complete",
                    json={"sealed": sealed_pin, "command_id": prompt["command_id"]},
                )
                assert signed_in.status_code == 200, signed_in.get_json()
                body = {
                    "provider_id": library_id,
                    "customer_number": PATRON.number,
                    "accepted": True,
                    "terms_version": terms,
                }
                for i in range(WARMUP + runs):
                    seal = client.post("/flow/do/link_prepare", json=body).get_json()["result"]
                    seal = seal["seal"]
                    sealed = seal_secret(
                        seal["seal_key"],
                        PATRON.password,
                        SecretContext(seal["bridge_id"], "sip2-patron", seal["command_id"]),
                    )
                    started = time.perf_counter()
                    verdict = client.post("/flow/do/link_verify", json={"sealed": sealed})
                    elapsed = time.perf_counter() - started
                    assert verdict.status_code == 200, verdict.get_json()
                    unlinked = client.post("/flow/do/unlink", json={"provider_id": library_id})
                    assert unlinked.status_code == 200, unlinked.get_json()
                    if i >= WARMUP:
                        times.append(elapsed * 1000)
                connector_bridge.session.sip2.close()
    return times


def main() -> None:
    """Measure the three and print one JSON line each."""
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else RUNS
    with DemoLibrary() as library:
        bare_ms = statistics.median(bare(library.port, runs))
        bridge_ms = statistics.median(through_the_bridge(library.port, runs))
        kiosk_ms = statistics.median(through_the_kiosk(library, runs))
    emit("sip2_roundtrip_bare", bare_ms, "ms", bare_ms)
    emit("sip2_verify_roundtrip_bridge", bridge_ms, "ms", bare_ms)
    emit("sip2_verify_roundtrip", kiosk_ms, "ms", bare_ms)


if __name__ == "__main__":
    main()
