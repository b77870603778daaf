"""A revoked bridge never comes back by itself, and every tab says so in its reader's words:
at a kiosk, ask a staff member; at home, pair it again with a new code. (The counter's
words: tests/unit/webapp/counter/test_counter_flows.py and tests/e2e/test_counter_e2e.py.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask.testing import FlaskClient

from tests.functional.test_home import PASSWORD, Home, home
from tests.support.flows import begin
from webapp import db
from webapp.staff import services as staff_services
from webapp.staff.models import Role

__all__ = ["home"]


def revoke(home: Home, bridge_id: str) -> None:
    status, body = home.platform.admin("POST", f"/api/v1/admin/bridges/{bridge_id}/revoke")
    assert status == 200, body


def refusal(client: FlaskClient, purpose: str) -> dict[str, Any]:
    refused = begin(client, purpose)
    assert refused.status_code == 503, refused.get_data(as_text=True)
    body: dict[str, Any] = refused.get_json()["error"]
    return body


def test_a_kiosk_with_a_revoked_bridge_says_to_ask_staff(home: Home, tmp_path: Path) -> None:
    platform = home.platform
    kiosk_id = platform.terminal("キオスク1", kind="kiosk")
    with platform.app.app_context(), db.new_session() as s:
        staff_services.create_staff(s, "root", PASSWORD, Role.PLATFORM_ADMIN)
    kiosk = home.browser()
    signed = kiosk.post("/staff/login", data={"login": "root", "password": PASSWORD})
    assert signed.status_code == 302
    assert kiosk.post(f"/kiosk/open/{kiosk_id}").status_code == 302
    identity = platform.pair_bridge(tmp_path / "kiosk-bridge", kiosk_id)

    offline = kiosk.get("/terminal/status").get_json()  # paired; its bridge not started
    assert offline["bridge_online"] is False and offline["bridge_paired"] is True
    assert refusal(kiosk, "kiosk")["code"] == "bridge_offline"

    revoke(home, identity.bridge_id)
    assert kiosk.get("/terminal/status").get_json()["bridge_paired"] is False
    body = refusal(kiosk, "kiosk")
    assert body["code"] == "bridge_unpaired" and body["final"] is True
    assert "職員" in body["action"]  # a citizen at a kiosk: staff are there to ask
    page = kiosk.get("/kiosk/").get_data(as_text=True)
    assert 'data-when="unpaired"' in page and "管理者による再ペアリング" in page


def test_at_home_a_revoked_bridge_is_paired_again_with_a_new_code(home: Home) -> None:
    citizen = home.browser()
    _terminal_id, code = home.create(citizen)
    identity = home.pair(code)
    assert citizen.get("/terminal/status").get_json()["bridge_paired"] is True

    revoke(home, identity.bridge_id)
    assert citizen.get("/terminal/status").get_json()["bridge_paired"] is False
    body = refusal(citizen, "kiosk")
    assert body["code"] == "bridge_unpaired"
    assert "新しいコード" in body["action"] and "職員" not in body["action"]  # nobody to ask
    page = citizen.get("/home/").get_data(as_text=True)
    assert "無効化" in page and "新しいコード" in page  # and the button for one
    english = citizen.get("/home/?lang=en").get_data(as_text=True)
    assert "was ended (revoked)" in english


def test_a_till_never_paired_sends_its_staff_to_the_administrator(home: Home) -> None:
    from webapp.points.demo import build_city

    platform = home.platform
    with platform.app.app_context(), db.new_session() as s:
        city = build_city(s, "131997", name="いちまい市")
        staff_services.create_staff(
            s, "shop", PASSWORD, Role.MERCHANT_STAFF, merchant_id=city.museum.id
        )
        museum = city.museum.id
    till = platform.terminal("レジ1", kind="merchant", merchant_id=museum)
    staff = home.browser()
    assert staff.post("/staff/login", data={"login": "shop", "password": PASSWORD}).status_code
    assert staff.post(f"/points/terminal/open/{till}").status_code == 302
    refused = begin(staff, "pay", points=100)
    assert refused.status_code == 503
    body = refused.get_json()["error"]
    assert body["code"] == "bridge_unpaired"
    assert "管理者" in body["action"] and "職員" not in body["action"]  # they are the staff
