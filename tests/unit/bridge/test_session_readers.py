"""PC/SC reader watching: pyscard's monitors feed the session (mocked at the pyscard boundary)."""

from __future__ import annotations

from typing import Any
from unittest import mock

from bridge import wire
from bridge.readers import PcscReaders
from bridge.seal import generate_device_key
from bridge.session import BridgeSession

ATR = bytes.fromhex("3BE000FF8131FE4514")


class FakeMonitor:
    """Stands in for pyscard's ReaderMonitor / CardMonitor singletons."""

    def __init__(self) -> None:
        self.observers: list[Any] = []

    def addObserver(self, observer: Any) -> None:
        self.observers.append(observer)

    def deleteObserver(self, observer: Any) -> None:
        self.observers.remove(observer)

    def notify(self, added: list[Any], removed: list[Any]) -> None:
        for observer in self.observers:
            observer.update(self, (added, removed))


class FakeCard:
    def __init__(self, reader: str, atr: bytes) -> None:
        self.reader = reader
        self.atr = list(atr)


def test_every_reader_and_card_including_later_ones() -> None:
    readers, cards = FakeMonitor(), FakeMonitor()
    session = BridgeSession("brg_x", generate_device_key())
    frames: list[wire.Frame] = []
    session.emit = frames.append
    watcher = PcscReaders()
    with (
        mock.patch("smartcard.ReaderMonitoring.ReaderMonitor", return_value=readers),
        mock.patch("smartcard.CardMonitoring.CardMonitor", return_value=cards),
        mock.patch("bridge.transports.pcsc.PcscTransport") as transport,
    ):
        watcher.start(session)
        readers.notify(["Reader A 00 00"], [])
        cards.notify([FakeCard("Reader A 00 00", ATR)], [])
        readers.notify(["Reader B 00 00"], [])  # plugged in later
        cards.notify([FakeCard("Reader B 00 00", ATR)], [])
        transport.assert_any_call("Reader B 00 00")
        cards.notify([], [FakeCard("Reader A 00 00", ATR)])
        readers.notify([], ["Reader A 00 00"])
    snapshot = session.snapshot()
    assert [r.name for r in snapshot.readers] == ["Reader B 00 00"]
    assert snapshot.readers[0].card is not None and snapshot.readers[0].card.atr == ATR
    kinds = [type(f).__name__ for f in frames]
    assert kinds == [
        "ReaderAdded",
        "CardInserted",
        "ReaderAdded",
        "CardInserted",
        "CardRemoved",
        "ReaderRemoved",
    ]
    inserted = [f for f in frames if isinstance(f, wire.CardInserted)]
    assert inserted[0].epoch < inserted[1].epoch
    watcher.stop()
    assert readers.observers == [] and cards.observers == []


def test_a_bad_event_does_not_kill_the_monitor_thread() -> None:
    cards = FakeMonitor()
    session = BridgeSession("brg_x", generate_device_key())
    watcher = PcscReaders()
    with (
        mock.patch("smartcard.ReaderMonitoring.ReaderMonitor", return_value=FakeMonitor()),
        mock.patch("smartcard.CardMonitoring.CardMonitor", return_value=cards),
        mock.patch("bridge.transports.pcsc.PcscTransport", side_effect=RuntimeError("boom")),
    ):
        watcher.start(session)
        cards.notify([FakeCard("Reader A 00 00", ATR)], [])  # logged, not raised
    watcher.stop()


def test_an_atr_change_without_the_reader_going_empty_is_no_retap() -> None:
    """pyscard reports a card whose ATR changed while present (a reset answered with
    another ATR) as removed and added in one event: a new card session, no re-tap."""
    cards = FakeMonitor()
    session = BridgeSession("brg_x", generate_device_key())
    watcher = PcscReaders()
    reader = "Reader A 00 00"
    with (
        mock.patch("smartcard.ReaderMonitoring.ReaderMonitor", return_value=FakeMonitor()),
        mock.patch("smartcard.CardMonitoring.CardMonitor", return_value=cards),
        mock.patch("bridge.transports.pcsc.PcscTransport"),
    ):
        watcher.start(session)
        cards.notify([FakeCard(reader, ATR)], [])
        first = session.card(reader)
        assert first is not None
        session.last_try.seen(reader, first.epoch, 1)  # one try left, seen in this session
        cards.notify([FakeCard(reader, ATR + b"\x01")], [FakeCard(reader, ATR)])
        second = session.card(reader)
        assert second is not None and second.epoch > first.epoch
        assert not session.last_try.armed(reader, second.epoch)
        cards.notify([], [FakeCard(reader, ATR + b"\x01")])  # a hand: off the reader...
        cards.notify([FakeCard(reader, ATR)], [])  # ... and back
        third = session.card(reader)
        assert third is not None and session.last_try.armed(reader, third.epoch)
    watcher.stop()


def test_the_removal_is_told_before_the_card_s_transport_closes() -> None:
    """Closing a vanished card's PC/SC handle can wait behind a command still failing on
    it: the platform hears the card is gone first, not after that wait."""
    session = BridgeSession("brg_x", generate_device_key())
    seen: list[str] = []
    session.emit = lambda frame: seen.append(type(frame).__name__)

    class Transport:
        def close(self) -> None:
            seen.append("close")

    session.add_reader("R")
    session.insert_card("R", ATR, Transport())
    seen.clear()
    session.remove_card("R")
    assert seen == ["CardRemoved", "close"]


def test_a_pcsc_card_that_left_is_released_without_a_reset() -> None:
    """A reset sent to a card the reader may still count as present stalls vpcd's reader
    for good: the transport of a removed card is let go as it is (SCARD_LEAVE_CARD)."""
    session = BridgeSession("brg_x", generate_device_key())
    session.emit = lambda frame: None
    with mock.patch("bridge.transports.pcsc.scard") as scard:
        from bridge.transports.pcsc import PcscTransport

        transport = PcscTransport("R")
        transport._card = 7  # an open handle
        session.add_reader("R")
        session.insert_card("R", ATR, transport)
        session.remove_card("R")
    scard.SCardDisconnect.assert_called_once_with(7, scard.SCARD_LEAVE_CARD)
