"""Property: whatever a script sends, a card's last PIN try goes only after a human re-tap.

A Hypothesis state machine drives a real `BridgeSession` over the virtual card, the way
the platform (or a script holding a staff cookie and the bridge's public sealing key)
can: tries reads, sealed PINs right or wrong with `confirmed` true or false, batches
that mix a tries read with certificate reads, replayed commands, a transfer that fails;
the way another application on the same card can: verify the right PIN, reset the
card; and the way only a person can: the card taken off the reader and put back, the
reader unplugged and plugged back in. The reader holds the card as PC/SC does (one
transaction per batch or `hold`) and really resets the card when a transaction ends
with a reset, and it logs every APDU that reaches the card.

Invariants, read off the card itself and that log:
(a) the attempt that spends the last try goes only in a card session that began
    strictly after the one in which the card was first at one try, and at most once
    per card session;
(b) without a card put back on the reader, the card's counter never reaches 0;
(c) every VERIFY with data comes right after a tries read, in the same transaction;
and every command's outcome (sent, pin_retap, pin_last_try, pin_locked) and the
`last_try_armed` it reports match a model of the rule in docs/bridge.md, so a bridge that
never let the last try go at all would fail too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from bridge import jpki, wire
from bridge.apdu import Command, Response, parse_response
from bridge.errors import Code, TransportError
from bridge.firewall import tries_from_sw
from bridge.seal import SealContext, generate_device_key, seal_pin
from bridge.session import BridgeSession
from bridge.transport import Batch, Step, run_batch
from bridge.vcard.card import VirtualCard
from bridge.vcard.cardfile import card_data_from_issued
from tests.fixtures.cards import DEMO_PIN, DEMO_SIGN_PASSWORD

BRIDGE_ID = "brg_machine"
READER = "Machine Reader 00 00"
TRIES_SWS = frozenset({0x9000, 0x6984} | {0x63C0 | n for n in range(16)})
PINS = st.sampled_from([DEMO_PIN, "0000", "9999", "4321"])
TRIES_READ = tuple(next(jpki.read_pin_tries()))
CERT_HEAD = (Step(jpki.select_jpki()), Step(jpki.select_ef(0x0A)), Step(jpki.read_binary(0, 4)))
TRIES_ONLY = (Step(jpki.select_ef(0x18)), Step(jpki.tries_left_command(), TRIES_SWS))
MIXED = {
    "tries then certificate": (
        Step(jpki.select_jpki()),
        *TRIES_ONLY,
        Step(jpki.select_ef(0x0B)),
        Step(jpki.read_binary(0, 4)),
    ),
    "certificate then tries": (*CERT_HEAD, *TRIES_ONLY),
    "certificate, tries, certificate": (*CERT_HEAD, *TRIES_ONLY, *CERT_HEAD[1:]),
    "certificate only": CERT_HEAD,
}
SIGN = (Step(jpki.select_ef(0x17)), Step(jpki.sign_command(jpki.sha256_digest_info(b"m"))))


@dataclass(frozen=True)
class Sent:
    """One APDU that reached the card: card session, transaction, answer, counter."""

    epoch: int
    transaction: int
    command: Command
    sw: int
    before: int
    after: int
    ours: bool = True  # False: another application on the same card

    @property
    def verify(self) -> bool:
        return self.ours and self.command.ins == 0x20 and bool(self.command.data)

    @property
    def tries_read(self) -> bool:
        return self.ours and self.command.encode() == bytes.fromhex("00200080")


class Reader:
    """The card on a reader, held as PC/SC holds it; logs what reaches the card."""

    def __init__(self, machine: LastTryMachine, card: VirtualCard) -> None:
        self.machine = machine
        self.card = card
        self.atr = card.power_on()  # put on the reader: a new card session
        self.epoch = -1
        self.fail_next = False  # the next transaction's first transfer fails
        self.fail_verify = False  # the next VERIFY with data fails before the card

    def transmit(self, batch: Batch) -> list[Response]:
        with self.hold() as send:
            return run_batch(send, batch)

    @contextmanager
    def hold(self, *, reset_after: bool = False) -> Iterator[Callable[[Command], Response]]:
        self.machine.transactions += 1
        number = self.machine.transactions
        fail, self.fail_next = self.fail_next, False

        def send(command: Command) -> Response:
            nonlocal fail
            # A failed transfer here fails before anything reaches the card.
            if fail:
                fail = False
                raise TransportError("the reader hiccupped", code=Code.TIMEOUT)
            if self.fail_verify and command.ins == 0x20 and command.data:
                self.fail_verify = False
                raise TransportError("the reader hiccupped", code=Code.TIMEOUT)
            before = self.card.data.auth_pin.tries_left
            response = parse_response(self.card.transmit(command.encode()))
            after = self.card.data.auth_pin.tries_left
            self.machine.log.append(Sent(self.epoch, number, command, response.sw, before, after))
            return response

        try:
            yield send
        finally:
            if reset_after:
                self.card.reset()  # not an insertion: the watcher reports nothing

    def close(self) -> None:
        self.card.power_off()


class LastTryMachine(RuleBasedStateMachine):
    """One card, one reader, one bridge; a script at the platform, a person at the reader."""

    issued: Any = None  # set by the test from the session's demo J-LIS

    def __init__(self) -> None:
        super().__init__()
        self.key = generate_device_key()
        self.session = BridgeSession(BRIDGE_ID, self.key, clock=lambda: 1000.0)
        self.card: VirtualCard | None = None
        self.reader: Reader | None = None
        self.plugged = False
        self.log: list[Sent] = []
        self.transactions = 0
        self.last_command: wire.VerifyCommand | None = None
        # The rule's model (docs/bridge.md, "The last try").
        self.epoch: int | None = None  # the card session on the reader
        self.first_seen: int | None = None
        # What the invariants remember, from the card and the log.
        self.put_back = False
        self.episode: int | None = None  # card session in which the counter was first 1
        self.spent_in: set[int] = set()
        self.checked = 0

    @initialize(tries=st.sampled_from([3, 2, 1]))
    def start(self, tries: int) -> None:
        data = card_data_from_issued(self.issued, pin=DEMO_PIN, sign_password=DEMO_SIGN_PASSWORD)
        data.auth_pin.tries_left = tries
        self.card = VirtualCard(data)
        self.plug_reader()

    # -- a person at the reader --------------------------------------------------------

    def _put_card_on(self) -> None:
        assert self.card is not None
        self.reader = Reader(self, self.card)
        self.reader.epoch = self.session.insert_card(READER, self.reader.atr, self.reader)
        self.epoch = self.reader.epoch

    # One rule, so that the script's rules are drawn as often as all of these together;
    # the re-tap (off and back on at once) is drawn most.
    @rule(
        action=st.sampled_from(
            ["re-tap"] * 4 + ["off", "on", "unplug", "plug", "hiccup", "hiccup at VERIFY"]
        )
    )
    def person_at_the_reader(self, action: str) -> None:
        if action == "re-tap" and self.reader is not None:
            self.take_card_off()
            self.put_card_back()
        elif action == "off" and self.reader is not None:
            self.take_card_off()
        elif action in ("on", "re-tap") and self.plugged and self.reader is None:
            self.put_card_back()
        elif action == "unplug" and self.plugged:
            self.unplug_reader()
        elif action == "plug" and not self.plugged:
            self.plug_reader()
        elif action == "hiccup" and self.reader is not None:
            self.reader.fail_next = True
        elif action == "hiccup at VERIFY" and self.reader is not None:
            self.reader.fail_verify = True

    @precondition(lambda self: self.reader is not None)
    @rule(action=st.sampled_from(["right PIN", "reset"]))
    def another_application(self, action: str) -> None:
        """The citizen's own JPKI software on the same card, between our transactions:
        it verifies the right PIN (the counter is full again, unseen by the bridge until
        its next tries read) or resets the card. Neither is a re-tap."""
        assert self.card is not None and self.reader is not None
        if action == "reset":
            self.card.reset()
            return
        for command in (jpki.select_jpki(), jpki.select_ef(0x18), jpki.verify_command(DEMO_PIN)):
            before = self.card.data.auth_pin.tries_left
            sw = parse_response(self.card.transmit(command.encode())).sw
            after = self.card.data.auth_pin.tries_left
            self.log.append(Sent(self.reader.epoch, 0, command, sw, before, after, ours=False))

    def take_card_off(self) -> None:
        self.session.remove_card(READER)
        self.reader = None
        self.epoch = None

    def put_card_back(self) -> None:
        self._put_card_on()
        self.put_back = True

    def unplug_reader(self) -> None:
        self.session.remove_reader(READER)
        self.plugged, self.reader, self.epoch = False, None, None
        self.first_seen = None

    def plug_reader(self) -> None:
        """The reader comes (back) with the card on it: a new epoch, but no record."""
        self.session.add_reader(READER)
        self.plugged = True
        self._put_card_on()

    # -- a script at the platform ------------------------------------------------------

    @rule(shape=st.sampled_from(["tries read"] * 3 + sorted(MIXED)))
    def batch(self, shape: str) -> None:
        self._batch(MIXED.get(shape, TRIES_READ))

    @rule(pin=PINS, confirmed=st.booleans(), sign=st.booleans())
    def sealed_verify(self, pin: str, confirmed: bool, sign: bool) -> None:
        command_id = wire.new_id()
        envelope = seal_pin(self.key.public_key(), pin, SealContext(BRIDGE_ID, command_id))
        command = wire.VerifyCommand(
            envelope, confirmed=confirmed, then=SIGN if sign else (), id=command_id
        )
        self.last_command = command
        start = len(self.log)
        failing = self._failing()
        failing_verify = self.reader is not None and self.reader.fail_verify
        answer = self.session.handle(command)
        new = self.log[start:]
        if self._absent(answer, new) or self._failed(failing, answer, new):
            return
        reads = [e for e in new if e.tries_read]
        assert len(reads) == 1, new
        tries = tries_from_sw(reads[0].sw)
        self._observe(tries)
        expected = self._guard(tries, confirmed)
        event(f"sealed PIN at {tries} tries: {expected}")
        verifies = [e for e in new if e.verify]
        if expected != "sent":
            assert isinstance(answer, wire.Error), answer
            assert (answer.code, answer.tries_left) == (expected, tries)
            assert not verifies
            return
        if failing_verify:  # the VERIFY was let go (and its arming used up), then failed
            assert isinstance(answer, wire.Error) and answer.code == "timeout", answer
            assert not verifies
            return
        assert isinstance(answer, wire.Result), answer
        assert answer.tries_left == tries
        [verify] = verifies
        assert verify.sw == (0x9000 if pin == DEMO_PIN else 0x63C0 | max((tries or 3) - 1, 0))
        seen = tries_from_sw(verify.sw)
        self._observe(seen)
        assert answer.last_try_armed == (self._armed() if seen == 1 else None)

    @precondition(lambda self: self.last_command is not None)
    @rule(same_id=st.booleans())
    def replay(self, same_id: bool) -> None:
        """The last sealed PIN again: under its own id (a replay) or another one."""
        assert self.last_command is not None
        previous = self.last_command
        command = previous if same_id else wire.VerifyCommand(previous.sealed, confirmed=True)
        start = len(self.log)
        answer = self.session.handle(command)
        if not same_id and self._absent(answer, self.log[start:]):
            return  # the card is looked for before the seal is opened
        assert isinstance(answer, wire.Error) and answer.code == "refused", answer
        assert len(self.log) == start

    # -- the model -----------------------------------------------------------------------

    def _batch(self, steps: tuple[Step, ...]) -> None:
        start = len(self.log)
        failing = self._failing()
        answer = self.session.handle(wire.BatchCommand(steps))
        new = self.log[start:]
        if self._absent(answer, new) or self._failed(failing, answer, new):
            return
        assert isinstance(answer, wire.Result), answer
        assert len(answer.responses) == len(steps)
        reads = [e for e in new if e.tries_read]
        for read in reads:
            self._observe(tries_from_sw(read.sw))
        last = tries_from_sw(reads[-1].sw) if reads else None
        assert answer.tries_left == last
        assert answer.last_try_armed == (self._armed() if last == 1 else None)

    def _absent(self, answer: wire.Result | wire.Error, new: list[Sent]) -> bool:
        """No reader or no card: the command fails before anything is sent."""
        if self.reader is not None:
            return False
        assert isinstance(answer, wire.Error) and not new
        assert answer.code == ("no_card" if self.plugged else "reader_missing"), answer
        return True

    def _failing(self) -> bool:
        return self.reader is not None and self.reader.fail_next

    def _failed(self, failing: bool, answer: wire.Result | wire.Error, new: list[Sent]) -> bool:
        if not failing:
            return False
        assert isinstance(answer, wire.Error) and answer.code == "timeout", answer
        assert not new
        return True

    def _observe(self, tries: int | None) -> None:
        if tries == 1:
            self.first_seen = self.first_seen if self.first_seen is not None else self.epoch
        else:
            self.first_seen = None

    def _armed(self) -> bool:
        return (
            self.first_seen is not None and self.epoch is not None and self.first_seen < self.epoch
        )

    def _guard(self, tries: int | None, confirmed: bool) -> str:
        if tries == 0:
            return Code.PIN_LOCKED.value
        if tries != 1:
            return "sent"
        if not self._armed():
            return Code.PIN_RETAP.value
        if not confirmed:
            return Code.PIN_LAST_TRY.value
        self.first_seen = None  # used up before the VERIFY leaves
        return "sent"

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def the_log_keeps_the_rules(self) -> None:
        for index in range(self.checked, len(self.log)):
            entry = self.log[index]
            if entry.verify:
                # (c) a fresh tries read right before, in the same transaction
                previous = self.log[index - 1] if index else None
                assert previous is not None and previous.tries_read, entry
                assert (previous.epoch, previous.transaction) == (entry.epoch, entry.transaction)
            if self.episode is None and entry.after == 1:
                self.episode = entry.epoch  # the card session that first showed one try
            if entry.verify and entry.before == 1:
                # (a) the last try: in a later card session than the first one-try one,
                # once per card session
                assert self.episode is not None and entry.epoch > self.episode, entry
                assert entry.epoch not in self.spent_in, entry
                self.spent_in.add(entry.epoch)
            if entry.after != 1:
                self.episode = None
        self.checked = len(self.log)

    @invariant()
    def no_card_locked_without_a_hand(self) -> None:
        # (b)
        if self.card is not None and not self.put_back:
            assert self.card.data.auth_pin.tries_left > 0

    @invariant()
    def epochs_only_change_with_a_card_put_down(self) -> None:
        readers = self.session.snapshot().readers
        if not self.plugged:
            assert readers == ()
            return
        [state] = readers
        assert (state.card.epoch if state.card else None) == self.epoch
        assert self.session.last_try.first_seen(READER) == self.first_seen


def test_the_last_try_needs_a_human_retap(issue_identity: Any) -> None:
    class Machine(LastTryMachine):
        issued = issue_identity()

    run_state_machine_as_test(
        Machine, settings=settings(max_examples=300, stateful_step_count=40, deadline=None)
    )
