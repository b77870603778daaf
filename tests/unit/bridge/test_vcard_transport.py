"""VirtualCardTransport: the batch rule, card removal, re-insertion."""

from __future__ import annotations

import pytest

from bridge.apdu import Command, parse_command
from bridge.errors import Code, TransportError
from bridge.transport import Step
from bridge.vcard.card import ATR, VirtualCard
from bridge.vcard.transport import VirtualCardTransport
from tests.fixtures.cards import SELECT_JPKI, DemoCard, select_ef, verify


def step(apdu: str, *proceed_on: int) -> Step:
    command = parse_command(bytes.fromhex(apdu))
    return Step(command, frozenset(proceed_on)) if proceed_on else Step(command)


READ4 = "00B0000004"


def test_powers_the_card_on(virtual_card: VirtualCard) -> None:
    virtual_card.power_off()
    transport = VirtualCardTransport(virtual_card)
    assert transport.atr == ATR and virtual_card.powered


def test_batch_runs_in_order(vcard_transport: VirtualCardTransport, card_file: DemoCard) -> None:
    responses = vcard_transport.transmit([step(SELECT_JPKI), step(select_ef("000A")), step(READ4)])
    assert [r.sw for r in responses] == [0x9000] * 3
    assert responses[2].data == card_file.issued.auth_cert_der[:4]
    assert vcard_transport.transmit_calls == 1 and vcard_transport.apdu_count == 3


def test_batch_stops_after_first_unexpected_sw(vcard_transport: VirtualCardTransport) -> None:
    responses = vcard_transport.transmit([step(SELECT_JPKI), step(select_ef("0099")), step(READ4)])
    assert [r.sw for r in responses] == [0x9000, 0x6A82]
    assert len(vcard_transport.sent) == 2


def test_proceed_on_lets_the_batch_go_on(vcard_transport: VirtualCardTransport) -> None:
    responses = vcard_transport.transmit(
        [step(SELECT_JPKI), step(select_ef("0099"), 0x6A82), step(select_ef("000A"))]
    )
    assert [r.sw for r in responses] == [0x9000, 0x6A82, 0x9000]


def test_removed_card(vcard_transport: VirtualCardTransport, virtual_card: VirtualCard) -> None:
    vcard_transport.remove()
    assert not virtual_card.powered
    with pytest.raises(TransportError) as caught:
        vcard_transport.transmit([step(SELECT_JPKI)])
    assert caught.value.code == Code.CARD_REMOVED


def test_remove_after_n_apdus(virtual_card: VirtualCard) -> None:
    transport = VirtualCardTransport(virtual_card, remove_after=2)
    before = virtual_card.apdu_count
    with pytest.raises(TransportError) as caught:
        transport.transmit([step(SELECT_JPKI), step(select_ef("000A")), step(READ4)])
    assert caught.value.code == Code.CARD_REMOVED
    assert virtual_card.apdu_count - before == 2 and transport.removed


def test_insert_again_is_a_new_session(virtual_card: VirtualCard) -> None:
    transport = VirtualCardTransport(virtual_card)
    transport.transmit([step(SELECT_JPKI), step(select_ef("0018")), step(verify("1234"))])
    transport.remove()
    assert transport.insert() == ATR
    responses = transport.transmit(
        [step(SELECT_JPKI), step(select_ef("0018")), step("00200080", 0x63C3)]
    )
    assert responses[-1].sw == 0x63C3  # verified state gone with the power


def test_sent_commands_are_recorded_without_printing_data(
    vcard_transport: VirtualCardTransport,
) -> None:
    vcard_transport.transmit([step(SELECT_JPKI), step(select_ef("0018")), step(verify("1234"))])
    assert vcard_transport.sent[2] == Command(0x00, 0x20, 0x00, 0x80, b"1234")
    assert "1234" not in repr(vcard_transport.sent)
