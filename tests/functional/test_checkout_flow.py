"""The checkout page and its card flow purpose at home, against a live platform with a
paired home bridge (a simulated reader): pay once after the card and the PIN (a script
repeating `pay` gets the first payment), the signed return URL, not enough points,
an expired or unknown checkout, steps out of order, cancel (signed), and the page in a
browser without a card reader. Invariants after each."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask.testing import FlaskClient
from sqlalchemy import select

from bridge.vcard.jlis import DemoJLIS
from tests.functional.test_home import Home, home
from tests.functional.test_kiosk_api import make_card, sign_in_with_card
from tests.support.flows import begin, complete, error_code
from webapp import db
from webapp.points import invariants, programs
from webapp.points.checkout import services
from webapp.points.checkout.demo import build_shop
from webapp.points.checkout.models import Checkout
from webapp.points.checkout.signing import result_signature
from webapp.points.demo import build_city
from webapp.points.models import Merchant, Transfer

__all__ = ["home"]
ORIGIN = "https://shop.example.jp"


def _clean(home: Home) -> None:
    with home.platform.app.app_context(), db.new_session() as s:
        assert invariants.violations(s) == {}


def _at_home(home: Home, demo_jlis: DemoJLIS, tmp_path: Path) -> tuple[FlaskClient, str]:
    """A browser with a paired reader and a registered card with 500 points."""
    client = home.browser()
    _, code = home.create(client)
    home.run(home.pair(code), make_card(demo_jlis, tmp_path / "card.json"))
    signed = sign_in_with_card(client)
    assert signed.status_code == 200
    mykey = signed.get_json()["result"]["mykey_id"]
    client.post("/flow/cancel")
    return client, mykey


def _shop(home: Home, mykey: str) -> dict[str, Any]:
    app = home.platform.app
    with app.app_context(), db.new_session() as s:
        city = build_city(s)
        account = build_shop(s, city.muni.id, ORIGIN)
        programs.grant(
            s, city.volunteering.id, mykey, key="g", directory=app.extensions["points_directory"]
        )
        return {"merchant": account.merchant_id, "secret": account.signing_secret}


def _checkout(home: Home, shop: dict[str, Any], ref: str, points: int, **kw: Any) -> str:
    with home.platform.app.app_context(), db.new_session() as s:
        merchant = s.get(Merchant, shop["merchant"])
        assert merchant is not None
        return services.create(
            s, merchant, amount=points, order=ref, return_url=f"{ORIGIN}/back?x=1", **kw
        ).id


def test_pay_once_at_home_and_go_back_signed(
    home: Home, demo_jlis: DemoJLIS, tmp_path: Path
) -> None:
    client, mykey = _at_home(home, demo_jlis, tmp_path)
    shop = _shop(home, mykey)
    checkout = _checkout(home, shop, "order-1", 300)
    page = client.get(f"/checkout/{checkout}").get_data(as_text=True)
    assert 'id="checkout-begin"' in page and "order-1" in page

    early = client.post("/flow/do/pay", json={})
    assert early.status_code == 409
    started = begin(client, "checkout", checkout=checkout)
    assert started.status_code == 200, started.get_json()
    assert client.post("/flow/do/pay", json={}).status_code == 409  # before the PIN
    verified = complete(client, started.get_json()["pin"]).get_json()["result"]
    assert verified == {
        "shop": "いちまい市 物産オンラインショップ", "points": 300, "reference": "order-1",
        "balance": 500, "enough": True,
    }  # fmt: skip
    paid = client.post("/flow/do/pay", json={"checkout": "co_other", "points": 1})
    assert paid.status_code == 200, paid.get_json()
    result = paid.get_json()["result"]
    assert (result["points"], result["balance"], result["replayed"]) == (300, 200, False)
    again = client.post("/flow/do/pay", json={}).get_json()["result"]
    assert (again["points"], again["balance"], again["replayed"]) == (300, 200, True)

    back = urlsplit(result["redirect"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == f"{ORIGIN}/back"
    q = {k: v[0] for k, v in parse_qs(back.query).items()}
    assert q["x"] == "1" and (q["status"], q["amount"], q["order"]) == ("paid", "300", "order-1")
    assert q["sig"] == result_signature(
        shop["secret"], checkout, "order-1", "paid", 300, int(q["ts"])
    )
    assert mykey not in result["redirect"]
    with home.platform.app.app_context(), db.new_session() as s:
        assert s.get(Checkout, checkout).status == "paid"  # type: ignore[union-attr]
        assert len(s.scalars(select(Transfer).where(Transfer.kind == "spend")).all()) == 1
    # The page of a paid checkout: closed, the way back signed.
    assert "This order is paid" in client.get(f"/checkout/{checkout}?lang=en").get_data(
        as_text=True
    )
    assert client.get(f"/checkout/{checkout}/back").headers["Location"].startswith(f"{ORIGIN}/back")
    cancel = client.post(f"/checkout/{checkout}/cancel", json={})
    assert cancel.status_code == 409 and cancel.get_json()["error"]["code"] == "checkout_paid"
    _clean(home)


def test_refusals_change_nothing(home: Home, demo_jlis: DemoJLIS, tmp_path: Path) -> None:
    client, mykey = _at_home(home, demo_jlis, tmp_path)
    shop = _shop(home, mykey)
    unknown = begin(client, "checkout", checkout="co_nothing")
    assert unknown.status_code == 404 and error_code(unknown) == "unknown_checkout"
    assert error_code(begin(client, "checkout", checkout=123)) == "unknown_checkout"
    old = _checkout(home, shop, "old", 10, ttl=timedelta(seconds=-1))
    expired = begin(client, "checkout", checkout=old)
    assert expired.status_code == 409 and error_code(expired) == "checkout_expired"
    assert "expired" in client.get(f"/checkout/{old}?lang=en").get_data(as_text=True)

    big = _checkout(home, shop, "big", 501)
    started = begin(client, "checkout", checkout=big)
    verified = complete(client, started.get_json()["pin"]).get_json()["result"]
    assert verified["enough"] is False
    refused = client.post("/flow/do/pay", json={})
    assert refused.status_code == 422 and error_code(refused) == "insufficient_points"
    assert client.post("/flow/do/other", json={}).status_code == 404
    with home.platform.app.app_context(), db.new_session() as s:
        assert s.scalars(select(Transfer).where(Transfer.kind == "spend")).all() == []
        assert s.get(Checkout, big).status == "open"  # type: ignore[union-attr]

    # Cancelled: back to the shop signed, again the same; then it cannot be paid.
    gone = client.post(f"/checkout/{big}/cancel", json={})
    assert gone.status_code == 200
    assert "status=cancelled" in gone.get_json()["redirect"]
    assert client.post(f"/checkout/{big}/cancel", json={}).status_code == 200
    closed = begin(client, "checkout", checkout=big)
    assert closed.status_code == 409 and error_code(closed) == "checkout_cancelled"
    assert client.get("/checkout/co_nothing").status_code == 404
    _clean(home)


def test_a_browser_without_a_card_reader_is_told_how(home: Home, demo_jlis: DemoJLIS) -> None:
    app = home.platform.app
    with app.app_context(), db.new_session() as s:
        city = build_city(s)
        account = build_shop(s, city.muni.id, ORIGIN)
        merchant = s.get(Merchant, account.merchant_id)
        assert merchant is not None
        made = services.create(s, merchant, amount=5, order="o", return_url=f"{ORIGIN}/r")
    visitor = home.browser()
    page = visitor.get(f"/checkout/{made.id}?lang=en").get_data(as_text=True)
    assert "Your card reader is not set up in this browser" in page
    assert 'id="checkout-begin"' not in page
    refused = begin(visitor, "checkout", checkout=made.id)
    assert refused.status_code in (401, 403)
