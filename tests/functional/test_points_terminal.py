"""The merchant terminal over the real bridge: the `pay` purpose of the card flow (amount,
card, sealed PIN, confirm, receipt, refund), through /flow."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from bridge.vcard.cardfile import CardFile, card_data_from_issued
from bridge.vcard.jlis import DemoJLIS
from tests.fixtures.cardflow import Kiosk, platform_config
from tests.support.flows import begin, complete, error_code
from webapp import db
from webapp.cardflow import verifier_for
from webapp.identity import services as identity
from webapp.points import admin as points_admin
from webapp.points import invariants, programs
from webapp.points.demo import build_city
from webapp.points.models import MerchantCategory, Transfer
from webapp.staff.models import Role
from webapp.staff.services import create_staff
from webapp.terminals.models import TerminalKind
from webapp.terminals.services import create_terminal, set_merchant
from webapp.terminals.testing import LivePlatform

PIN = "1234"
PASSWORD = "merchant staff password"


@dataclass
class Till:
    """A merchant terminal with its bridge, the museum's staff tab, and a city."""

    kiosk: Kiosk
    client: FlaskClient
    merchant_id: int
    municipality_id: int
    program_id: int
    jlis: DemoJLIS
    tmp: Path

    def card(self, name: str = "card", *, tries: int | None = None) -> tuple[Path, bytes]:
        """A virtual card file and its card key."""
        issued = self.jlis.issue()
        data = card_data_from_issued(issued, pin=PIN, sign_password="ABC123")
        if tries is not None:
            data.auth_pin.tries_left = tries
        path = self.tmp / f"{name}.json"
        CardFile.create(path, data)
        key = verifier_for(self.kiosk.platform.app).identify(issued.auth_cert_der).card_key
        return path, key

    def citizen(self, key: bytes, grants: int = 1) -> str:
        """A MyKey ID for the card, granted `grants` x 500 points."""
        app = self.kiosk.platform.app
        with app.app_context(), db.new_session() as s:
            mykey, _ = identity.open_or_create(s, key, datetime(2035, 1, 1, tzinfo=UTC))
            for i in range(grants):
                programs.grant(
                    s,
                    self.program_id,
                    mykey.id,
                    key=f"g-{mykey.id}-{i}",
                    directory=app.extensions["points_directory"],
                )
            s.commit()
            return mykey.id

    def transfers(self) -> int:
        """Transfers in the ledger (and the invariants hold)."""
        with self.kiosk.platform.app.app_context(), db.new_session() as s:
            assert invariants.violations(s) == {}
            return int(s.scalar(select(func.count()).select_from(Transfer)) or 0)

    def pay_until_confirm(self, points: int, pin: str = PIN) -> Any:
        """Amount and card, PIN prompt, sealed PIN: the /flow/pin/complete response."""
        started = begin(self.client, "pay", points=points)
        assert started.status_code == 200, started.get_data(as_text=True)
        return complete(self.client, started.get_json()["pin"], pin)

    def confirm(self) -> Any:
        """The customer confirmed: /flow/do/confirm."""
        return self.client.post("/flow/do/confirm")


@pytest.fixture
def till(demo_jlis: DemoJLIS, tmp_path: Path) -> Iterator[Till]:
    with LivePlatform(tmp_path, extra=platform_config(demo_jlis)) as platform:
        app = platform.app
        provider = platform.provider()
        with app.app_context(), db.new_session() as s:
            city = build_city(s)
            s.commit()
            ids = (city.museum.id, city.muni.id, city.volunteering.id)
            create_staff(s, "museum", PASSWORD, Role.MERCHANT_STAFF, merchant_id=ids[0])
            # The till names its merchant in the database (terminals.merchant_id).
            terminal = create_terminal(
                s, provider, TerminalKind.MERCHANT, "Museum till", merchant_id=ids[0]
            ).id
        home = tmp_path / "bridge-home"
        bridge = platform.pair_bridge(home, terminal)
        client = app.test_client()
        login = client.post("/staff/login", data={"login": "museum", "password": PASSWORD})
        assert login.status_code == 302
        assert client.post(f"/points/terminal/open/{terminal}").status_code == 302
        k = Kiosk(platform, terminal, bridge, home)
        yield Till(k, client, ids[0], ids[1], ids[2], demo_jlis, tmp_path)
        k.stop()


def test_happy_payment_double_confirm_and_refund(till: Till) -> None:
    path, key = till.card()
    mykey = till.citizen(key)
    till.kiosk.insert(path)
    before = till.transfers()
    page = till.client.get("/points/terminal/")
    assert page.status_code == 200
    shown = till.pay_until_confirm(200)
    assert shown.status_code == 200, shown.get_data(as_text=True)
    assert shown.get_json()["result"] == {"points": 200, "balance": 500, "enough": True}
    assert mykey not in shown.get_data(as_text=True)  # who pays stays on the server
    first = till.confirm().get_json()["result"]
    second = till.confirm().get_json()["result"]
    assert first == {"points": 200, "balance": 300, "replayed": False}
    assert second["replayed"] is True and second["balance"] == 300
    assert till.transfers() == before + 1
    refunded = till.client.post("/flow/do/refund").get_json()["result"]
    assert refunded == {"refunded": 200, "balance": 500, "replayed": False}
    assert till.client.post("/flow/do/refund").get_json()["result"]["replayed"] is True
    assert till.transfers() == before + 2
    for response in (shown, till.confirm()):
        assert mykey not in response.get_data(as_text=True)


def test_insufficient_balance_writes_nothing(till: Till) -> None:
    path, key = till.card()
    till.citizen(key)
    till.kiosk.insert(path)
    before = till.transfers()
    shown = till.pay_until_confirm(900).get_json()["result"]
    assert shown["enough"] is False
    refused = till.confirm()
    assert refused.status_code == 422 and error_code(refused) == "insufficient_points"
    assert till.transfers() == before


def test_refund_before_paying_is_out_of_order(till: Till) -> None:
    path, key = till.card()
    till.citizen(key)
    till.kiosk.insert(path)
    assert till.pay_until_confirm(100).status_code == 200
    early = till.client.post("/flow/do/refund")
    assert early.status_code == 409 and error_code(early) == "out_of_order"


def test_wrong_pin_and_unregistered_card(till: Till) -> None:
    path, key = till.card()
    till.citizen(key)
    till.kiosk.insert(path)
    before = till.transfers()
    wrong = till.pay_until_confirm(100, pin="9999")
    assert wrong.status_code == 422 and error_code(wrong) == "wrong_pin"
    assert till.confirm().status_code == 409  # not verified: nothing to confirm
    stranger, _ = till.card("stranger")
    till.kiosk.insert(stranger)
    unknown = till.pay_until_confirm(100)
    assert error_code(unknown) == "not_registered"
    assert till.confirm().status_code == 409
    assert till.transfers() == before


def test_card_removed_before_confirm_ends_the_flow(till: Till) -> None:
    path, key = till.card()
    till.citizen(key)
    till.kiosk.insert(path)
    before = till.transfers()
    assert till.pay_until_confirm(100).status_code == 200
    till.kiosk.stop()
    till.kiosk.insert(path)  # same card put back: a new card session
    gone = till.confirm()
    assert gone.status_code == 409 and error_code(gone) == "card_removed"
    assert till.confirm().status_code == 409
    assert till.transfers() == before


def test_only_the_merchants_staff_open_it(till: Till) -> None:
    other = till.kiosk.platform.app.test_client()
    assert other.get("/points/terminal/").status_code in (302, 403)
    assert begin(other, "pay", points=1).status_code == 401


def test_bridge_offline_and_bad_amount_change_nothing(till: Till) -> None:
    before = till.transfers()
    offline = begin(till.client, "pay", points=100)
    assert offline.status_code == 503 and error_code(offline) == "bridge_offline"
    for bad in (-5, 0, 1.5, "10", True, 10**9):
        refused = begin(till.client, "pay", points=bad)
        assert refused.status_code == 400 and error_code(refused) == "invalid_amount"
    assert till.transfers() == before


def test_moving_the_till_to_another_merchant_stops_the_payment(till: Till) -> None:
    app = till.kiosk.platform.app
    with app.app_context(), db.new_session() as s:
        shop = points_admin.create_merchant(
            s, till.municipality_id, "SHOP1", "駅前商店", MerchantCategory.SHOP
        )
        shop_id = shop.id
    path, key = till.card()
    till.citizen(key)
    till.kiosk.insert(path)
    before = till.transfers()
    assert till.pay_until_confirm(100).status_code == 200
    with app.app_context(), db.new_session() as s:
        set_merchant(s, till.kiosk.terminal_id, shop_id)
    # The museum's open tab is shut out before the citizen confirms: nothing is paid.
    refused = till.confirm()
    assert refused.status_code == 403 and error_code(refused) == "wrong_terminal"
    assert till.client.get("/points/terminal/").status_code == 403
    assert till.client.post(f"/points/terminal/open/{till.kiosk.terminal_id}").status_code == 404
    assert till.transfers() == before


def test_the_tills_page_shows_the_bridges_presence(till: Till) -> None:
    """The tills list reads the reader's presence as the bridge registry records it."""
    app = till.kiosk.platform.app
    provider = till.kiosk.platform.provider()
    with app.app_context(), db.new_session() as s:
        other = create_terminal(
            s, provider, TerminalKind.MERCHANT, "Museum till 2", merchant_id=till.merchant_id
        ).id

    def tile(terminal: int) -> str:
        page = till.client.get("/points/terminal/tills?lang=en")
        assert page.status_code == 200
        found = [
            li for li in page.get_data(as_text=True).split("<li>") if f"/open/{terminal}" in li
        ]
        assert len(found) == 1
        return found[0]

    def wait_for(text: str) -> None:
        deadline = time.monotonic() + 10
        while text not in tile(till.kiosk.terminal_id):
            assert time.monotonic() < deadline, f"never: {text}"
            time.sleep(0.1)

    assert "No card reader paired yet" in tile(other)
    wait_for("Card reader offline")  # paired, not running
    assert "Open in this tab" in tile(till.kiosk.terminal_id)
    path, _ = till.card()
    till.kiosk.insert(path)
    wait_for("Card reader connected")
    till.kiosk.stop()
    wait_for("Card reader offline")
