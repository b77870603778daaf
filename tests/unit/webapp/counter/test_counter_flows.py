"""The counter's JSON steps over the real path: tab -> platform -> bus -> bridge -> card."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from bridge.seal import SealContext, seal_pin
from tests.fixtures.counter import PIN, Counter
from webapp import db
from webapp.identity.models import LookupCount, ServiceLink


def sealed(pin_prompt: dict[str, Any], pin: str = PIN) -> dict[str, Any]:
    """Seal a PIN as the tab's seal.js does (same scheme, Python side)."""
    context = SealContext(pin_prompt["bridge_id"], pin_prompt["command_id"])
    return seal_pin(pin_prompt["seal_public_key"], pin, context)


def lookups(counter: Counter) -> int:
    with counter.platform.app.app_context(), db.new_session() as s:
        return sum(s.scalars(select(LookupCount.count)))


def test_mode_a_shows_the_number(counter: Counter) -> None:
    card = counter.card()
    counter.register(card, "20240001")
    counter.insert(card)
    body = counter.post("/counter/api/lookup")
    assert body["ok"] is True
    assert body["result"]["mode"] == "A" and body["result"]["number"] == "20240001"
    assert lookups(counter) == 1


def test_mode_b_draws_the_nw7_barcode_with_the_library_check(counter: Counter) -> None:
    counter.configure(mode="B", symbology="nw7", nw7_start="C", nw7_stop="C", barcode_check="mod16")
    card = counter.card()
    counter.register(card, "1234567890")
    counter.insert(card)
    result = counter.post("/counter/api/lookup")["result"]
    assert result["barcode_text"] == "C1234567890+C"
    assert result["barcode_svg"].startswith("<svg")


def test_mode_c_types_through_the_bridge(counter: Counter) -> None:
    counter.configure(mode="C", keyboard_suffix="tab")
    card = counter.card()
    counter.register(card, "20240002")
    counter.insert(card)
    result = counter.post("/counter/api/lookup")["result"]
    assert result["typed"] is True and result["suffix_sign"] == "⇥"
    assert counter.keyboard.typed == ["20240002\t"]


def test_not_registered_and_no_link_are_distinct(counter: Counter) -> None:
    stranger = counter.card("stranger")
    counter.insert(stranger)
    body = counter.post("/counter/api/lookup")
    assert body["ok"] is False and body["code"] == "not_registered"
    assert "kiosk" in body["action"] or "キオスク" in body["action"]
    assert not body["offer_link"]
    counter.register(stranger)
    body = counter.post("/counter/api/lookup")
    assert body["code"] == "no_link" and body["offer_link"] is True
    assert lookups(counter) == 0  # failed lookups are not counted


def test_expired_and_revoked_certificates(counter: Counter) -> None:
    past = datetime.now(UTC) - timedelta(days=400)
    lost = counter.card("lost")
    counter.jlis.revoke(lost.issued.auth_cert_der)  # before the platform loads the CRL
    old = counter.card("old", not_before=past, not_after=past + timedelta(days=30))
    counter.insert(old)
    assert counter.post("/counter/api/lookup")["code"] == "expired"
    counter.insert(lost)
    body = counter.post("/counter/api/lookup")
    assert body["code"] == "revoked" and body["tone"] == "error"


def test_bridge_offline(counter: Counter) -> None:
    body = counter.post("/counter/api/lookup")
    assert body["code"] == "bridge_offline" and body["tone"] == "offline"


def test_pin_mode_asks_the_holder_then_shows_the_number(counter: Counter) -> None:
    counter.configure(mode="A", pin_required=True)
    card = counter.card()
    counter.register(card, "20240004")
    counter.insert(card)
    prompt = counter.post("/counter/api/lookup")
    assert prompt["ok"] is True and prompt["purpose"] == "counter_lookup"
    assert prompt["pin"]["tries_left"] == 3
    wrong = counter.post("/counter/api/pin", {"sealed": sealed(prompt["pin"], "9999")})
    assert wrong["code"] == "wrong_pin" and wrong["tries_left"] == 2 and wrong["pin"]
    body = counter.post("/counter/api/pin", {"sealed": sealed(wrong["pin"])})
    assert body["ok"] is True and body["result"]["number"] == "20240004"


def test_staff_assisted_linking(counter: Counter) -> None:
    card = counter.card()
    counter.register(card)
    counter.insert(card)
    assert counter.post("/counter/api/lookup")["code"] == "no_link"
    refused = counter.post("/counter/api/link", {"number": "2024 0005", "terms_accepted": False})
    assert refused["code"] == "terms_not_accepted"
    bad = counter.post("/counter/api/link", {"number": "12", "terms_accepted": True})
    assert bad["code"] == "number_invalid"
    prompt = counter.post("/counter/api/link", {"number": "2024 0005", "terms_accepted": True})
    assert prompt["purpose"] == "counter_link"
    body = counter.post("/counter/api/pin", {"sealed": sealed(prompt["pin"])})
    assert body["ok"] is True and body["linked"] is True
    assert body["result"]["number"] == "20240005" and body["result"]["verified_by_staff"]
    with counter.platform.app.app_context(), db.new_session() as s:
        link = s.scalar(select(ServiceLink))
        assert link is not None and link.verified_by_staff and link.customer_number == "20240005"


def test_pin_without_a_pending_step_is_refused(counter: Counter) -> None:
    body = counter.post("/counter/api/pin", {"sealed": {"v": 1}})
    assert body["code"] == "flow_expired"


def test_pages_need_staff_and_a_counter_terminal(counter: Counter) -> None:
    page = counter.client.get("/counter/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'id="counter"' in html and "counter.js" in html
    anonymous = counter.platform.app.test_client()
    assert anonymous.get("/counter/").status_code == 302
    assert anonymous.post("/counter/api/lookup", json={}).status_code == 401


def test_pin_locked_card_is_refused_before_any_verify(counter: Counter) -> None:
    counter.configure(mode="A", pin_required=True)
    card = counter.card("locked", locked=True)
    counter.register(card, "20240006")
    counter.insert(card)
    body = counter.post("/counter/api/lookup")
    assert body["code"] == "pin_locked" and body["tone"] == "error" and body["final"]


def test_mode_c_without_a_keyboard_shows_the_number_instead(counter: Counter) -> None:
    counter.configure(mode="C")
    counter.keyboard = None  # the bridge's machine has no keyboard output
    card = counter.card()
    counter.register(card, "20240007")
    counter.insert(card)
    body = counter.post("/counter/api/lookup")
    assert body["ok"] is True and body["result"]["typed"] is False
    assert body["result"]["number"] == "20240007"
    assert body["notice"]["code"] == "keyboard_unavailable"


def test_link_refuses_a_number_already_taken(counter: Counter) -> None:
    holder, other = counter.card("holder"), counter.card("other")
    counter.register(holder, "20240008")
    counter.register(other)
    counter.insert(other)
    prompt = counter.post("/counter/api/link", {"number": "20240008", "terms_accepted": True})
    body = counter.post("/counter/api/pin", {"sealed": sealed(prompt["pin"])})
    assert body["ok"] is False and body["code"] == "number_taken"
