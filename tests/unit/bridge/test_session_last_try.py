"""The last try through a real BridgeSession and the virtual card: only after a re-tap.

A script that drives the platform can send any sequence of tries reads and sealed PINs
(it holds the bridge's sealing key as the page does), confirmed or not, replayed or
not: with the card left on the reader it can take a card from 3 tries to 1, never to 0.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from bridge import jpki, wire
from bridge.apdu import Command, Response, parse_response
from bridge.errors import Code, TransportError
from bridge.readers import SimReader
from bridge.seal import SealContext, generate_device_key, seal_pin
from bridge.session import BridgeSession
from bridge.transport import Step, run_batch
from bridge.vcard.card import VirtualCard
from tests.fixtures.cards import DEMO_PIN, MakeCardFile

BRIDGE_ID = "brg_last_try"
WRONG = "0000"
TRIES_SWS = frozenset({0x9000, 0x6984} | {0x63C0 | n for n in range(16)})


@pytest.fixture
def seal_key() -> Any:
    return generate_device_key()


@pytest.fixture
def session(seal_key: Any) -> BridgeSession:
    return BridgeSession(BRIDGE_ID, seal_key, clock=lambda: 1000.0)


def sealed(seal_key: Any, pin: str, **kw: Any) -> wire.VerifyCommand:
    """A VerifyCommand with the PIN sealed for (bridge, command id), as seal.js does."""
    command_id = wire.new_id()
    envelope = seal_pin(seal_key.public_key(), pin, SealContext(BRIDGE_ID, command_id))
    return wire.VerifyCommand(envelope, id=command_id, **kw)


def tries_read(**kw: Any) -> wire.BatchCommand:
    """The driver's tries read: SELECT AP, SELECT EF 0018, VERIFY without data."""
    return wire.BatchCommand(tuple(next(jpki.read_pin_tries())), **kw)


def tries_on(sim: SimReader) -> int:
    """The card's own counter (what the card file holds)."""
    return sim.card.data.auth_pin.tries_left


def card_with(
    make_card_file: MakeCardFile, path: Path, session: BridgeSession, tries: int
) -> SimReader:
    sim = SimReader(make_card_file(path, auth_tries_left=tries).path)
    sim.start(session)
    return sim


def retap(sim: SimReader) -> int:
    """A person takes the card off the reader and puts it back: the new epoch."""
    sim.remove()
    return sim.insert()


def down_to_one(session: BridgeSession, seal_key: Any, sim: SimReader) -> None:
    """Two wrong PINs from 3: the second leaves one try, seen by the bridge."""
    for left in (2, 1):
        result = session.handle(sealed(seal_key, WRONG))
        assert isinstance(result, wire.Result), result
        assert result.responses[0].sw == 0x63C0 | left
    assert tries_on(sim) == 1


def code(answer: wire.Result | wire.Error) -> str:
    return answer.code if isinstance(answer, wire.Error) else "sent"


# -- a card left on the reader ---------------------------------------------------------


def test_a_card_left_on_the_reader_never_loses_its_last_try(
    session: BridgeSession, seal_key: Any, card_file: Any, caplog: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    sim = SimReader(card_file.path)
    sim.start(session)
    down_to_one(session, seal_key, sim)
    replayed = sealed(seal_key, DEMO_PIN, confirmed=True)
    attempts = itertools.product([WRONG, DEMO_PIN, "9999"], [False, True], ["read", "none"])
    for pin, confirmed, before in attempts:
        if before == "read":
            assert isinstance(session.handle(tries_read()), wire.Result)
        answer = session.handle(sealed(seal_key, pin, confirmed=confirmed))
        assert isinstance(answer, wire.Error) and answer.code == "pin_retap", answer
        assert answer.tries_left == 1
    assert code(session.handle(replayed)) == "pin_retap"
    assert code(session.handle(replayed)) == "refused"  # a command id is served once
    relabelled = wire.VerifyCommand(replayed.sealed, confirmed=True)
    assert code(session.handle(relabelled)) == "refused"  # sealed for another command id
    assert tries_on(sim) == 1
    assert DEMO_PIN not in caplog.text and "30303030" not in caplog.text


def test_a_card_that_arrives_with_one_try_left_needs_a_retap(
    session: BridgeSession, seal_key: Any, make_card_file: MakeCardFile, tmp_path: Path
) -> None:
    """One try left seen for the first time by the guard's own tries read."""
    sim = card_with(make_card_file, tmp_path / "c.json", session, 1)
    for confirmed in (True, False, True):
        assert code(session.handle(sealed(seal_key, DEMO_PIN, confirmed=confirmed))) == "pin_retap"
    assert tries_on(sim) == 1


def test_a_retap_before_one_try_was_seen_does_not_count(
    session: BridgeSession, seal_key: Any, make_card_file: MakeCardFile, tmp_path: Path
) -> None:
    sim = card_with(make_card_file, tmp_path / "c.json", session, 2)
    retap(sim)
    wrong = session.handle(sealed(seal_key, WRONG))
    assert isinstance(wrong, wire.Result) and wrong.responses[0].sw == 0x63C1
    assert wrong.last_try_armed is False
    assert code(session.handle(sealed(seal_key, DEMO_PIN, confirmed=True))) == "pin_retap"


# -- after a re-tap: one attempt ---------------------------------------------------------


def test_after_a_retap_a_wrong_pin_locks_the_card_the_citizens_own_doing(
    session: BridgeSession, seal_key: Any, card_file: Any
) -> None:
    sim = SimReader(card_file.path)
    sim.start(session)
    down_to_one(session, seal_key, sim)
    retap(sim)
    unconfirmed = session.handle(sealed(seal_key, WRONG))
    assert isinstance(unconfirmed, wire.Error)
    assert (unconfirmed.code, unconfirmed.tries_left) == ("pin_last_try", 1)
    last = session.handle(sealed(seal_key, WRONG, confirmed=True))
    assert isinstance(last, wire.Result) and last.responses[0].sw == 0x63C0
    assert last.tries_left == 1 and last.last_try_armed is None
    assert tries_on(sim) == 0
    locked = session.handle(sealed(seal_key, DEMO_PIN, confirmed=True))
    assert isinstance(locked, wire.Error) and locked.code == "pin_locked"
    retap(sim)
    assert code(session.handle(sealed(seal_key, DEMO_PIN, confirmed=True))) == "pin_locked"


def test_after_a_retap_the_right_pin_resets_the_card_and_the_next_last_try_needs_its_own(
    session: BridgeSession, seal_key: Any, card_file: Any
) -> None:
    sim = SimReader(card_file.path)
    sim.start(session)
    down_to_one(session, seal_key, sim)
    retap(sim)
    then = (Step(jpki.select_ef(0x17)), Step(jpki.sign_command(jpki.sha256_digest_info(b"m"))))
    right = session.handle(sealed(seal_key, DEMO_PIN, confirmed=True, then=then))
    assert isinstance(right, wire.Result)
    assert [r.sw for r in right.responses] == [0x9000, 0x9000, 0x9000]
    assert tries_on(sim) == 3 and session.last_try.first_seen(sim.name) is None
    down_to_one(session, seal_key, sim)  # in the same card session as the re-tap
    assert code(session.handle(sealed(seal_key, DEMO_PIN, confirmed=True))) == "pin_retap"
    assert tries_on(sim) == 1


def test_one_attempt_per_retap(
    session: BridgeSession, seal_key: Any, make_card_file: MakeCardFile, tmp_path: Path
) -> None:
    """The arming is used up when the VERIFY leaves, whatever became of it: here the
    VERIFY never reaches the card (a failed transfer), and the card still has one try."""
    sim = card_with(make_card_file, tmp_path / "c.json", session, 1)
    assert code(session.handle(tries_read())) == "sent"
    epoch = retap(sim)
    assert sim.link is not None
    link = sim.link
    deliver = link._send_one

    def fail_the_verify(command: Command) -> Response:
        if command.ins == 0x20 and command.data:
            raise TransportError("the reader hiccupped", code=Code.TIMEOUT)
        return deliver(command)

    link._send_one = fail_the_verify  # type: ignore[method-assign]
    failed = session.handle(sealed(seal_key, DEMO_PIN, confirmed=True))
    assert isinstance(failed, wire.Error) and failed.code == "timeout"
    link._send_one = deliver  # type: ignore[method-assign]
    assert tries_on(sim) == 1
    assert session.snapshot().readers[0].card.epoch == epoch  # type: ignore[union-attr]
    assert code(session.handle(sealed(seal_key, DEMO_PIN, confirmed=True))) == "pin_retap"
    retap(sim)
    assert code(session.handle(sealed(seal_key, DEMO_PIN, confirmed=True))) == "sent"
    assert tries_on(sim) == 3


def test_a_different_card_put_on_the_reader_is_also_a_hand(
    session: BridgeSession, seal_key: Any, make_card_file: MakeCardFile, tmp_path: Path
) -> None:
    """Documented: the bridge cannot tell cards apart before a PIN; a card put down by
    a person after one try left was seen is the re-tap, whichever card it is."""
    first = card_with(make_card_file, tmp_path / "a.json", session, 1)
    assert code(session.handle(tries_read())) == "sent"
    first.remove()
    other = make_card_file(tmp_path / "b.json", identity="other", auth_tries_left=1)
    first.card = VirtualCard.from_file(other.path)
    first.insert()
    answer = session.handle(sealed(seal_key, DEMO_PIN, confirmed=True))
    assert isinstance(answer, wire.Result) and answer.responses[0].sw == 0x9000


def test_unplugging_the_reader_forgets_the_record(
    session: BridgeSession, seal_key: Any, make_card_file: MakeCardFile, tmp_path: Path
) -> None:
    sim = card_with(make_card_file, tmp_path / "c.json", session, 1)
    assert code(session.handle(tries_read())) == "sent"
    assert session.last_try.first_seen(sim.name) is not None
    sim.stop()
    assert session.last_try.first_seen(sim.name) is None
    sim.start(session)  # plugged back in, the card on it: a new epoch, but no record
    assert code(session.handle(sealed(seal_key, DEMO_PIN, confirmed=True))) == "pin_retap"
    retap(sim)
    assert code(session.handle(sealed(seal_key, DEMO_PIN, confirmed=True))) == "sent"


def test_a_restarted_bridge_forgets_and_fails_closed(
    seal_key: Any, make_card_file: MakeCardFile, tmp_path: Path
) -> None:
    card = make_card_file(tmp_path / "c.json", auth_tries_left=1)
    before = BridgeSession(BRIDGE_ID, seal_key, clock=lambda: 1000.0)
    sim = SimReader(card.path)
    sim.start(before)
    assert code(before.handle(tries_read())) == "sent"
    sim.remove()
    after = BridgeSession(BRIDGE_ID, seal_key, clock=lambda: 2000.0)  # a new process
    sim.session = None
    sim.start(after)
    assert code(after.handle(sealed(seal_key, DEMO_PIN, confirmed=True))) == "pin_retap"


# -- what the platform is told ------------------------------------------------------------


def test_results_say_whether_the_last_try_is_armed(
    session: BridgeSession, seal_key: Any, card_file: Any
) -> None:
    sim = SimReader(card_file.path)
    sim.start(session)
    full = session.handle(tries_read())
    assert isinstance(full, wire.Result)
    assert (full.tries_left, full.last_try_armed) == (3, None)
    certificate = session.handle(wire.BatchCommand(tuple(next(jpki.read_certificate()))))
    assert isinstance(certificate, wire.Result)
    assert (certificate.tries_left, certificate.last_try_armed) == (None, None)
    session.handle(sealed(seal_key, WRONG))
    wrong = session.handle(sealed(seal_key, WRONG))
    assert isinstance(wrong, wire.Result)
    assert (wrong.tries_left, wrong.last_try_armed) == (2, False)  # tries before; now 1
    not_yet = session.handle(tries_read())
    assert isinstance(not_yet, wire.Result)
    assert (not_yet.tries_left, not_yet.last_try_armed) == (1, False)
    retap(sim)
    armed = session.handle(tries_read())
    assert isinstance(armed, wire.Result)
    assert (armed.tries_left, armed.last_try_armed) == (1, True)
    # A data-less VERIFY among other allowed commands: the tries it answered still count.
    steps = (
        *next(jpki.read_certificate())[:3],
        Step(jpki.select_ef(0x18)),
        Step(jpki.tries_left_command(), TRIES_SWS),
        Step(jpki.select_ef(0x0B)),
        Step(jpki.read_binary(0, 4)),
    )
    mixed = session.handle(wire.BatchCommand(steps))
    assert isinstance(mixed, wire.Result) and len(mixed.responses) == len(steps)
    assert (mixed.tries_left, mixed.last_try_armed) == (1, True)
    refused = session.handle(sealed(seal_key, DEMO_PIN))  # armed, not confirmed
    assert isinstance(refused, wire.Error) and (refused.code, refused.tries_left) == (
        "pin_last_try",
        1,
    )
    spent = session.handle(sealed(seal_key, DEMO_PIN, confirmed=True))
    assert isinstance(spent, wire.Result)
    assert (spent.tries_left, spent.last_try_armed) == (1, None)  # now 3: nothing to arm
    assert tries_on(sim) == 3


def test_the_refusal_on_the_wire(
    session: BridgeSession, seal_key: Any, make_card_file: MakeCardFile, tmp_path: Path
) -> None:
    card_with(make_card_file, tmp_path / "c.json", session, 1)
    answer = session.handle(sealed(seal_key, DEMO_PIN, confirmed=True))
    decoded = wire.decode(wire.encode(answer))
    assert isinstance(decoded, wire.Error)
    assert (decoded.code, decoded.tries_left) == (Code.PIN_RETAP.value, 1)


# -- a reset of the card is not a re-tap ---------------------------------------------------


class ResettingLink:
    """The virtual card behind a transport that holds it as PC/SC does, and really
    resets it when a transaction ends with a reset (a new card session for the card,
    but no removal: the reader watcher reports nothing, as pyscard's does not)."""

    def __init__(self, card: VirtualCard) -> None:
        self.card = card
        self.atr = card.power_on()
        self.resets = 0

    def transmit(self, batch: list[Step]) -> list[Response]:
        with self.hold() as send:
            return run_batch(send, batch)

    @contextmanager
    def hold(self, *, reset_after: bool = False) -> Iterator[Callable[[Command], Response]]:
        try:
            yield lambda command: parse_response(self.card.transmit(command.encode()))
        finally:
            if reset_after:
                self.card.reset()
                self.resets += 1


def test_a_reset_of_the_card_is_not_a_retap(
    session: BridgeSession, seal_key: Any, make_card_file: MakeCardFile, tmp_path: Path
) -> None:
    card = VirtualCard.from_file(make_card_file(tmp_path / "c.json", auth_tries_left=1).path)
    link = ResettingLink(card)
    session.add_reader("held reader")
    epoch = session.insert_card("held reader", link.atr, link)
    for _ in range(3):  # each sealed command ends with a reset of the card
        answer = session.handle(sealed(seal_key, DEMO_PIN, confirmed=True))
        assert isinstance(answer, wire.Error) and answer.code == "pin_retap"
    card.reset()  # another application resets it too
    assert code(session.handle(sealed(seal_key, DEMO_PIN, confirmed=True))) == "pin_retap"
    assert link.resets == 4 and card.data.auth_pin.tries_left == 1
    assert session.snapshot().readers[0].card.epoch == epoch  # type: ignore[union-attr]
