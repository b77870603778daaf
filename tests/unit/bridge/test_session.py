"""The bridge's session without a network: readers, epochs, commands behind the firewall."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from bridge import jpki, wire
from bridge.apdu import Command, Response
from bridge.readers import SimReader
from bridge.seal import SealContext, generate_device_key, seal_pin
from bridge.session import BridgeSession
from bridge.transport import Step, run_batch
from bridge.vcard.card import VirtualCard
from bridge.vcard.transport import VirtualCardTransport

BRIDGE_ID = "brg_unit"
TEXT_HELPER_AID = bytes.fromhex("D3921000310001010408")


class RecordingKeyboard:
    name = "recording"

    def __init__(self) -> None:
        self.typed: list[str] = []

    def type_keys(self, keys: str) -> None:
        self.typed.append(keys)


@pytest.fixture
def seal_key() -> Any:
    return generate_device_key()


@pytest.fixture
def frames() -> list[wire.Frame]:
    return []


@pytest.fixture
def session(seal_key: Any, frames: list[wire.Frame]) -> BridgeSession:
    s = BridgeSession(BRIDGE_ID, seal_key, RecordingKeyboard(), clock=lambda: 1000.0)
    s.emit = frames.append
    return s


@pytest.fixture
def sim(session: BridgeSession, card_file: Any) -> SimReader:
    reader = SimReader(card_file.path)
    reader.start(session)
    return reader


def cert_batch() -> wire.BatchCommand:
    return wire.BatchCommand(tuple(next(jpki.read_certificate())))


def sealed_verify(seal_key: Any, pin: str, **kw: Any) -> wire.VerifyCommand:
    command_id = wire.new_id()
    sealed = seal_pin(seal_key.public_key(), pin, SealContext(BRIDGE_ID, command_id))
    return wire.VerifyCommand(sealed, id=command_id, **kw)


def test_snapshot_and_events_with_increasing_epochs(
    session: BridgeSession, sim: SimReader, frames: list[wire.Frame]
) -> None:
    assert [type(f) for f in frames] == [wire.ReaderAdded, wire.CardInserted]
    first = frames[1].epoch  # type: ignore[union-attr]
    assert first == 1_000_000  # the clock in ms: epochs grow across restarts too
    sim.remove()
    second = sim.insert()
    third = (sim.remove(), sim.insert())[1]
    assert first < second < third
    assert [type(f).__name__ for f in frames[2:]] == [
        "CardRemoved",
        "CardInserted",
        "CardRemoved",
        "CardInserted",
    ]
    [reader] = session.snapshot().readers
    assert reader == wire.ReaderState(sim.name, wire.CardState(sim.card.atr, third))
    sim.stop()
    assert isinstance(frames[-1], wire.ReaderRemoved)
    assert session.snapshot().readers == ()


def test_batch_reads_the_certificate_in_one_command(
    session: BridgeSession, sim: SimReader, card_file: Any
) -> None:
    result = session.handle(cert_batch())
    assert isinstance(result, wire.Result)
    assert result.reader == sim.name
    assert b"".join(r.data for r in result.responses[2:]).startswith(
        card_file.issued.auth_cert_der[:64]
    )


@pytest.mark.parametrize(
    ("change", "command", "code"),
    [
        ("none", dict(epoch=1), "card_removed"),
        ("remove", {}, "no_card"),
        ("none", dict(reader="Other Reader 00 00"), "reader_missing"),
        ("stop", {}, "reader_missing"),
    ],
)
def test_commands_for_a_card_that_is_not_there(
    session: BridgeSession, sim: SimReader, change: str, command: dict[str, Any], code: str
) -> None:
    if change == "remove":
        sim.remove()
    elif change == "stop":
        sim.stop()
    answer = session.handle(wire.BatchCommand(tuple(next(jpki.read_certificate())), **command))
    assert isinstance(answer, wire.Error)
    assert answer.code == code


def test_an_old_epoch_is_refused_after_reinsertion(session: BridgeSession, sim: SimReader) -> None:
    old = session.snapshot().readers[0].card.epoch  # type: ignore[union-attr]
    sim.remove()
    sim.insert()
    answer = session.handle(wire.BatchCommand((Step(jpki.select_jpki()),), epoch=old))
    assert isinstance(answer, wire.Error) and answer.code == "card_removed"


def test_a_command_id_is_served_once(session: BridgeSession, sim: SimReader) -> None:
    command = cert_batch()
    assert isinstance(session.handle(command), wire.Result)
    again = session.handle(command)
    assert isinstance(again, wire.Error) and again.code == "refused"


@pytest.mark.parametrize(
    "steps",
    [
        [Step(Command(0x00, 0xA4, 0x04, 0x0C, TEXT_HELPER_AID))],
        [Step(jpki.select_jpki()), Step(jpki.select_ef(0x18)), Step(jpki.verify_command("1234"))],
        [Step(jpki.select_jpki()), Step(jpki.select_ef(0x01)), Step(jpki.read_binary(0, 256))],
    ],
    ids=["text-helper", "raw-verify", "signing-cert"],
)
def test_the_firewall_refuses_before_anything_is_sent(
    session: BridgeSession, sim: SimReader, steps: list[Step]
) -> None:
    assert sim.link is not None
    answer = session.handle(wire.BatchCommand(tuple(steps)))
    assert isinstance(answer, wire.Error) and answer.code == "refused"
    assert not sim.link.inner.sent


def test_card_removed_mid_command(
    session: BridgeSession, sim: SimReader, frames: list[wire.Frame]
) -> None:
    sim.pull_after(3)
    answer = session.handle(cert_batch())
    assert isinstance(answer, wire.Error) and answer.code == "card_removed"
    assert isinstance(frames[-1], wire.CardRemoved)
    assert session.snapshot().readers[0].card is None


def test_sealed_verify_then_sign(
    session: BridgeSession, sim: SimReader, seal_key: Any, caplog: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    then = (Step(jpki.select_ef(0x17)), Step(jpki.sign_command(jpki.sha256_digest_info(b"m"))))
    result = session.handle(sealed_verify(seal_key, "1234", then=then))
    assert isinstance(result, wire.Result)
    assert result.tries_left == 3
    assert [r.sw for r in result.responses] == [0x9000, 0x9000, 0x9000]
    assert len(result.responses[2].data) == 256
    assert "1234" not in caplog.text and "31323334" not in caplog.text


def test_sealed_wrong_pin_is_tried_once(
    session: BridgeSession, sim: SimReader, seal_key: Any
) -> None:
    then = (Step(jpki.select_ef(0x17)),)
    result = session.handle(sealed_verify(seal_key, "0000", then=then))
    assert isinstance(result, wire.Result)
    assert [r.sw for r in result.responses] == [0x63C2]  # `then` is not run
    assert sim.link is not None
    assert sum(1 for c in sim.link.inner.sent if c.ins == 0x20 and c.data) == 1


@pytest.mark.parametrize(
    ("tries", "confirmed", "code"),
    [(1, False, "pin_retap"), (1, True, "pin_retap"), (0, True, "pin_locked")],
)
def test_pin_guard(
    session: BridgeSession,
    seal_key: Any,
    make_card_file: Any,
    tmp_path: Any,
    tries: int,
    confirmed: bool,
    code: str,
) -> None:
    card = make_card_file(tmp_path / "c.json", auth_tries_left=tries)
    sim = SimReader(card.path)
    sim.start(session)
    answer = session.handle(sealed_verify(seal_key, "1234", confirmed=confirmed))
    assert isinstance(answer, wire.Error) and answer.code == code
    assert answer.tries_left == tries
    assert sim.link is not None
    assert not [c for c in sim.link.inner.sent if c.ins == 0x20 and c.data]


def test_last_try_after_a_retap_with_confirmation(
    session: BridgeSession, seal_key: Any, make_card_file: Any, tmp_path: Any
) -> None:
    card = make_card_file(tmp_path / "c.json", auth_tries_left=1)
    sim = SimReader(card.path)
    sim.start(session)
    refused = session.handle(sealed_verify(seal_key, "1234", confirmed=True))
    assert isinstance(refused, wire.Error) and refused.code == "pin_retap"
    sim.remove()
    sim.insert()
    result = session.handle(sealed_verify(seal_key, "1234", confirmed=True))
    assert isinstance(result, wire.Result) and result.responses[0].sw == 0x9000


def test_a_pin_sealed_for_another_bridge_does_not_open(
    session: BridgeSession, sim: SimReader, seal_key: Any
) -> None:
    command_id = wire.new_id()
    sealed = seal_pin(seal_key.public_key(), "1234", SealContext("brg_other", command_id))
    answer = session.handle(wire.VerifyCommand(sealed, id=command_id))
    assert isinstance(answer, wire.Error) and answer.code == "refused"
    assert sim.link is not None and not sim.link.inner.sent


def test_keyboard_output(session: BridgeSession) -> None:
    keyboard = session.keyboard
    assert isinstance(keyboard, RecordingKeyboard)
    assert isinstance(session.handle(wire.TypeCommand("A1234A", "tab", "0123456789A")), wire.Result)
    refused = session.handle(wire.TypeCommand("12;rm", "enter"))
    assert isinstance(refused, wire.Error) and refused.code == "refused"
    assert keyboard.typed == ["A1234A\t"]


def test_keyboard_unavailable(seal_key: Any) -> None:
    session = BridgeSession(BRIDGE_ID, seal_key)
    answer = session.handle(wire.TypeCommand("1234"))
    assert isinstance(answer, wire.Error) and answer.code == "keyboard_unavailable"


def test_not_a_command(session: BridgeSession) -> None:
    answer = session.handle(wire.Ping())
    assert isinstance(answer, wire.Error)


class HeldLink:
    """The virtual card behind a transport that holds the card as PC/SC does: each
    `transmit` is one transaction, and `hold()` keeps one open; records the transaction
    each APDU was sent in."""

    def __init__(self, inner: VirtualCardTransport) -> None:
        self.inner = inner
        self.transactions = 0
        self.sent: list[tuple[int, int]] = []  # (transaction, INS)
        self.resets: list[int] = []  # transactions that ended with a reset of the card

    def transmit(self, batch: list[Step]) -> list[Response]:
        with self.hold() as send:
            return run_batch(send, batch)

    @contextmanager
    def hold(self, *, reset_after: bool = False) -> Iterator[Callable[[Command], Response]]:
        self.transactions += 1
        number = self.transactions

        def send(command: Command) -> Response:
            self.sent.append((number, command.ins))
            return self.inner.transmit([Step(command)])[0]

        try:
            yield send
        finally:
            if reset_after:
                self.resets.append(number)


def test_the_sealed_pin_command_holds_the_card_from_the_tries_read_to_the_signature(
    session: BridgeSession, seal_key: Any, card_file: Any
) -> None:
    """No other application's APDU can come between the guard's tries read, the VERIFY
    and the signature: they all go in one transaction of the reader."""
    link = HeldLink(VirtualCardTransport(VirtualCard.from_file(card_file.path)))
    session.add_reader("held reader")
    epoch = session.insert_card("held reader", link.inner.atr, link)
    assert isinstance(session.handle(cert_batch()), wire.Result)
    link.sent.clear()
    digest_info = jpki.sha256_digest_info(b"held")
    then = (
        Step(jpki.select_ef(jpki.MYNUMBER_2015.ef_auth_key)),
        Step(jpki.sign_command(digest_info)),
    )
    answer = session.handle(sealed_verify(seal_key, card_file.pin, epoch=epoch, then=then))
    assert isinstance(answer, wire.Result)
    assert [r.sw for r in answer.responses] == [0x9000, 0x9000, 0x9000]
    assert len({number for number, _ in link.sent}) == 1, link.sent
    assert [ins for _, ins in link.sent][-3:] == [0x20, 0xA4, 0x2A]  # VERIFY, SELECT, SIGN
    assert link.resets == [link.sent[0][0]]  # and it ends with a reset of the card
    assert isinstance(session.handle(cert_batch()), wire.Result)  # the firewall starts over


def test_a_refused_pin_command_still_resets_the_card(
    session: BridgeSession, seal_key: Any, make_card_file: Any, tmp_path: Any
) -> None:
    card = make_card_file(tmp_path / "c.json", auth_tries_left=1)
    link = HeldLink(VirtualCardTransport(VirtualCard.from_file(card.path)))
    session.add_reader("held reader")
    session.insert_card("held reader", link.inner.atr, link)
    answer = session.handle(sealed_verify(seal_key, "1234"))  # the last try, no re-tap
    assert isinstance(answer, wire.Error) and answer.code == "pin_retap"
    assert link.resets == [1]
    assert [ins for _, ins in link.sent].count(0x20) == 1  # the tries read, no VERIFY
