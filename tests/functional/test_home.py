"""At home (/home): a citizen's own card reader, paired from their own browser, runs the
kiosk flow; nobody else's browser drives it, it is never a counter or a till, and it
expires and is cleaned up. Test client -> platform -> bus -> a real bridge -> virtual card.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from bridge.pairing import BridgeIdentity, pair
from bridge.readers import SimReader
from bridge.vcard.jlis import DemoJLIS
from tests.fixtures.cardflow import platform_config
from tests.functional.test_kiosk_api import make_card, sign_in_with_card
from tests.support.flows import begin, error_code
from webapp import db
from webapp.points import programs
from webapp.points.demo import build_city
from webapp.points.models import CauseKind, MissPolicy
from webapp.points.officer import Officer
from webapp.points.officer.causes import add_cause
from webapp.staff import services as staff_services
from webapp.staff.models import Role
from webapp.terminals import services
from webapp.terminals.bridge_wheel import WHEEL_NAME
from webapp.terminals.models import BridgeDevice, PairingCode, Terminal, TerminalKind, utcnow
from webapp.terminals.testing import BridgeThread, LivePlatform

PASSWORD = "correct horse battery"


@dataclass
class Home:
    """A live platform, and the bridges started against it (stopped at the end)."""

    platform: LivePlatform
    tmp: Path
    bridges: list[BridgeThread] = field(default_factory=list)

    def browser(self) -> FlaskClient:
        return self.platform.app.test_client()

    def create(self, client: FlaskClient) -> tuple[int, str]:
        """Press "Use my card reader": (terminal id, pairing code) of this browser."""
        response = client.post("/home/terminal")
        assert response.status_code == 302 and response.headers["Location"] == "/home/"
        page = client.get("/home/").get_data(as_text=True)
        code = re.search(r'id="pairing-code">([0-9A-Z]{5}-[0-9A-Z]{5})<', page)
        assert code, page
        assert f"ichimai-bridge pair {self.platform.url} {code.group(1)}" in page
        assert "ichimai-bridge install-autostart" in page
        assert f"/bridge/{WHEEL_NAME}" in page  # the download
        with client.session_transaction() as sess:
            return int(sess["terminal_id"]), code.group(1)

    def pair(self, code: str, name: str = "home") -> BridgeIdentity:
        """`ichimai-bridge pair <origin> <code>` over real HTTP."""
        return pair(self.platform.url, code, self.tmp / f"bridge-{name}")

    def run(self, identity: BridgeIdentity, card: Path) -> None:
        """`ichimai-bridge run` with this card on its (simulated) reader."""
        thread = BridgeThread(identity, SimReader(card), backoff_base=0.05, backoff_cap=0.2)
        self.bridges.append(thread.start())
        self.platform.wait_ready(identity.terminal_id)


@pytest.fixture
def home(demo_jlis: DemoJLIS, tmp_path: Path) -> Iterator[Home]:
    with LivePlatform(tmp_path, extra=platform_config(demo_jlis)) as platform:
        h = Home(platform, tmp_path)
        yield h
        for bridge in h.bridges:
            bridge.stop()


def test_the_page_explains_in_japanese_with_an_english_toggle(home: Home) -> None:
    client = home.browser()
    page = client.get("/home/").get_data(as_text=True)
    assert '<html lang="ja">' in page
    assert "自宅でマイナンバーカードを使う" in page and "カードリーダーを使う" in page
    assert "sudo apt install pcscd libccid" in page
    english = client.get("/home/?lang=en").get_data(as_text=True)
    assert "Use my card reader" in english and "What you need" in english


def test_creating_needs_the_csrf_token(home: Home) -> None:
    home.platform.app.config["WTF_CSRF_ENABLED"] = True
    try:
        client = home.browser()
        assert client.post("/home/terminal").status_code == 400
        page = client.get("/home/").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token
        created = client.post("/home/terminal", data={"csrf_token": token.group(1)})
        assert created.status_code == 302
    finally:
        home.platform.app.config["WTF_CSRF_ENABLED"] = False
    with home.platform.app.app_context(), db.new_session() as s:
        assert s.scalar(select(func.count()).select_from(Terminal)) == 1


def test_creating_is_throttled_per_ip_with_a_japanese_message(home: Home) -> None:
    home.platform.app.config["HOME_LIMIT_PER_IP"] = "2 per hour"
    client = home.browser()
    for _ in range(2):
        assert client.post("/home/terminal").status_code == 302
    refused = client.post("/home/terminal")
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert "この接続からのカードリーダーの設定が多すぎます" in refused.get_data(as_text=True)
    other_ip = home.browser().post("/home/terminal", environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert other_ip.status_code == 302
    with home.platform.app.app_context(), db.new_session() as s:
        assert s.scalar(select(func.count()).select_from(Terminal)) == 3


def test_pair_tap_pin_mykey_links_and_my_points(
    home: Home, demo_jlis: DemoJLIS, tmp_path: Path
) -> None:
    client = home.browser()
    terminal_id, code = home.create(client)
    assert client.get("/home/status").get_json() == {"state": "pairing"}
    identity = home.pair(code)
    assert identity.terminal_id == terminal_id
    assert client.get("/home/status").get_json() == {"state": "ready"}
    home.run(identity, make_card(demo_jlis, tmp_path / "card.json"))
    page = client.get("/home/").get_data(as_text=True)
    assert 'data-screen="pin"' in page and 'data-mode="home"' in page
    assert "pairing-code" not in page  # the code is gone once paired
    status = client.get("/terminal/status").get_json()
    assert status["bridge_online"] and status["card"]

    signed = sign_in_with_card(client)
    assert signed.status_code == 200
    mykey = signed.get_json()["result"]["mykey_id"]
    assert client.get("/flow/do/me").get_json()["result"]["mykey_id"] == mykey
    app = home.platform.app
    with app.app_context(), db.new_session() as s:
        city = build_city(s)
        programs.grant(
            s, city.volunteering.id, mykey, key="g1", directory=app.extensions["points_directory"]
        )
        s.commit()
    [muni] = client.get("/flow/do/points").get_json()["result"]["municipalities"]
    assert muni["balance"] == 500 and [lot["remaining"] for lot in muni["lots"]] == [500]
    assert [t["points"] for t in muni["transfers"]] == [500]

    # At home too: give to a cause, the receipt, the statement saying what it was.
    assert 'data-screen="give-receipt"' in page
    with app.app_context(), db.new_session() as s:
        relief = add_cause(
            s, Officer(city.muni.id, "officer"), code="RELIEF", name="災害復興支援",
            description="", kind=CauseKind.CAUSE, goal_points=None, ends_at=None,
            miss_policy=MissPolicy.RETURN, fresh_days=30,
        )  # fmt: skip
    ready = client.post("/flow/do/give_prepare", json={"cause_id": relief.id, "points": 100})
    assert ready.status_code == 200 and ready.get_json()["result"]["after"] == 400
    receipt = client.post("/flow/do/give_confirm", json={}).get_json()["result"]["receipt"]
    assert (receipt["points"], receipt["balance"], receipt["cause"]) == (100, 400, "災害復興支援")
    [muni] = client.get("/flow/do/points").get_json()["result"]["municipalities"]
    assert [(t["kind"], t["points"]) for t in muni["transfers"]] == [
        ("donation", -100), ("grant", 500),
    ]  # fmt: skip

    # Sign out: the citizen is forgotten, the reader stays this browser's.
    assert client.post("/flow/cancel").status_code == 200
    assert client.get("/flow/do/points").status_code == 409
    assert client.get("/terminal/status").status_code == 200
    assert 'data-mode="home"' in client.get("/home/").get_data(as_text=True)


def test_another_browser_cannot_drive_a_home_terminal(
    home: Home, demo_jlis: DemoJLIS, tmp_path: Path
) -> None:
    owner = home.browser()
    terminal_id, code = home.create(owner)
    home.run(home.pair(code), make_card(demo_jlis, tmp_path / "card.json"))
    for claimed in (
        {"terminal_id": terminal_id, "terminal_kind": TerminalKind.HOME},
        {"terminal_id": terminal_id, "terminal_kind": TerminalKind.HOME, "home_key": "guess"},
        {"terminal_id": terminal_id, "terminal_kind": TerminalKind.KIOSK},
        {"terminal_id": terminal_id, "terminal_kind": TerminalKind.COUNTER},
    ):
        thief = home.browser()
        with thief.session_transaction() as sess:
            sess.update(claimed)
        assert begin(thief, "kiosk").status_code == 401, claimed
        assert thief.get("/terminal/status").status_code == 401, claimed
        assert 'id="use-reader"' in thief.get("/home/").get_data(as_text=True)
    # The owner's browser is unaffected.
    assert begin(owner, "kiosk").status_code == 200


def test_a_home_terminal_is_never_a_kiosk_counter_or_till(home: Home) -> None:
    app = home.platform.app
    citizen = home.browser()
    terminal_id, _ = home.create(citizen)
    with app.app_context(), db.new_session() as s:
        city = build_city(s)
        staff_services.create_staff(s, "root", PASSWORD, Role.PLATFORM_ADMIN)
        staff_services.create_staff(
            s, "till", PASSWORD, Role.MERCHANT_STAFF, merchant_id=city.museum.id
        )
        staff_services.create_staff(
            s, "officer", PASSWORD, Role.POINTS_OFFICER, municipality_id=city.muni.id
        )
        with pytest.raises(services.InvalidRequest):
            services.create_terminal(s, home.platform.provider(), TerminalKind.HOME, "x")
        assert s.get(Terminal, terminal_id).provider_id is None
    status, body = home.platform.admin(
        "POST",
        "/api/v1/admin/terminals",
        {"provider_id": home.platform.provider(), "kind": "home", "name": "x"},
    )
    assert status == 400, body
    # The citizen's own session: the kiosk page and the counter and till steps refuse it.
    assert citizen.get("/kiosk/").status_code == 403
    for purpose in ("counter_lookup", "counter_link", "pay"):
        refused = begin(citizen, purpose, points=1)
        assert refused.status_code == 403 and error_code(refused) == "wrong_terminal"
    till_page = citizen.get("/points/terminal/")
    assert till_page.status_code == 302 and "/staff/login" in till_page.headers["Location"]
    # Staff of every kind cannot open it as a counter, a kiosk or a till: to staff, even
    # a platform admin, a citizen's home terminal does not exist (404).
    for login, opener, refused in (
        ("root", f"/counter/open/{terminal_id}", 404),
        ("root", f"/kiosk/open/{terminal_id}", 404),
        ("till", f"/points/terminal/open/{terminal_id}", 404),
        # A points officer opens no counter at all: refused by role, before any lookup.
        ("officer", f"/counter/open/{terminal_id}", 403),
    ):
        staff = home.browser()
        signed = staff.post("/staff/login", data={"login": login, "password": PASSWORD})
        assert signed.status_code == 302, login
        assert staff.post(opener).status_code == refused, (login, opener)
        with staff.session_transaction() as sess:
            assert sess.get("terminal_id") is None


def test_expired_home_terminals_are_refused_then_cleaned_up(
    home: Home, demo_jlis: DemoJLIS, tmp_path: Path
) -> None:
    app = home.platform.app
    unpaired, stale, fresh = home.browser(), home.browser(), home.browser()
    unpaired_id, _ = home.create(unpaired)
    stale_id, code = home.create(stale)
    home.run(home.pair(code, "stale"), make_card(demo_jlis, tmp_path / "card.json"))
    fresh_id, fresh_code = home.create(fresh)
    home.pair(fresh_code, "fresh")
    assert begin(stale, "kiosk").status_code == 200
    idle_days = float(app.config["HOME_TERMINAL_IDLE_DAYS"])
    with app.app_context(), db.new_session() as s:
        s.get(Terminal, unpaired_id).created_at = (
            utcnow() - services.PAIRING_TTL - timedelta(seconds=1)
        )
        old = utcnow() - timedelta(days=idle_days, seconds=1)
        s.get(Terminal, stale_id).last_used_at = old
        s.commit()
    for client in (unpaired, stale):
        assert begin(client, "kiosk").status_code == 401
        assert client.get("/terminal/status").status_code == 401
        page = client.get("/home/").get_data(as_text=True)
        assert "有効期限が切れました" in page and 'id="use-reader"' in page
    assert fresh.get("/home/status").get_json() == {"state": "ready"}

    result = app.test_cli_runner().invoke(args=["home", "cleanup"])
    assert result.exit_code == 0, result.output
    assert "deleted 2 home terminal(s), 1 bridge(s)" in result.output
    with app.app_context(), db.new_session() as s:
        assert set(s.scalars(select(Terminal.id))) == {fresh_id}
        assert set(s.scalars(select(BridgeDevice.terminal_id))) == {fresh_id}
        assert set(s.scalars(select(PairingCode.terminal_id))) == {fresh_id}
    assert fresh.get("/home/status").get_json() == {"state": "ready"}


def test_id_key_and_code_are_independent_and_only_hashes_are_kept(home: Home) -> None:
    client = home.browser()
    terminal_id, code = home.create(client)
    with client.session_transaction() as sess:
        key = sess["home_key"]
    assert len(key) >= 43  # 256 random bits, drawn apart from the code and the id
    assert key.replace("-", "").upper().find(code.replace("-", "")) < 0
    with home.platform.app.app_context(), db.new_session() as s:
        terminal = s.get(Terminal, terminal_id)
        assert terminal.kind == TerminalKind.HOME and terminal.owner_key_hash
        assert key not in terminal.owner_key_hash
        assert services.owner_key_matches(terminal, key)
        other = key[:-1] + ("B" if key.endswith("A") else "A")
        assert not services.owner_key_matches(terminal, other)
        [row] = s.scalars(select(PairingCode).where(PairingCode.terminal_id == terminal_id))
        assert row.code_hash == services.hash_code(code) and code not in row.code_hash
