"""PcscTransport against a fake pyscard `scard` layer: T=0 procedure, error mapping."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from smartcard import scard

from bridge.apdu import Command
from bridge.errors import Code, TransportError
from bridge.transport import Step
from bridge.transports import pcsc
from bridge.transports.pcsc import PcscTransport, list_readers

OK = scard.SCARD_S_SUCCESS
READER = "Fake Reader 00 00"
Answer = Callable[[bytes], tuple[int, bytes]]


class FakeScard:
    """The pyscard calls PcscTransport makes, over a scripted reader and card."""

    def __init__(self, answer: Answer, readers: list[str] | None = None) -> None:
        self.answer = answer
        self.readers = [READER] if readers is None else readers
        self.cards = set(self.readers)  # readers holding a card
        self.sent: list[bytes] = []
        self.establish_rv = OK
        self.connect_rv = OK
        self.t1_supported = True
        self.protocol = scard.SCARD_PROTOCOL_T1
        self.pci: int | None = None
        self.disposition: int | None = None

    def SCardEstablishContext(self, scope: int) -> tuple[int, int]:
        return self.establish_rv, 1

    def SCardReleaseContext(self, ctx: int) -> int:
        return OK

    def SCardListReaders(self, ctx: int, groups: list[str]) -> tuple[int, list[str]]:
        if not self.readers:
            return scard.SCARD_E_NO_READERS_AVAILABLE, []
        return OK, list(self.readers)

    def SCardGetStatusChange(self, ctx: int, timeout: int, states: list) -> tuple[int, list]:
        name = states[0][0]
        if name not in self.readers:
            return scard.SCARD_E_UNKNOWN_READER, []
        flag = scard.SCARD_STATE_PRESENT if name in self.cards else scard.SCARD_STATE_EMPTY
        return OK, [(name, flag, [])]

    def SCardConnect(self, ctx: int, name: str, share: int, protocols: int) -> tuple[int, int, int]:
        if self.connect_rv != OK:
            return self.connect_rv, 0, 0
        if protocols == scard.SCARD_PROTOCOL_T1 and not self.t1_supported:
            return scard.SCARD_E_PROTO_MISMATCH, 0, 0
        if not self.t1_supported:
            self.protocol = scard.SCARD_PROTOCOL_T0
        return OK, 7, self.protocol

    def SCardBeginTransaction(self, card: int) -> int:
        return OK

    def SCardEndTransaction(self, card: int, disposition: int) -> int:
        return OK

    def SCardDisconnect(self, card: int, disposition: int) -> int:
        self.disposition = disposition
        return OK

    def SCardTransmit(self, card: int, pci: int, apdu: list[int]) -> tuple[int, list[int]]:
        self.pci = pci
        self.sent.append(bytes(apdu))
        rv, raw = self.answer(bytes(apdu))
        return rv, list(raw)


@pytest.fixture
def install(monkeypatch: pytest.MonkeyPatch) -> Callable[..., FakeScard]:
    """Replace pyscard's scard functions with a FakeScard answering with `answer`."""

    def setup(answer: Answer, readers: list[str] | None = None) -> FakeScard:
        fake = FakeScard(answer, readers)
        for name in dir(fake):
            if name.startswith("SCard"):
                monkeypatch.setattr(pcsc.scard, name, getattr(fake, name))
        return fake

    return setup


def ok(data: bytes = b"") -> tuple[int, bytes]:
    return OK, data + b"\x90\x00"


READ = Command(0x00, 0xB0, 0x00, 0x00, le=256)


def test_sends_commands_and_parses_responses(install: Callable[..., FakeScard]) -> None:
    fake = install(lambda apdu: ok(b"\x30\x82"))
    with PcscTransport(READER) as transport:
        [response] = transport.transmit([Step(READ)])
    assert response.data == b"\x30\x82" and response.ok
    assert fake.sent == [READ.encode()] and fake.pci == scard.SCARD_PCI_T1


def test_get_response_collects_61xx_chunks(install: Callable[..., FakeScard]) -> None:
    chunks = {b"\x00\xc0\x00\x00\x03": (OK, b"DEF\x61\x02"), b"\x00\xc0\x00\x00\x02": ok(b"GH")}

    def answer(apdu: bytes) -> tuple[int, bytes]:
        return chunks.get(apdu, (OK, b"ABC\x61\x03"))

    fake = install(answer)
    with PcscTransport(READER) as transport:
        [response] = transport.transmit([Step(Command(0x80, 0x2A, 0x00, 0x80, b"x" * 51))])
    assert response.data == b"ABCDEFGH" and response.ok
    assert len(fake.sent) == 3


def test_6cxx_resends_with_the_right_le(install: Callable[..., FakeScard]) -> None:
    def answer(apdu: bytes) -> tuple[int, bytes]:
        return ok(b"WXYZ") if apdu[-1] == 4 else (OK, b"\x6c\x04")

    fake = install(answer)
    with PcscTransport(READER) as transport:
        [response] = transport.transmit([Step(READ)])
    assert response.data == b"WXYZ"
    assert fake.sent == [READ.encode(), bytes.fromhex("00B0000004")]


def test_batch_stops_at_unexpected_status(install: Callable[..., FakeScard]) -> None:
    fake = install(lambda apdu: (OK, b"\x6a\x82"))
    with PcscTransport(READER) as transport:
        responses = transport.transmit([Step(READ), Step(READ)])
    assert [r.sw for r in responses] == [0x6A82] and len(fake.sent) == 1


def test_falls_back_to_t0(install: Callable[..., FakeScard]) -> None:
    fake = install(lambda apdu: ok())
    fake.t1_supported = False
    with PcscTransport(READER) as transport:
        transport.transmit([Step(READ)])
    assert fake.pci == scard.SCARD_PCI_T0


@pytest.mark.parametrize(("reset", "disposition"), [(True, "RESET"), (False, "LEAVE")])
def test_close_resets_the_card_by_default(
    install: Callable[..., FakeScard], reset: bool, disposition: str
) -> None:
    fake = install(lambda apdu: ok())
    PcscTransport(READER, reset_on_close=reset).__enter__().close()
    assert fake.disposition == getattr(scard, f"SCARD_{disposition}_CARD")


def test_picks_first_reader_with_a_card(install: Callable[..., FakeScard]) -> None:
    fake = install(lambda apdu: ok(), readers=["Empty 00 00", READER])
    fake.cards = {READER}
    with PcscTransport() as transport:
        assert transport.reader == READER
    fake.cards = set()
    with pytest.raises(TransportError) as caught:
        PcscTransport().connect()
    assert caught.value.code == Code.NO_CARD


@pytest.mark.parametrize(
    ("where", "hresult", "code"),
    [
        ("establish", scard.SCARD_E_NO_SERVICE, Code.READER_MISSING),
        ("connect", scard.SCARD_E_NO_SMARTCARD, Code.NO_CARD),
        ("connect", scard.SCARD_W_REMOVED_CARD, Code.NO_CARD),
        ("connect", scard.SCARD_E_UNKNOWN_READER, Code.READER_MISSING),
        ("connect", scard.SCARD_E_SHARING_VIOLATION, Code.TRANSPORT),
        ("transmit", scard.SCARD_W_REMOVED_CARD, Code.CARD_REMOVED),
        ("transmit", scard.SCARD_E_NO_SMARTCARD, Code.CARD_REMOVED),
        ("transmit", scard.SCARD_E_READER_UNAVAILABLE, Code.READER_MISSING),
        ("transmit", scard.SCARD_E_TIMEOUT, Code.TIMEOUT),
        ("transmit", scard.SCARD_E_NOT_TRANSACTED, Code.TRANSPORT),
    ],
)
def test_maps_pcsc_errors(
    install: Callable[..., FakeScard], where: str, hresult: int, code: Code
) -> None:
    fake = install(lambda apdu: (hresult, b"") if where == "transmit" else ok())
    if where == "establish":
        fake.establish_rv = hresult
    if where == "connect":
        fake.connect_rv = hresult
    transport = PcscTransport(READER)
    with pytest.raises(TransportError) as caught:
        transport.transmit([Step(READ)])
    assert caught.value.code == code
    assert not transport.connected


def test_failed_transfer_of_a_vanished_card_is_a_removal(
    install: Callable[..., FakeScard],
) -> None:
    fake = install(lambda apdu: (scard.SCARD_E_NOT_TRANSACTED, b""))
    with PcscTransport(READER) as transport:
        fake.cards = set()
        with pytest.raises(TransportError) as caught:
            transport.transmit([Step(READ)])
    assert caught.value.code == Code.CARD_REMOVED


def test_reconnects_after_a_removal(install: Callable[..., FakeScard]) -> None:
    results = [(scard.SCARD_W_REMOVED_CARD, b""), ok(b"A")]
    install(lambda apdu: results.pop(0))
    transport = PcscTransport(READER)
    with pytest.raises(TransportError):
        transport.transmit([Step(READ)])
    assert transport.transmit([Step(READ)])[0].data == b"A"
    transport.close()


def test_error_message_never_carries_the_pin(install: Callable[..., FakeScard]) -> None:
    install(lambda apdu: (scard.SCARD_W_REMOVED_CARD, b""))
    verify = Command(0x00, 0x20, 0x00, 0x80, b"4321")
    with pytest.raises(TransportError) as caught:
        PcscTransport(READER).transmit([Step(verify)])
    assert "4321" not in str(caught.value) and "34333231" not in str(caught.value)


@pytest.mark.parametrize("hresult", [scard.SCARD_E_NO_SERVICE, scard.SCARD_E_SERVICE_STOPPED])
def test_list_readers_is_empty_without_service(
    install: Callable[..., FakeScard], hresult: int
) -> None:
    install(lambda apdu: ok()).establish_rv = hresult
    assert list_readers() == []


def test_list_readers(install: Callable[..., FakeScard]) -> None:
    install(lambda apdu: ok(), readers=["A 00 00", "B 00 00"])
    assert list_readers() == ["A 00 00", "B 00 00"]
    install(lambda apdu: ok(), readers=[])
    assert list_readers() == []


def test_answer_without_status_word_is_a_transport_error(
    install: Callable[..., FakeScard],
) -> None:
    install(lambda apdu: (OK, b"\x90"))
    with pytest.raises(TransportError) as caught:
        PcscTransport(READER).transmit([Step(READ)])
    assert caught.value.code == Code.TRANSPORT


def test_6cxx_is_not_retried_for_case_3(install: Callable[..., FakeScard]) -> None:
    fake = install(lambda apdu: (OK, b"\x6c\x04"))
    with PcscTransport(READER) as transport:
        [response] = transport.transmit([Step(Command(0x00, 0xA4, 0x02, 0x0C, b"\x00\x0a"))])
    assert response.sw == 0x6C04 and len(fake.sent) == 1


@pytest.mark.parametrize(
    ("gone_after", "disposition"),
    [(None, "RESET"), (0.0, "LEAVE"), (0.1, "LEAVE")],
)
def test_a_failed_transfer_resets_only_a_card_still_there(
    install: Callable[..., FakeScard],
    monkeypatch: pytest.MonkeyPatch,
    gone_after: float | None,
    disposition: str,
) -> None:
    """A card still on the reader after a failed transfer is reset (whatever the failed
    command left must not outlive it); one that has gone (at once, or reported by the
    reader a little later) is left: a reset sent to a vanished vpcd card stalls the reader."""
    import threading

    monkeypatch.setattr(pcsc, "REMOVAL_NOTICE_S", 0.5)
    fake = install(lambda apdu: (scard.SCARD_E_NOT_TRANSACTED, b""))
    transport = PcscTransport(READER)
    transport.connect()
    if gone_after == 0.0:
        fake.cards = set()
    elif gone_after is not None:
        threading.Timer(gone_after, lambda: setattr(fake, "cards", set())).start()
    with pytest.raises(TransportError) as caught:
        transport.transmit([Step(READ)])
    assert fake.disposition == getattr(scard, f"SCARD_{disposition}_CARD")
    assert caught.value.code == (Code.TRANSPORT if gone_after is None else Code.CARD_REMOVED)
