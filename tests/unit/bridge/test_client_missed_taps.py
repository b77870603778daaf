"""A card put on a reader between two connections is told on the next one, after its
snapshot (bridge/client.py, `_emit` and `_missed_taps`): only insertions whose card is
still there, recent ones, never before the first connection, never one already sent."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from bridge import client as client_module
from bridge import wire
from bridge.client import MISSED_TAP_S, BridgeClient

ATR = bytes.fromhex("3BE000FF8131FE4514")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Conn:
    """A connection whose sends work or not."""

    def __init__(self, works: bool) -> None:
        self.works = works
        self.sent: list[wire.Frame] = []

    def send(self, frame: wire.Frame) -> bool:
        if self.works:
            self.sent.append(frame)
        return self.works


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(client_module.time, "monotonic", fake)
    return fake


def bridge_client(connections: int = 1) -> BridgeClient:
    identity = SimpleNamespace(platform="http://127.0.0.1:5000", bridge_id="brg_test")
    made = BridgeClient(identity, SimpleNamespace())  # type: ignore[arg-type]
    made.connections = connections
    return made


def inserted(reader: str, epoch: int) -> wire.CardInserted:
    return wire.CardInserted(reader, ATR, epoch)


def snapshot(**cards: Any) -> wire.Snapshot:
    return wire.Snapshot(
        tuple(
            wire.ReaderState(name, None if epoch is None else wire.CardState(ATR, epoch))
            for name, epoch in cards.items()
        )
    )


def told(made: BridgeClient, now: wire.Snapshot) -> list[tuple[str, int]]:
    return [(f.reader, f.epoch) for f in made._missed_taps(now)]


def test_a_tap_between_connections_is_told_once_after_the_snapshot(clock: Clock) -> None:
    made = bridge_client()
    made._emit(inserted("A", 7))
    clock.now += MISSED_TAP_S - 1
    assert told(made, snapshot(A=7, B=None)) == [("A", 7)]
    assert told(made, snapshot(A=7, B=None)) == []  # once


def test_only_the_card_still_on_the_reader(clock: Clock) -> None:
    made = bridge_client()
    made._emit(inserted("A", 7))
    made._emit(inserted("B", 8))
    made._emit(wire.CardRemoved("B", 8))
    made._emit(inserted("C", 9))
    made._emit(inserted("C", 10))  # taken off and put back: the newest card session
    made._emit(inserted("D", 11))
    made._emit(wire.ReaderRemoved("D"))
    assert told(made, snapshot(A=6, B=None, C=10)) == [("C", 10)]  # A's 7 was swapped since


def test_not_a_card_left_there_long_ago(clock: Clock) -> None:
    made = bridge_client()
    made._emit(inserted("A", 7))
    clock.now += MISSED_TAP_S + 1
    assert told(made, snapshot(A=7)) == []


def test_not_before_the_first_connection(clock: Clock) -> None:
    """The first snapshot shows a card that was there when the bridge started: no tap."""
    made = bridge_client(connections=0)
    made._emit(inserted("A", 7))
    assert told(made, snapshot(A=7)) == []


def test_a_send_that_fails_counts_as_no_connection(clock: Clock) -> None:
    made = bridge_client()
    made._conn = Conn(works=False)  # type: ignore[assignment]
    made._emit(inserted("A", 7))
    made._conn = None
    assert told(made, snapshot(A=7)) == [("A", 7)]


def test_nothing_is_kept_of_what_was_sent(clock: Clock) -> None:
    made = bridge_client()
    conn = Conn(works=True)
    made._conn = conn  # type: ignore[assignment]
    made._emit(inserted("A", 7))
    assert [type(f) for f in conn.sent] == [wire.CardInserted]
    made._conn = None
    assert told(made, snapshot(A=7)) == []
