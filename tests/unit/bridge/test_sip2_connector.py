"""The SIP2 connection: login, drops and re-login, checksums and resends, timeouts, TLS.

Against the demo library system, and against scripted misbehaving systems (a socket
server whose replies a test writes byte by byte).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pysip2 import (
    LoginResponse,
    PatronInformationRequest,
    PatronInformationResponse,
    encode_message,
)

from bridge.sip2 import Sip2Error
from bridge.sip2.connector import Sip2Connection
from bridge.sip2_wire import Sip2Config
from tests.fixtures.sip2 import TlsFiles
from webapp.library_demo import LOGIN_PASSWORD, LOGIN_USER, PATRONS, TERMINAL_PASSWORD, DemoLibrary

PATRON = PATRONS[0]


def config(port: int, **options: Any) -> Sip2Config:
    return Sip2Config(
        options.pop("host", "127.0.0.1"),
        port,
        LOGIN_USER,
        {},
        institution_id="JP-1000001",
        **options,
    )


def connection(port: int, *, password: str = LOGIN_PASSWORD, **options: Any) -> Sip2Connection:
    return Sip2Connection(
        config(port, **options), login_password=password, terminal_password=TERMINAL_PASSWORD
    )


def request(patron: str = PATRON.number, password: str | None = PATRON.password) -> Any:
    return PatronInformationRequest(
        language="000",
        transaction_date="20250101    120000",
        summary=" " * 10,
        institution_id="JP-1000001",
        patron_identifier=patron,
        terminal_password=TERMINAL_PASSWORD,
        patron_password=password,
    )


def code_of(call: Callable[[], Any]) -> str:
    with pytest.raises(Sip2Error) as caught:
        call()
    return caught.value.code.value


def test_login_then_exchanges_on_one_connection(demo_library: DemoLibrary) -> None:
    conn = connection(demo_library.port)
    try:
        for _ in range(3):
            reply = conn.exchange(request())
            assert (
                isinstance(reply, PatronInformationResponse) and reply.valid_patron_password == "Y"
            )
        assert conn.logins == 1 and demo_library.commands() == {"93": 1, "99": 1, "63": 3}
    finally:
        conn.close()


def test_a_dropped_connection_is_made_again_and_the_exchange_retried(
    demo_library: DemoLibrary,
) -> None:
    conn = connection(demo_library.port)
    try:
        conn.exchange(request())
        assert demo_library.drop_connections() == 1
        time.sleep(0.05)
        reply = conn.exchange(request())
        assert isinstance(reply, PatronInformationResponse)
        assert conn.logins == 2 and demo_library.commands()["93"] == 2
    finally:
        conn.close()


def test_the_system_down(tmp_path: Any) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: refused at once
        started = time.monotonic()
        assert code_of(lambda: connection(port).open()) == "sip2_unreachable"
        assert time.monotonic() - started < 2


class Scripted:
    """A system that answers each frame it receives with whatever `answer` returns."""

    def __init__(self, answer: Callable[[bytes], bytes | None]) -> None:
        self.answer = answer
        self.frames: list[bytes] = []
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.clients: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            self.clients.append(client)
            threading.Thread(target=self._client, args=(client,), daemon=True).start()

    def _client(self, client: socket.socket) -> None:
        buffer = b""
        with client:
            while True:
                try:
                    data = client.recv(4096)
                except OSError:
                    return
                if not data:
                    return
                buffer += data
                while b"\r" in buffer:
                    frame, buffer = buffer.split(b"\r", 1)
                    self.frames.append(frame + b"\r")
                    out = self.answer(frame + b"\r")
                    if out:
                        client.sendall(out)

    def close(self) -> None:
        self.server.close()
        for client in self.clients:
            client.close()


@pytest.fixture
def scripted() -> Iterator[Callable[[Callable[[bytes], bytes | None]], Scripted]]:
    made: list[Scripted] = []

    def make(answer: Callable[[bytes], bytes | None]) -> Scripted:
        made.append(Scripted(answer))
        return made[-1]

    yield make
    for s in made:
        s.close()


def test_a_silent_system_times_out(scripted: Any) -> None:
    system = scripted(lambda frame: None)
    conn = connection(system.port, reply_timeout=0.3)
    started = time.monotonic()
    assert code_of(conn.open) == "sip2_timeout"
    assert time.monotonic() - started < 2


def test_login_refused(demo_library: DemoLibrary) -> None:
    assert code_of(connection(demo_library.port, password="wrong").open) == "sip2_login_refused"


def test_a_system_that_hangs_up_on_the_login(scripted: Any) -> None:
    system = scripted(lambda frame: None)
    system.answer = lambda frame: system.clients[-1].close()
    assert code_of(connection(system.port).open) in ("sip2_login_refused", "sip2_unreachable")


def _reply(message: Any, sequence: int | None) -> bytes:
    return encode_message(message, sequence_number=sequence, checksum=sequence is not None)


def _ok_system(corrupt_first: int = 0) -> Callable[[bytes], bytes | None]:
    """A checksumming system answering 93 and 99, corrupting its first replies."""
    from pysip2 import ACSStatusResponse

    state = {"left": corrupt_first, "last": b""}

    def answer(frame: bytes) -> bytes | None:
        if frame.startswith(b"97"):
            return corrupt(state["last"])  # type: ignore[arg-type]
        sequence = int(frame[-8:-7])
        if frame.startswith(b"93"):
            out = _reply(LoginResponse(ok="1"), sequence)
        else:
            out = _reply(
                ACSStatusResponse(
                    online_status="Y",
                    checkin_ok="N",
                    checkout_ok="N",
                    acs_renewal_policy="N",
                    status_update_ok="N",
                    offline_ok="N",
                    timeout_period="030",
                    retries_allowed="003",
                    date_time_sync="20250101    120000",
                    protocol_version="2.00",
                    institution_id="JP-1000001",
                    supported_messages="N" * 7 + "Y" + "N" * 8,
                ),
                sequence,
            )
        state["last"] = out
        return corrupt(out)

    def corrupt(out: bytes) -> bytes:
        if state["left"]:
            state["left"] -= 1  # type: ignore[operator]
            return out[:-2] + (b"0" if out[-2:-1] != b"0" else b"1") + b"\r"
        return out

    return answer


def test_a_garbled_reply_is_asked_for_again(scripted: Any) -> None:
    system = scripted(_ok_system(corrupt_first=1))
    conn = connection(system.port, checksums=True)
    try:
        assert conn.open().supported == ("63",)
        assert [f[:2] for f in system.frames] == [b"93", b"97", b"99"]
    finally:
        conn.close()


def test_replies_that_keep_failing_their_checksum(scripted: Any) -> None:
    system = scripted(_ok_system(corrupt_first=5))
    assert code_of(connection(system.port, checksums=True).open) == "sip2_checksum"
    assert [f[:2] for f in system.frames] == [b"93", b"97"]


def test_96_gets_one_resend() -> None:
    # The demo system requires checksums; a bridge set without them gets 96, resends once.
    with DemoLibrary(checksums=True) as library:
        assert code_of(connection(library.port, checksums=False).open) == "sip2_checksum"
        assert library.commands() == {"93": 2}
        conn = connection(library.port, checksums=True)
        try:
            conn.open()
            for _ in range(12):  # the sequence number wraps around 9
                assert conn.exchange(request()).valid_patron == "Y"  # type: ignore[attr-defined]
        finally:
            conn.close()


def test_a_reply_of_the_wrong_type(scripted: Any) -> None:
    system = scripted(lambda frame: _reply(LoginResponse(ok="1"), None))
    conn = connection(system.port)
    assert code_of(conn.open) == "sip2_bad_reply"


def test_a_reply_without_its_sequence_when_checksums_are_on(scripted: Any) -> None:
    system = scripted(lambda frame: _reply(LoginResponse(ok="1"), None))
    assert code_of(connection(system.port, checksums=True).open) == "sip2_checksum"


def test_a_malformed_reply(scripted: Any) -> None:
    system = scripted(lambda frame: b"94\xff\xfe garbage\r")
    assert code_of(connection(system.port).open) == "sip2_bad_reply"


def test_an_endless_reply(scripted: Any) -> None:
    system = scripted(lambda frame: b"9" * 20_000)
    assert code_of(connection(system.port).open) == "sip2_bad_reply"


def test_crlf_line_ends_are_fine(scripted: Any) -> None:
    answer = _ok_system()
    system = scripted(lambda frame: (answer(frame) or b"") + b"\n")
    conn = connection(system.port, checksums=True)
    try:
        assert conn.open().online
    finally:
        conn.close()


def test_tls_with_the_configured_ca(tls_files: TlsFiles) -> None:
    with DemoLibrary(tls=(tls_files.cert, tls_files.key)) as library:
        conn = connection(library.port, tls=True, ca_pem=tls_files.ca_pem)
        try:
            assert conn.open().online
            assert conn.exchange(request()).valid_patron_password == "Y"  # type: ignore[attr-defined]
        finally:
            conn.close()
        # Another CA, the system's CAs, or plain TCP to a TLS port: refused.
        assert (
            code_of(connection(library.port, tls=True, ca_pem=tls_files.other_ca_pem).open)
            == "sip2_tls"
        )
        assert code_of(connection(library.port, tls=True).open) == "sip2_tls"
        assert code_of(connection(library.port, reply_timeout=0.5).open) in (
            "sip2_timeout",
            "sip2_unreachable",
            "sip2_login_refused",
            "sip2_bad_reply",
        )
        # A host name the certificate does not name.
        wrong_name = connection(library.port, tls=True, ca_pem=tls_files.ca_pem, host="127.0.0.2")
        assert code_of(wrong_name.open) in ("sip2_tls", "sip2_unreachable")


def test_exchanges_are_serialised(demo_library: DemoLibrary) -> None:
    conn = connection(demo_library.port)
    answers: list[Any] = []

    def ask(number: str) -> None:
        answers.append(conn.exchange(request(number, None)))

    threads = [threading.Thread(target=ask, args=(p.number,)) for p in PATRONS for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    conn.close()
    assert len(answers) == 30
    assert conn.logins == 1
    for p in PATRONS:
        assert sum(a.patron_identifier == p.number for a in answers) == 5


def test_closed_connections_refuse(demo_library: DemoLibrary) -> None:
    conn = connection(demo_library.port)
    conn.close()
    assert code_of(lambda: conn.exchange(request())) == "sip2_not_configured"
