"""The card flow's state machine on its own (no I/O): its rules hold whatever sequence of
events a caller feeds it, in any order, twice, late, with the wrong ids.

A Hypothesis rule-based machine drives `Flow` with every event, valid or not, alongside a
model of the card (its tries, whether it was re-tapped since one try was seen) and
checks after each step the rules docs/cardflow.md states. Refusals must be the machine's
own (`CardFlowError`), never another exception.
"""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from webapp.cardflow.errors import CardFlowError, FlowCode
from webapp.cardflow.machine import (
    MAX_PROMPTS,
    Acted,
    Cancelled,
    CardRead,
    CardRemoved,
    Failed,
    Finished,
    Flow,
    FlowRuleError,
    NextCard,
    PinPrompted,
    PinRefused,
    PinSubmitted,
    PinWrong,
    State,
    Verified,
)

KEY = "ab" * 32
OTHER_KEY = "cd" * 32


def new_flow(*, needs_pin: bool = True, idle: float = 60.0) -> Flow:
    return Flow(
        purpose="kiosk", terminal_id=1, needs_pin=needs_pin, idle_seconds=idle, touched_at=0
    )


def prompted(
    tries: int | None = 3, armed: bool = False, command: str = "c1", nonce: str | None = None
) -> PinPrompted:
    return PinPrompted(tries, armed, command, "bridge", "key", nonce or f"nonce-{command}")


# -- examples: the rules one at a time -------------------------------------------------


def test_the_happy_path() -> None:
    flow = new_flow()
    flow.handle(CardRead("R", 7, KEY), 1)
    flow.handle(prompted(), 2)
    assert flow.state is State.PIN_PROMPTED and flow.prompt and not flow.prompt.last_try
    flow.handle(PinSubmitted("c1", False), 3)
    assert flow.state is State.PIN_SENT and flow.prompt is not None
    flow.handle(Verified(KEY, signed=True), 4)
    assert flow.state is State.VERIFIED and flow.signed and flow.prompt is None
    flow.handle(Acted(), 5)
    flow.handle(Finished(), 6)
    assert flow.state is State.DONE


def verified_first_card(cards: int = 2) -> Flow:
    flow = new_flow()
    flow.cards = cards
    flow.handle(CardRead("R", 7, KEY), 1)
    flow.handle(prompted(), 2)
    flow.handle(PinSubmitted("c1", False), 3)
    flow.handle(Verified(KEY, signed=True), 4)
    return flow


def test_a_two_card_flow_moves_to_its_second_card_once_and_never_the_same() -> None:
    flow = verified_first_card()
    assert flow.awaits_next_card
    flow.handle(CardRemoved(7), 5)  # the first card leaves for the second: not an end
    assert flow.state is State.VERIFIED
    with pytest.raises(FlowRuleError) as same:
        flow.handle(NextCard("R", 8, KEY), 6)
    assert same.value.code is FlowCode.SAME_CARD and flow.state is State.VERIFIED
    flow.handle(NextCard("R", 9, OTHER_KEY), 7)
    assert flow.state is State.CARD_READ and flow.first_card == KEY
    assert (flow.epoch, flow.card_key, flow.signed, flow.prompts) == (9, OTHER_KEY, False, 0)
    assert not flow.awaits_next_card
    with pytest.raises(FlowRuleError):  # not before the second card's own PIN
        flow.handle(Verified(OTHER_KEY, signed=False), 8)
    with pytest.raises(CardFlowError):  # the last-try rule, afresh for the second card
        flow.handle(prompted(1, armed=False, command="c2"), 9)
    assert flow.ended and flow.code is FlowCode.PIN_RETAP


def test_no_second_card_before_the_first_cards_pin_nor_in_a_one_card_flow() -> None:
    flow = new_flow()
    flow.cards = 2
    flow.handle(CardRead("R", 7, KEY), 1)
    flow.handle(prompted(), 2)
    with pytest.raises(FlowRuleError):
        flow.handle(NextCard("R", 8, OTHER_KEY), 3)
    single = verified_first_card(cards=1)
    with pytest.raises(FlowRuleError):
        single.handle(NextCard("R", 8, OTHER_KEY), 5)
    single.handle(CardRemoved(7), 6)  # a one-card flow ends when its card leaves
    assert single.code is FlowCode.CARD_REMOVED
    second = verified_first_card()
    second.handle(NextCard("R", 8, OTHER_KEY), 5)
    second.handle(prompted(command="c2"), 6)
    second.handle(PinSubmitted("c2", False), 7)
    second.handle(Verified(OTHER_KEY, signed=True), 8)
    with pytest.raises(FlowRuleError):  # once only
        second.handle(NextCard("R", 9, "ef" * 32), 9)
    assert Flow.from_json(second.to_json()).first_card == KEY


def test_a_wrong_pin_ends_the_prompt_and_a_new_one_needs_a_fresh_read() -> None:
    flow = new_flow()
    flow.handle(CardRead("R", 7, KEY), 1)
    flow.handle(prompted(3), 2)
    flow.handle(PinSubmitted("c1", False), 3)
    flow.handle(PinWrong(2), 4)
    assert flow.state is State.CARD_READ and flow.prompt is None and flow.tries_left == 2
    with pytest.raises(FlowRuleError):
        flow.handle(PinSubmitted("c1", False), 5)  # the old prompt is gone
    flow.handle(prompted(2, command="c2"), 6)
    assert flow.prompt is not None and flow.prompt.command_id == "c2"


@pytest.mark.parametrize(
    ("tries", "armed", "code"), [(0, True, "pin_locked"), (1, False, "pin_retap")]
)
def test_no_prompt_at_zero_nor_at_one_unarmed(tries: int, armed: bool, code: str) -> None:
    flow = new_flow()
    flow.handle(CardRead("R", 7, KEY), 1)
    with pytest.raises(CardFlowError) as ended:
        flow.handle(prompted(tries, armed), 2)
    assert ended.value.code == code and ended.value.final and flow.ended


def test_the_last_try_needs_the_bridge_armed_and_the_citizen_s_confirmation() -> None:
    flow = new_flow()
    flow.handle(CardRead("R", 7, KEY), 1)
    flow.handle(prompted(1, armed=True), 2)
    assert flow.prompt is not None and flow.prompt.last_try
    with pytest.raises(CardFlowError) as unconfirmed:
        flow.handle(PinSubmitted("c1", False), 3)
    assert unconfirmed.value.code == FlowCode.PIN_LAST_TRY and flow.state is State.PIN_PROMPTED
    flow.handle(PinSubmitted("c1", True), 4)
    assert flow.state is State.PIN_SENT


def test_a_verification_from_another_card_ends_it() -> None:
    flow = new_flow()
    flow.handle(CardRead("R", 7, KEY), 1)
    flow.handle(prompted(), 2)
    flow.handle(PinSubmitted("c1", False), 3)
    with pytest.raises(CardFlowError) as other:
        flow.handle(Verified(OTHER_KEY, signed=True), 4)
    assert other.value.code == FlowCode.AUTH_FAILED and flow.ended


def test_without_a_pin_only_when_the_purpose_takes_none() -> None:
    pinned = new_flow()
    pinned.handle(CardRead("R", 7, KEY), 1)
    with pytest.raises(FlowRuleError):
        pinned.handle(Verified(KEY, signed=False), 2)
    free = new_flow(needs_pin=False)
    free.handle(CardRead("R", 7, KEY), 1)
    with pytest.raises(FlowRuleError):
        free.handle(prompted(), 2)
    free.handle(Verified(KEY, signed=False), 3)
    assert free.state is State.VERIFIED and not free.signed


def test_removal_of_our_card_ends_it_another_epoch_does_not() -> None:
    flow = new_flow()
    flow.handle(CardRead("R", 7, KEY), 1)
    flow.handle(CardRemoved(6), 2)
    assert flow.state is State.CARD_READ
    flow.handle(CardRemoved(7), 3)
    assert flow.ended and flow.code == FlowCode.CARD_REMOVED
    with pytest.raises(CardFlowError) as ended:
        flow.handle(prompted(), 4)
    assert ended.value.code == FlowCode.CARD_REMOVED


def test_idle_ends_it_before_anything_else() -> None:
    flow = new_flow(idle=60)
    flow.handle(CardRead("R", 7, KEY), 10)
    flow.handle(prompted(), 69)  # a touch resets the clock
    with pytest.raises(CardFlowError) as idle:
        flow.handle(PinSubmitted("c1", False), 130)
    assert idle.value.code == FlowCode.SESSION_ENDED and flow.ended


def test_a_flow_survives_its_json_round_trip() -> None:
    flow = new_flow()
    flow.handle(CardRead("R", 7, KEY), 1)
    flow.handle(prompted(1, armed=True), 2)
    again = Flow.from_json(flow.to_json())
    assert again.to_json() == flow.to_json() and again.prompt == flow.prompt


# -- the machine, driven by Hypothesis --------------------------------------------------


class CardFlowMachine(RuleBasedStateMachine):
    """Any sequence of events against a model card; the rules hold after each."""

    def __init__(self) -> None:
        super().__init__()
        self.flow = new_flow()
        self.now = 0.0
        self.tries = 3  # the model card
        self.verifies_per_prompt: dict[str, int] = {}
        self.last_prompt: str | None = None
        self.counter = 0
        # Prompts at one try the bridge had not armed, by nonce (command ids may repeat in
        # the model, and a refused prompt event must not taint the prompt still standing).
        self.unarmed: set[str] = set()

    def step(self, event: object) -> None:
        self.now += 1
        before, prompt, epoch = self.flow.state, self.flow.prompt, self.flow.epoch
        signed_before, key_before = self.flow.signed, self.flow.card_key
        idle = self.now - self.flow.touched_at > self.flow.idle_seconds
        accepted = True
        try:
            self.flow.handle(event, self.now)  # type: ignore[arg-type]
        except CardFlowError:
            accepted = False  # refusals are the machine's own
        if self.flow.state is State.PIN_SENT and before is not State.PIN_SENT:
            # A PIN goes only for the prompt that is out, confirmed at the last try.
            assert isinstance(event, PinSubmitted) and prompt is not None
            assert event.command_id == prompt.command_id
            assert event.confirm_last_try or not prompt.last_try
            nonce = prompt.nonce  # one per prompt issued (command ids may repeat here)
            self.verifies_per_prompt[nonce] = self.verifies_per_prompt.get(nonce, 0) + 1
        if isinstance(event, Verified) and accepted:
            assert before is not State.VERIFIED and event.card_key == self.flow.card_key
        if isinstance(event, NextCard) and accepted:
            # A second card only after the first card's PIN, in a two-card flow, never
            # the same card; it starts afresh.
            assert before is State.VERIFIED and signed_before and self.flow.cards == 2
            assert self.flow.first_card == key_before != event.card_key
            assert self.flow.state is State.CARD_READ and not self.flow.signed
        if (
            isinstance(event, CardRemoved)
            and not idle
            and None not in (event.epoch, epoch)
            and event.epoch != epoch
        ):
            assert self.flow.state is before  # another card session's removal: not ours

    @precondition(lambda self: self.flow.ended)
    @rule(
        needs_pin=st.booleans(),
        other_card=st.one_of(st.none(), st.integers(0, 3)),
        cards=st.sampled_from([1, 2]),
    )
    def next_flow(self, needs_pin: bool, other_card: int | None, cards: int) -> None:
        """A new flow: the same card (its tries carry over) or another one."""
        if other_card is not None:
            self.tries = other_card
        self.flow = new_flow(needs_pin=needs_pin)
        self.flow.cards = cards
        self.flow.touched_at = self.now

    @initialize(tries=st.integers(0, 3))
    def a_card(self, tries: int) -> None:
        """The card on the reader, with some tries left."""
        self.tries = tries

    @rule(epoch=st.sampled_from([7, 8]), key=st.sampled_from([KEY, OTHER_KEY]))
    def card_read(self, epoch: int, key: str) -> None:
        self.step(CardRead("R", epoch, key))

    @rule(epoch=st.sampled_from([7, 8, 9]), key=st.sampled_from([KEY, OTHER_KEY]))
    def second_card(self, epoch: int, key: str) -> None:
        """A two-card purpose's next card (the model card's tries: a new card's own)."""
        self.step(NextCard("R", epoch, key))

    @rule(armed=st.booleans(), fresh=st.booleans())
    def prompt(self, armed: bool, fresh: bool) -> None:
        self.counter += 1
        command = f"c{self.counter}" if fresh else (self.last_prompt or "c0")
        self.last_prompt = command
        nonce = f"n{self.counter}"
        if self.tries == 1 and not armed:
            self.unarmed.add(nonce)
        self.step(prompted(self.tries, armed, command, nonce=nonce))

    @rule(confirm=st.booleans(), stale=st.booleans())
    def submit(self, confirm: bool, stale: bool) -> None:
        command = "c-stale" if stale or self.flow.prompt is None else self.flow.prompt.command_id
        self.step(PinSubmitted(command, confirm))

    @rule()
    def card_says_wrong(self) -> None:
        if self.flow.state is State.PIN_SENT and self.tries > 0:
            self.tries -= 1
        self.step(PinWrong(self.tries))

    @rule(key=st.sampled_from([KEY, OTHER_KEY]), signed=st.booleans())
    def card_says_right(self, key: str, signed: bool) -> None:
        if self.flow.state is State.PIN_SENT and key == self.flow.card_key and signed:
            self.tries = 3
        self.step(Verified(key, signed))

    @rule(code=st.sampled_from([FlowCode.PIN_RETAP, FlowCode.PIN_LAST_TRY, FlowCode.PIN_LOCKED]))
    def bridge_refuses(self, code: FlowCode) -> None:
        self.step(PinRefused(code, self.tries))

    @rule(code=st.sampled_from([FlowCode.TIMEOUT, FlowCode.BRIDGE_OFFLINE, FlowCode.BUSY]))
    def something_fails(self, code: FlowCode) -> None:
        self.step(Failed(code))

    @rule(epoch=st.sampled_from([None, 7, 8]))
    def removed(self, epoch: int | None) -> None:
        self.step(CardRemoved(epoch))

    @rule()
    def acted(self) -> None:
        self.step(Acted())

    @rule()
    def finished(self) -> None:
        self.step(Finished())

    @rule()
    def cancelled(self) -> None:
        self.step(Cancelled())

    @precondition(lambda self: not self.flow.ended)
    @rule(seconds=st.sampled_from([1.0, 30.0, 61.0]))
    def time_passes(self, seconds: float) -> None:
        self.now += seconds

    # -- the rules ---------------------------------------------------------------------

    @invariant()
    def a_prompt_exactly_in_the_prompted_and_sent_states(self) -> None:
        assert (self.flow.prompt is not None) == (
            self.flow.state in (State.PIN_PROMPTED, State.PIN_SENT)
        )

    @invariant()
    def no_prompt_at_zero_and_at_one_only_when_armed(self) -> None:
        prompt = self.flow.prompt
        if prompt is not None:
            assert prompt.tries_left != 0
            assert prompt.last_try == (prompt.tries_left == 1)

    @invariant()
    def the_last_try_only_when_the_bridge_armed_it(self) -> None:
        prompt = self.flow.prompt
        assert prompt is None or not (prompt.last_try and prompt.nonce in self.unarmed)

    @invariant()
    def one_pin_per_prompt(self) -> None:
        assert all(count <= 1 for count in self.verifies_per_prompt.values())

    @invariant()
    def the_card_is_pinned_once_read(self) -> None:
        if self.flow.state is not State.WAITING and self.flow.epoch is not None:
            assert self.flow.card_key in (KEY, OTHER_KEY)

    @invariant()
    def verified_means_the_card_that_was_read_with_its_pin(self) -> None:
        if self.flow.state in (State.VERIFIED, State.DONE):
            assert self.flow.signed == self.flow.needs_pin

    @invariant()
    def bounded_prompts_and_ended_is_final(self) -> None:
        assert self.flow.prompts <= MAX_PROMPTS
        if self.flow.ended:
            assert self.flow.code is not None and self.flow.prompt is None

    @invariant()
    def a_first_card_only_in_a_two_card_flow_and_never_the_second(self) -> None:
        if self.flow.first_card is not None:
            assert self.flow.cards == 2 and self.flow.first_card != self.flow.card_key

    @invariant()
    def serializable(self) -> None:
        assert Flow.from_json(self.flow.to_json()).to_json() == self.flow.to_json()


CardFlowMachine.TestCase.settings = settings(max_examples=500, stateful_step_count=60)
TestCardFlowMachine = CardFlowMachine.TestCase
