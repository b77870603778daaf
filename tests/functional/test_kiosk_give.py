"""Giving points to a cause or a crowdfunding project at the kiosk (and at home: the same
purpose), and the statement that says what each transaction was.

Only after the card and the PIN; the cause and amount are kept in the flow on the server
at `give_prepare`, so a script confirming twice pays once and cannot change the amount;
the ledger's invariants hold after each step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask.testing import FlaskClient

from bridge.vcard.jlis import DemoJLIS
from tests.fixtures.cardflow import Kiosk, db_session, kiosk
from tests.functional.test_kiosk_api import client, make_card, sign_in_with_card
from tests.support.flows import begin, error_code
from webapp import db
from webapp.points import invariants, programs, spend
from webapp.points.demo import build_city
from webapp.points.models import CauseKind, MissPolicy
from webapp.points.officer import Officer
from webapp.points.officer.causes import add_cause, update_cause

__all__ = ["client", "db_session", "kiosk"]


def _clean(kiosk: Kiosk) -> None:
    with kiosk.platform.app.app_context(), db.new_session() as s:
        assert invariants.violations(s) == {}


def _city_with_points(kiosk: Kiosk, mykey: str) -> dict[str, Any]:
    """A city, 1,000 points for the citizen, a relief cause, a museum payment."""
    app = kiosk.platform.app
    with app.app_context(), db.new_session() as s:
        city = build_city(s)
        for i in range(2):
            programs.grant(
                s, city.volunteering.id, mykey, key=f"g{i}",
                directory=app.extensions["points_directory"],
            )  # fmt: skip
        spend.spend(s, city.museum.id, mykey, 100, key="museum")
        who = Officer(city.muni.id, "officer")
        relief = add_cause(
            s, who, code="RELIEF", name="災害復興支援", description="Flood relief",
            kind=CauseKind.CAUSE, goal_points=None, ends_at=None,
            miss_policy=MissPolicy.RETURN, fresh_days=30,
        )  # fmt: skip
        s.commit()
        return {"relief": relief.id, "muni": city.muni.id}


def _signed_in(kiosk: Kiosk, client: FlaskClient, demo_jlis: DemoJLIS, tmp_path: Path) -> str:
    kiosk.insert(make_card(demo_jlis, tmp_path / "card.json"))
    signed = sign_in_with_card(client)
    assert signed.status_code == 200
    return str(signed.get_json()["result"]["mykey_id"])


def test_give_needs_the_pin(
    kiosk: Kiosk, client: FlaskClient, demo_jlis: DemoJLIS, tmp_path: Path
) -> None:
    """A script skipping the PIN gives nothing: every giving step is out of order."""
    assert client.post("/flow/do/give_prepare", json={}).status_code == 409  # no flow
    kiosk.insert(make_card(demo_jlis, tmp_path / "card.json"))
    assert begin(client, "kiosk").status_code == 200
    for step in ("give_prepare", "give_confirm"):
        early = client.post(f"/flow/do/{step}", json={"cause_id": 1, "points": 10})
        assert early.status_code == 409 and error_code(early) == "out_of_order"
    assert client.get("/flow/do/causes").status_code == 409
    _clean(kiosk)


def test_give_confirm_twice_pays_once_with_receipt_and_statement(
    kiosk: Kiosk, client: FlaskClient, demo_jlis: DemoJLIS, tmp_path: Path
) -> None:
    mykey = _signed_in(kiosk, client, demo_jlis, tmp_path)
    ids = _city_with_points(kiosk, mykey)

    listed = client.get("/flow/do/causes").get_json()["result"]
    [cause] = listed["causes"]
    assert cause["id"] == ids["relief"] and cause["name"] == "災害復興支援"
    assert listed["spendable"] == {str(ids["muni"]): 900}

    # Confirming before preparing is out of order.
    early = client.post("/flow/do/give_confirm", json={})
    assert early.status_code == 409 and error_code(early) == "out_of_order"

    ready = client.post("/flow/do/give_prepare", json={"cause_id": ids["relief"], "points": 300})
    assert ready.status_code == 200, ready.get_json()
    assert ready.get_json()["result"] | {} == {
        "cause": "災害復興支援", "kind": "cause", "points": 300, "balance": 900, "after": 600,
    }  # fmt: skip
    # The page cannot change the amount or the cause at the confirmation.
    first = client.post("/flow/do/give_confirm", json={"points": 9999, "cause_id": 12345})
    assert first.status_code == 200, first.get_json()
    receipt = first.get_json()["result"]["receipt"]
    assert (receipt["points"], receipt["balance"], receipt["replayed"]) == (300, 600, False)
    assert receipt["cause"] == "災害復興支援" and receipt["date"]
    second = client.post("/flow/do/give_confirm", json={})
    again = second.get_json()["result"]["receipt"]
    assert again["replayed"] and again["number"] == receipt["number"] and again["balance"] == 600
    _clean(kiosk)

    # The statement: balances, lots soonest first, and what each transaction was.
    [muni] = client.get("/flow/do/points").get_json()["result"]["municipalities"]
    assert muni["balance"] == 600 and muni["spendable"] == 600
    assert [lot["remaining"] for lot in muni["lots"]] == [100, 500]
    expiries = [lot["expires_at"] for lot in muni["lots"]]
    assert expiries == sorted(expiries)
    what = [(t["kind"], t["points"], t["counterparty"], t["detail"]) for t in muni["transfers"]]
    assert what == [
        ("donation", -300, "災害復興支援", "cause"),
        ("spend", -100, "市立美術館", "museum"),
        ("grant", 500, "ボランティア", ""),
        ("grant", 500, "ボランティア", ""),
    ]


def test_give_refusals_change_nothing(
    kiosk: Kiosk, client: FlaskClient, demo_jlis: DemoJLIS, tmp_path: Path
) -> None:
    mykey = _signed_in(kiosk, client, demo_jlis, tmp_path)
    ids = _city_with_points(kiosk, mykey)
    cases = [
        ({"cause_id": 999_999, "points": 10}, 404, "unknown_cause"),
        ({"cause_id": "1", "points": 10}, 404, "unknown_cause"),
        ({"cause_id": ids["relief"], "points": 0}, 400, "invalid_amount"),
        ({"cause_id": ids["relief"], "points": "10"}, 400, "invalid_amount"),
        ({"cause_id": ids["relief"], "points": True}, 400, "invalid_amount"),
        ({"cause_id": ids["relief"], "points": 901}, 422, "insufficient_points"),
    ]
    for params, status, code in cases:
        refused = client.post("/flow/do/give_prepare", json=params)
        assert (refused.status_code, error_code(refused)) == (status, code), params
    # Nothing prepared: a confirm is out of order.
    assert client.post("/flow/do/give_confirm", json={}).status_code == 409
    # A cause closed between the choice and the confirmation takes nothing.
    ok = client.post("/flow/do/give_prepare", json={"cause_id": ids["relief"], "points": 10})
    assert ok.status_code == 200
    with kiosk.platform.app.app_context(), db.new_session() as s:
        update_cause(
            s, Officer(ids["muni"], "officer"), ids["relief"], name="災害復興支援",
            description="", open_=False, miss_policy=MissPolicy.RETURN, fresh_days=30,
        )  # fmt: skip
    closed = client.post("/flow/do/give_confirm", json={})
    assert (closed.status_code, error_code(closed)) == (422, "cause_closed")
    assert client.get("/flow/do/causes").get_json()["result"]["causes"] == []
    [muni] = client.get("/flow/do/points").get_json()["result"]["municipalities"]
    assert muni["balance"] == 900
    _clean(kiosk)
