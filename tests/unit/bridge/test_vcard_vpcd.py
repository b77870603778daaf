"""The vpcd card side against a fake vpcd reader (a TCP listener speaking the framing)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from bridge.vcard import vpcd

ATR = bytes.fromhex("3BE000FF8131FE4514")


class FakeCard:
    """Records power changes; answers every APDU with its reverse + 9000."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def power_on(self) -> bytes:
        self.events.append("on")
        return ATR

    def power_off(self) -> None:
        self.events.append("off")

    def transmit(self, raw: bytes) -> bytes:
        return raw[::-1] + b"\x90\x00"


class FakeReader:
    """The reader side of vpcd: listens, accepts the card, sends framed messages."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(5)
        self.port = self.server.getsockname()[1]
        self.conn: socket.socket | None = None

    def accept(self) -> None:
        self.conn, _ = self.server.accept()
        self.conn.settimeout(5)

    def send(self, payload: bytes) -> None:
        assert self.conn is not None
        self.conn.sendall(len(payload).to_bytes(2, "big") + payload)

    def recv(self) -> bytes:
        assert self.conn is not None
        size = int.from_bytes(self._exact(2), "big")
        return self._exact(size)

    def _exact(self, n: int) -> bytes:
        assert self.conn is not None
        buf = b""
        while len(buf) < n:
            chunk = self.conn.recv(n - len(buf))
            assert chunk, "card closed the connection"
            buf += chunk
        return buf

    def drop(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def close(self) -> None:
        self.drop()
        self.server.close()


@pytest.fixture
def reader() -> Iterator[FakeReader]:
    fake = FakeReader()
    yield fake
    fake.close()


@pytest.fixture
def card() -> FakeCard:
    return FakeCard()


@pytest.fixture
def attached(reader: FakeReader, card: FakeCard) -> Iterator[threading.Event]:
    """The card attached to the fake reader in a thread; stopped after the test."""
    stop = threading.Event()
    thread = threading.Thread(target=vpcd.attach, args=(card, "127.0.0.1", reader.port, stop))
    thread.start()
    reader.accept()
    yield stop
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive()


@pytest.mark.usefixtures("attached")
def test_answers_atr_and_apdus(reader: FakeReader) -> None:
    reader.send(b"\x04")
    assert reader.recv() == ATR
    reader.send(b"\x00\xb0\x00\x00\x04")
    assert reader.recv() == b"\x04\x00\x00\xb0\x00\x90\x00"


@pytest.mark.usefixtures("attached")
def test_power_controls_have_no_answer(reader: FakeReader, card: FakeCard) -> None:
    for control in (b"\x00", b"\x01", b"\x02"):
        reader.send(control)
    reader.send(b"\x04")  # the next answer is the ATR: nothing was sent for the controls
    assert reader.recv() == ATR
    assert card.events == ["on", "off", "on", "off", "on"]


@pytest.mark.usefixtures("attached")
def test_atr_request_does_not_power_cycle(reader: FakeReader, card: FakeCard) -> None:
    for _ in range(5):
        reader.send(b"\x04")
        assert reader.recv() == ATR
    assert card.events == ["on"]


@pytest.mark.usefixtures("attached")
def test_split_and_coalesced_messages(reader: FakeReader) -> None:
    assert reader.conn is not None
    two = b"\x00\x01\x04" + b"\x00\x05\x00\xb0\x00\x00\x02"
    for byte in two[:4]:  # one byte per segment
        reader.conn.sendall(bytes([byte]))
        time.sleep(0.01)
    reader.conn.sendall(two[4:])
    assert reader.recv() == ATR
    assert reader.recv() == b"\x02\x00\x00\xb0\x00\x90\x00"


def test_reconnects_when_the_reader_goes_away(
    reader: FakeReader, card: FakeCard, attached: threading.Event
) -> None:
    reader.drop()  # pcscd stopped: the card loses power, then comes back
    reader.accept()
    reader.send(b"\x04")
    assert reader.recv() == ATR
    assert card.events == ["on", "off", "on"]


def test_stop_removes_the_card_promptly(
    reader: FakeReader, card: FakeCard, attached: threading.Event
) -> None:
    started = time.monotonic()
    attached.set()
    assert reader.conn is not None
    assert reader.conn.recv(1) == b""  # connection closed = card removed
    assert time.monotonic() - started < 1.0
    time.sleep(0.05)
    assert card.events[-1] == "off"


def test_keeps_trying_until_a_reader_listens(card: FakeCard) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    stop = threading.Event()
    thread = threading.Thread(target=vpcd.attach, args=(card, "127.0.0.1", port, stop))
    thread.start()
    time.sleep(0.2)
    server = socket.create_server(("127.0.0.1", port))
    server.settimeout(5)
    try:
        conn, _ = server.accept()
        conn.close()
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()
    assert not thread.is_alive()


def test_socket_tuning() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        with client:
            vpcd._tune(client)
            assert client.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
            if hasattr(socket, "TCP_QUICKACK"):
                assert client.getsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK) == 1
