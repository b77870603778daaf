"""The kiosk's "My points": balances, lots and own transfers, only after the PIN."""

from __future__ import annotations

from pathlib import Path

from flask.testing import FlaskClient

from bridge.vcard.jlis import DemoJLIS
from tests.fixtures.cardflow import Kiosk, db_session, kiosk
from tests.functional.test_kiosk_api import client, make_card, sign_in_with_card
from tests.support.flows import begin, error_code
from webapp import db
from webapp.points import programs
from webapp.points.demo import build_city

__all__ = ["client", "db_session", "kiosk"]


def test_my_points_needs_the_authenticated_session(
    kiosk: Kiosk, client: FlaskClient, demo_jlis: DemoJLIS, tmp_path: Path
) -> None:
    assert client.get("/flow/do/points").status_code == 409  # no card session
    kiosk.insert(make_card(demo_jlis, tmp_path / "card.json"))
    assert begin(client, "kiosk").status_code == 200
    early = client.get("/flow/do/points")
    assert early.status_code == 409 and error_code(early) == "out_of_order"  # no PIN yet
    signed = sign_in_with_card(client)
    assert signed.status_code == 200
    mykey = signed.get_json()["result"]["mykey_id"]
    app = kiosk.platform.app
    with app.app_context(), db.new_session() as s:
        city = build_city(s)
        for i in range(2):
            programs.grant(
                s,
                city.volunteering.id,
                mykey,
                key=f"g{i}",
                directory=app.extensions["points_directory"],
            )
        s.commit()
    body = client.get("/flow/do/points").get_json()["result"]
    [muni] = body["municipalities"]
    assert muni["balance"] == 1000 and muni["spendable"] == 1000
    assert [lot["remaining"] for lot in muni["lots"]] == [500, 500]
    assert all(lot["expires_at"] for lot in muni["lots"])
    assert [t["points"] for t in muni["transfers"]] == [500, 500]
    assert client.post("/flow/cancel").status_code == 200
    assert client.get("/flow/do/points").status_code == 409
