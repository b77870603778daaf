"""The counter over the real path: tab -> platform -> bus -> bridge -> card. Without a PIN
the platform looks the tapped card up by itself and pushes the number (the tab's status
poll shows what was pushed); with a PIN, and for staff-assisted linking, the tab runs the
card flow's API (/flow)."""

from __future__ import annotations

import queue
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from tests.fixtures.counter import PIN, Counter
from tests.support.flows import complete, error_code
from webapp import db
from webapp.identity import counts
from webapp.identity.models import LookupCount, ServiceLink, Verification
from webapp.library_demo import PATRONS, DemoLibrary
from webapp.providers.models import Provider
from webapp.sip2.demo import connect_demo_library
from webapp.terminals.registry import events_channel


def lookups(counter: Counter) -> int:
    with counter.platform.app.app_context(), db.new_session() as s:
        counts.flush(s)  # the worker's tally, written as every FLUSH_SECONDS
        return sum(s.scalars(select(LookupCount.count)))


def test_mode_a_pushes_the_number(counter: Counter) -> None:
    card = counter.card()
    counter.register(card, "20240001")
    counter.insert(card)
    event = counter.pushed()
    assert event["type"] == "number" and "error" not in event
    assert event["result"]["mode"] == "A" and event["result"]["number"] == "20240001"
    assert counter.pushed() == event  # once per tap: polling again looks nothing up
    assert lookups(counter) == 1


def test_mode_b_draws_the_nw7_barcode_with_the_library_check(counter: Counter) -> None:
    counter.configure(mode="B", symbology="nw7", nw7_start="C", nw7_stop="C", barcode_check="mod16")
    card = counter.card()
    counter.register(card, "1234567890")
    counter.insert(card)
    result = counter.pushed()["result"]
    assert result["barcode_text"] == "C1234567890+C"
    assert result["barcode_svg"].startswith("<svg")


def test_mode_c_types_through_the_bridge_once(counter: Counter) -> None:
    counter.configure(mode="C", keyboard_suffix="tab")
    card = counter.card()
    counter.register(card, "20240002")
    counter.insert(card)
    result = counter.pushed()["result"]
    assert result["typed"] is True and result["suffix_sign"] == "⇥"
    counter.pushed()
    assert counter.keyboard.typed == ["20240002\t"]


def test_not_registered_and_no_link_are_distinct(counter: Counter) -> None:
    stranger = counter.card("stranger")
    counter.insert(stranger)
    error = counter.pushed()["error"]
    assert error["code"] == "not_registered" and error["final"]
    assert "kiosk" in error["action"] or "キオスク" in error["action"]
    assert not error.get("offer_link")
    counter.register(stranger)
    counter.insert(stranger)  # tapped again
    error = counter.pushed()["error"]
    assert error["code"] == "no_link" and error["offer_link"] is True
    assert lookups(counter) == 0  # failed lookups are not counted


def test_expired_and_revoked_certificates(counter: Counter) -> None:
    past = datetime.now(UTC) - timedelta(days=400)
    lost = counter.card("lost")
    counter.jlis.revoke(lost.issued.auth_cert_der)  # before the platform loads the CRL
    old = counter.card("old", not_before=past, not_after=past + timedelta(days=30))
    counter.insert(old)
    assert counter.pushed()["error"]["code"] == "expired"
    counter.insert(lost)
    error = counter.pushed()["error"]
    assert error["code"] == "revoked" and error["tone"] == "error"


def test_nothing_is_looked_up_without_a_tab(counter: Counter) -> None:
    card = counter.card()
    counter.register(card, "20240009")
    counter.insert(card)  # no tab has polled or listened yet: nobody to show it to
    push = counter.platform.app.extensions["counter_push"]
    with counter.platform.app.app_context():
        assert not push.lookup(counter.terminal_id, None, None)
    assert lookups(counter) == 0
    assert counter.pushed()["result"]["number"] == "20240009"  # the tab arrives
    assert lookups(counter) == 1


def test_bridge_offline(counter: Counter) -> None:
    status = counter.client.get("/terminal/status").get_json()
    assert status["bridge_online"] is False and status["card"] is None
    response = counter.begin("counter_lookup")
    assert response.status_code == 503
    error = response.get_json()["error"]
    assert error["code"] == "bridge_offline" and error["tone"] == "offline"


def test_pin_mode_asks_the_holder_then_shows_the_number(counter: Counter) -> None:
    counter.configure(mode="A", pin_required=True)
    card = counter.card()
    counter.register(card, "20240004")
    counter.insert(card)
    event = counter.pushed()  # the platform asks for the holder's PIN: nothing looked up
    assert event["needs_pin"] is True and "result" not in event and "error" not in event
    assert lookups(counter) == 0
    reply = counter.begin("counter_lookup").get_json()
    assert reply["flow"]["purpose"] == "counter_lookup" and reply["pin"]["tries_left"] == 3
    wrong = complete(counter.client, reply["pin"], "9999")
    error = wrong.get_json()["error"]
    assert error["code"] == "wrong_pin" and error["tries_left"] == 2 and error["pin"]
    body = complete(counter.client, error["pin"]).get_json()
    assert body["flow"]["state"] == "done"
    assert body["result"]["presentation"]["number"] == "20240004"


def test_staff_assisted_linking(counter: Counter) -> None:
    card = counter.card()
    counter.register(card)
    counter.insert(card)
    assert counter.pushed()["error"]["code"] == "no_link"
    refused = counter.begin("counter_link", number="2024 0005", terms_accepted=False)
    assert error_code(refused) == "terms_not_accepted" and refused.status_code == 422
    bad = counter.begin("counter_link", number="12", terms_accepted=True)
    assert error_code(bad) == "number_invalid" and not bad.get_json()["error"]["final"]
    reply = counter.begin("counter_link", number="2024 0005", terms_accepted=True).get_json()
    assert reply["flow"]["purpose"] == "counter_link"
    body = complete(counter.client, reply["pin"]).get_json()
    assert body["result"]["linked"] is True
    presentation = body["result"]["presentation"]
    assert presentation["number"] == "20240005" and presentation["verification"] == "staff"
    with counter.platform.app.app_context(), db.new_session() as s:
        link = s.scalar(select(ServiceLink))
        assert link is not None and link.verified and link.customer_number == "20240005"


def test_pin_without_a_pending_step_is_refused(counter: Counter) -> None:
    response = counter.client.post(
        "/flow/pin/complete", json={"sealed": {"v": 1}, "command_id": "x"}
    )
    assert response.status_code == 409 and error_code(response) == "session_ended"
    assert counter.client.post("/flow/pin/complete", json={}).status_code == 400


def test_pages_need_staff_and_a_counter_terminal(counter: Counter) -> None:
    page = counter.client.get("/counter/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'id="counter"' in html and "counter.js" in html
    anonymous = counter.platform.app.test_client()
    assert anonymous.get("/counter/").status_code == 302
    assert anonymous.post("/flow/begin", json={"purpose": "counter_lookup"}).status_code == 401
    assert anonymous.get("/terminal/status").status_code == 401


def test_pin_locked_card_is_refused_before_any_verify(counter: Counter) -> None:
    counter.configure(mode="A", pin_required=True)
    card = counter.card("locked", locked=True)
    counter.register(card, "20240006")
    counter.insert(card)
    error = counter.begin("counter_lookup").get_json()["error"]
    assert error["code"] == "pin_locked" and error["tone"] == "error" and error["final"]


def test_mode_c_without_a_keyboard_shows_the_number_instead(counter: Counter) -> None:
    counter.configure(mode="C")
    counter.keyboard = None  # the bridge's machine has no keyboard output
    card = counter.card()
    counter.register(card, "20240007")
    counter.insert(card)
    event = counter.pushed()
    assert event["result"]["typed"] is False and event["result"]["number"] == "20240007"
    assert event["notice"]["code"] == "keyboard_unavailable" and event["notice"]["title"]


def test_link_refuses_a_number_already_taken(counter: Counter) -> None:
    holder, other = counter.card("holder"), counter.card("other")
    counter.register(holder, "20240008")
    counter.register(other)
    counter.insert(other)
    reply = counter.begin("counter_link", number="20240008", terms_accepted=True).get_json()
    taken = complete(counter.client, reply["pin"], PIN)
    assert error_code(taken) == "number_taken" and taken.get_json()["error"]["final"]


def link_of(counter: Counter, mykey_id: str) -> ServiceLink | None:
    with counter.platform.app.app_context(), db.new_session() as s:
        return s.scalar(select(ServiceLink).where(ServiceLink.mykey_id == mykey_id))


@pytest.mark.parametrize("mode", ["A", "B", "C"])
def test_an_unverified_claim_is_shown_with_a_notice_never_typed_nor_scannable(
    counter: Counter, mode: str
) -> None:
    counter.configure(mode=mode, symbology="nw7", nw7_start="A", nw7_stop="A")
    card = counter.card()
    counter.register(card, "20240011", verification=Verification.UNVERIFIED)
    counter.insert(card)
    event = counter.pushed()
    result = event["result"]
    assert result["number"] == "20240011" and result["verified"] is False
    assert result["mode"] == "A" and result["barcode_svg"] is None and result["typed"] is False
    assert event["notice"]["code"] == "unverified" and event["notice"]["title"]
    assert counter.keyboard.typed == []  # mode C typed nothing


def test_staff_verify_a_claim_with_the_holders_pin_then_it_is_typed(counter: Counter) -> None:
    counter.configure(mode="C", keyboard_suffix="enter")
    card = counter.card()
    mykey = counter.register(card, "20240012", verification=Verification.UNVERIFIED)
    counter.insert(card)
    assert counter.pushed()["result"]["verified"] is False
    # The number the tab showed must be the claimed one (what staff compared).
    other = counter.begin("counter_verify", number="20240013").get_json()
    refused = complete(counter.client, other["pin"], PIN)
    assert error_code(refused) == "no_link"
    reply = counter.begin("counter_verify", number="20240012").get_json()
    assert reply["flow"]["purpose"] == "counter_verify" and reply["pin"]
    body = complete(counter.client, reply["pin"], PIN).get_json()
    presentation = body["result"]["presentation"]
    assert body["result"]["verified_now"] is True
    assert presentation["verification"] == "staff" and presentation["typed"] is True
    assert counter.keyboard.typed == ["20240012\n"]
    link = link_of(counter, mykey)
    assert link is not None and link.verification == "staff" and link.verified_at is not None


def test_staff_cannot_verify_a_number_another_citizen_holds_verified(counter: Counter) -> None:
    owner, squatter = counter.card("owner"), counter.card("squatter")
    counter.register(owner, "20240014")  # verified (staff)
    mykey = counter.register(squatter, "20240014", verification=Verification.UNVERIFIED)
    counter.insert(squatter)
    assert counter.pushed()["result"]["verified"] is False
    reply = counter.begin("counter_verify", number="20240014").get_json()
    taken = complete(counter.client, reply["pin"], PIN)
    assert error_code(taken) == "number_taken"
    link = link_of(counter, mykey)
    assert link is not None and link.verification == "unverified"


def test_verify_needs_the_pin_even_where_lookups_do_not(counter: Counter) -> None:
    card = counter.card()
    counter.register(card, "20240015", verification=Verification.UNVERIFIED)
    counter.insert(card)
    counter.pushed()
    reply = counter.begin("counter_verify", number="20240015").get_json()
    assert reply.get("pin"), reply  # the PIN prompt, never a result without it


def test_the_library_systems_word_on_the_patron_follows_the_number(
    counter: Counter, demo_library: DemoLibrary
) -> None:
    """With SIP2, the counter's tabs hear what the library system says about the patron
    (flags only, nothing stored); an unverified claim is never asked about."""
    with counter.platform.app.app_context(), db.new_session() as s:
        provider = s.get(Provider, counter.provider_id)
        assert provider is not None
        provider.kind = "library"
        s.commit()
        connect_demo_library(
            s, provider, counter.terminal_id, host=demo_library.host, port=demo_library.port
        )
    heard: queue.Queue[dict[str, Any]] = queue.Queue()
    counter.platform.bus.subscribe(events_channel(counter.terminal_id), heard.put)
    expired = next(p for p in PATRONS if p.note.startswith("expired"))
    card = counter.card()
    counter.register(card, expired.number)
    counter.insert(card)
    assert counter.pushed()["result"]["number"] == expired.number
    event = next_of(heard, "patron_status")
    assert event["number"] == expired.number
    assert event["patron"]["available"] is True and event["patron"]["valid_patron"] is True
    assert "charge_privileges_denied" in event["patron"]["flags"]
    assert set(demo_library.commands()) <= {"93", "99", "23"}
    # A claim is not asked about: the library system hears nothing more.
    asked = demo_library.commands()["23"]
    claim = counter.card("claim")
    counter.register(claim, PATRONS[1].number, verification=Verification.UNVERIFIED)
    counter.insert(claim)
    assert counter.pushed()["result"]["verified"] is False
    assert demo_library.commands()["23"] == asked


def next_of(q: queue.Queue[dict[str, Any]], kind: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        event = q.get(timeout=max(0.01, deadline - time.monotonic()))
        if event.get("type") == kind:
            return event


def _reader_status(counter: Counter, online: bool) -> dict[str, Any]:
    """The tab's status poll once the bridge is (or is not) online."""
    deadline = time.monotonic() + 10
    while True:
        status: dict[str, Any] = counter.client.get("/terminal/status").get_json()
        if status["bridge_online"] is online:
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.02)


def test_offline_comes_back_but_a_revoked_bridge_must_be_paired_again(counter: Counter) -> None:
    card = counter.card()
    counter.insert(card)
    _reader_status(counter, True)
    counter.stop()  # the PC or the network: the bridge reconnects by itself later
    assert _reader_status(counter, False)["bridge_paired"] is True
    refused = counter.begin("counter_lookup")
    assert refused.status_code == 503 and error_code(refused) == "bridge_offline"
    assert "自動で元に戻ります" in refused.get_json()["error"]["action"]

    status, _ = counter.platform.admin(
        "POST", f"/api/v1/admin/bridges/{counter.identity.bridge_id}/revoke"
    )
    assert status == 200
    assert _reader_status(counter, False)["bridge_paired"] is False
    refused = counter.begin("counter_lookup")
    body = refused.get_json()["error"]
    assert body["code"] == "bridge_unpaired" and body["final"]
    assert "ペアリング" in body["action"] and "自動" not in body["action"]
    english = counter.client.post(
        "/flow/begin?lang=en", json={"purpose": "counter_lookup"}
    ).get_json()["error"]
    assert "pair the bridge again" in english["action"] and "by itself" in english["message"]
