"""The online shops' checkout API on SQLite: a checkout made, paid, refunded; and every
unhappy path a clear 4xx that changes nothing (bad key, bad amount, bad return URL, a
reference replayed with another body, an expired checkout, a second payment, an
over-refund), and no answer that names who paid. The folder's fixture checks the
ledger's invariants after each test."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from webapp.db import Base
from webapp.points import programs
from webapp.points.checkout import keys, services
from webapp.points.checkout.demo import build_shop
from webapp.points.checkout.models import CHECKOUT_TABLES, Checkout, WebhookDelivery
from webapp.points.checkout.results import signed_result
from webapp.points.checkout.signing import result_signature
from webapp.points.demo import City
from webapp.points.directory import KnownMyKeyIds
from webapp.points.errors import Code, PointsError
from webapp.points.models import Merchant, Transfer
from webapp.points.spend import spendable

URL = "/api/v1/shop/checkouts"
ORIGIN = "https://shop.example.jp"


@pytest.fixture
def shop(app: Flask, s: Session, world: City, directory: KnownMyKeyIds) -> dict[str, Any]:
    """The test city's online shop on ORIGIN, and 500 points for ALICE234."""
    Base.metadata.create_all(app.extensions["db_engine"], tables=CHECKOUT_TABLES)
    account = build_shop(s, world.muni.id, ORIGIN)
    programs.grant(s, world.volunteering.id, "ALICE234", key="g1", directory=directory)
    return {"key": account.api_key, "secret": account.signing_secret, "id": account.merchant_id}


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of the app."""
    return app.test_client()


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def refund(client: FlaskClient, shop: dict[str, Any], checkout: str, points: int, ref: str) -> Any:
    return client.post(
        f"{URL}/{checkout}/refunds",
        json={"amount": points, "reference": ref},
        headers=auth(shop["key"]),
    )


def order(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"amount": 300, "reference": "order-1", "return_url": f"{ORIGIN}/r"}
    base.update(changes)
    return base


def counts(s: Session) -> tuple[int, int, int]:
    out = (
        s.scalar(select(func.count()).select_from(Transfer)) or 0,
        s.scalar(select(func.count()).select_from(Checkout)) or 0,
        s.scalar(select(func.count()).select_from(WebhookDelivery)) or 0,
    )
    s.rollback()
    return out


def test_make_pay_refund_and_the_signed_result(
    client: FlaskClient, shop: dict[str, Any], s: Session, world: City
) -> None:
    made = client.post(URL, json=order(), headers=auth(shop["key"]))
    assert made.status_code == 201, made.json
    c = made.json["checkout"]
    assert (c["amount"], c["status"], c["reference"]) == (300, "open", "order-1")
    assert c["url"].endswith(f"/checkout/{c['id']}")
    assert made.headers["Cache-Control"] == "no-store"
    again = client.post(URL, json=order(), headers=auth(shop["key"]))
    assert again.status_code == 200 and again.json["checkout"]["id"] == c["id"]

    paid = services.pay(s, c["id"], "ALICE234")
    assert (paid.status, paid.replayed) == ("paid", False)
    assert services.pay(s, c["id"], "ALICE234").replayed  # the same citizen again: once
    assert spendable(s, world.muni.id, "ALICE234") == 200
    shown = client.get(f"{URL}/{c['id']}", headers=auth(shop["key"])).json["checkout"]
    assert shown["status"] == "paid"
    assert "ALICE234" not in json.dumps(shown)  # rule 2: never who paid

    # The signed result on the return URL checks with the shop's secret.
    row = s.get(Checkout, c["id"])
    assert row is not None
    url = signed_result(s, row)
    assert url.startswith(f"{ORIGIN}/r?")
    q = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert (q["status"], q["amount"], q["order"]) == ("paid", "300", "order-1")
    expected = result_signature(
        shop["secret"], q["checkout"], q["order"], q["status"], int(q["amount"]), int(q["ts"])
    )
    assert q["sig"] == expected and "ALICE234" not in url

    part = client.post(
        f"{URL}/{c['id']}/refunds",
        json={"amount": 100, "reference": "r1"},
        headers=auth(shop["key"]),
    )
    assert part.status_code == 201, part.json
    assert (part.json["refund"]["refunded"], part.json["refund"]["refundable"]) == (100, 200)
    replay = client.post(
        f"{URL}/{c['id']}/refunds",
        json={"amount": 100, "reference": "r1"},
        headers=auth(shop["key"]),
    )
    assert replay.status_code == 200 and replay.json["refund"]["refunded"] == 100
    before = counts(s)
    over = client.post(
        f"{URL}/{c['id']}/refunds",
        json={"amount": 201, "reference": "r2"},
        headers=auth(shop["key"]),
    )
    assert over.status_code == 422 and over.json["error"]["code"] == "refund_exceeds_spent"
    other = client.post(
        f"{URL}/{c['id']}/refunds",
        json={"amount": 50, "reference": "r1"},
        headers=auth(shop["key"]),
    )
    assert other.status_code == 409 and other.json["error"]["code"] == "idempotency_conflict"
    assert counts(s) == before
    rest = client.post(
        f"{URL}/{c['id']}/refunds",
        json={"amount": 200, "reference": "r2"},
        headers=auth(shop["key"]),
    )
    assert rest.status_code == 201 and rest.json["refund"]["refundable"] == 0
    assert spendable(s, world.muni.id, "ALICE234") == 500
    events = [d.event for d in s.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id))]
    assert events == ["checkout.paid", "checkout.refunded", "checkout.refunded"]
    assert all("ALICE234" not in d.body for d in s.scalars(select(WebhookDelivery)))


@pytest.mark.parametrize(
    ("header", "status"),
    [
        (None, 401),
        ("Bearer nope", 401),
        ("Bearer icm_0123456789abcdef_" + "A" * 43, 401),
        ("Basic abc", 401),
    ],
)
def test_bad_keys_are_refused(
    client: FlaskClient, shop: dict[str, Any], s: Session, header: str | None, status: int
) -> None:
    before = counts(s)
    answer = client.post(URL, json=order(), headers={"Authorization": header} if header else {})
    assert answer.status_code == status and answer.json["error"]["code"] == "unauthorized"
    assert "ichimai-shops" in answer.headers["WWW-Authenticate"]
    assert counts(s) == before


def test_a_revoked_key_and_a_partner_key_are_refused(
    client: FlaskClient, shop: dict[str, Any], s: Session, world: City
) -> None:
    assert client.post(URL, json=order(), headers=auth(world.api_key)).status_code == 401
    keys.revoke_key(s, shop["id"], shop["key"].split("_")[1])
    s.commit()
    assert client.post(URL, json=order(), headers=auth(shop["key"])).status_code == 401


def test_a_till_merchant_cannot_use_the_api(
    client: FlaskClient, shop: dict[str, Any], s: Session, world: City
) -> None:
    key = keys.issue_key(s, world.museum.id)
    s.commit()
    assert client.post(URL, json=order(), headers=auth(key)).status_code == 401


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"amount": 0}, "invalid_amount"),
        ({"amount": -5}, "invalid_amount"),
        ({"amount": 1.5}, "invalid_amount"),
        ({"amount": "300"}, "invalid_amount"),
        ({"amount": True}, "invalid_amount"),
        ({"amount": 10_000_001}, "invalid_amount"),
        ({"reference": ""}, "invalid_reference"),
        ({"reference": "has space"}, "invalid_reference"),
        ({"reference": "x" * 65}, "invalid_reference"),
        ({"return_url": "https://evil.example.com/r"}, "invalid_return_url"),
        ({"return_url": "//evil.example.com/r"}, "invalid_return_url"),
        ({"return_url": "/r"}, "invalid_return_url"),
        ({"return_url": "javascript:alert(1)"}, "invalid_return_url"),
        ({"return_url": "http://shop.example.jp/r"}, "invalid_return_url"),
        ({"return_url": "https://shop.example.jp.evil.com/r"}, "invalid_return_url"),
        ({"return_url": "https://shop.example.jp@evil.com/r"}, "invalid_return_url"),
        ({"return_url": "https://evil.com\\@shop.example.jp/r"}, "invalid_return_url"),
        ({"return_url": "https://shop.example.jp:8443/r"}, "invalid_return_url"),
        ({"return_url": f"{ORIGIN}/r#x"}, "invalid_return_url"),
        ({"return_url": f"{ORIGIN}/" + "a" * 1000}, "invalid_return_url"),
        ({"extra": 1}, "unknown_field"),
    ],
)
def test_bad_requests_change_nothing(
    client: FlaskClient, shop: dict[str, Any], s: Session, changes: dict[str, Any], code: str
) -> None:
    before = counts(s)
    answer = client.post(URL, json=order(**changes), headers=auth(shop["key"]))
    assert answer.status_code == 400, answer.json
    assert answer.json["error"]["code"] == code
    assert answer.json["error"]["message"] and answer.json["error"]["message_ja"]
    assert counts(s) == before


def test_missing_field_and_not_json(client: FlaskClient, shop: dict[str, Any]) -> None:
    answer = client.post(URL, json={"amount": 5}, headers=auth(shop["key"]))
    assert answer.status_code == 400 and answer.json["error"]["code"] == "missing_field"
    answer = client.post(URL, data="amount=5", headers=auth(shop["key"]))
    assert answer.status_code == 400 and answer.json["error"]["code"] == "invalid_input"


def test_same_reference_other_body_is_409(
    client: FlaskClient, shop: dict[str, Any], s: Session
) -> None:
    assert client.post(URL, json=order(), headers=auth(shop["key"])).status_code == 201
    before = counts(s)
    for changes in ({"amount": 301}, {"return_url": f"{ORIGIN}/other"}):
        answer = client.post(URL, json=order(**changes), headers=auth(shop["key"]))
        assert answer.status_code == 409 and answer.json["error"]["code"] == "idempotency_conflict"
    assert counts(s) == before


def test_expired_cancelled_and_another_payer(
    client: FlaskClient, shop: dict[str, Any], s: Session, app: Flask, directory: KnownMyKeyIds
) -> None:
    merchant = s.get(Merchant, shop["id"])
    assert merchant is not None
    t = services.utc_now()
    old = services.create(
        s, merchant, amount=100, order="o-old", return_url=f"{ORIGIN}/r", now=t - timedelta(hours=1)
    )
    with pytest.raises(PointsError) as refused:
        services.pay(s, old.id, "ALICE234")
    assert refused.value.code is Code.CHECKOUT_EXPIRED
    shown = client.get(f"{URL}/{old.id}", headers=auth(shop["key"])).json["checkout"]
    assert shown["status"] == "expired"

    gone = services.create(s, merchant, amount=100, order="o-cancel", return_url=f"{ORIGIN}/r")
    assert services.cancel(s, gone.id).status == "cancelled"
    assert services.cancel(s, gone.id).replayed  # again: the same
    with pytest.raises(PointsError) as refused:
        services.pay(s, gone.id, "ALICE234")
    assert refused.value.code is Code.CHECKOUT_CANCELLED

    twice = services.create(s, merchant, amount=100, order="o-twice", return_url=f"{ORIGIN}/r")
    services.pay(s, twice.id, "ALICE234")
    with pytest.raises(PointsError) as refused:
        services.pay(s, twice.id, "BOB23456")
    assert refused.value.code is Code.CHECKOUT_PAID
    with pytest.raises(PointsError) as refused:
        services.cancel(s, twice.id)
    assert refused.value.code is Code.CHECKOUT_PAID
    paid = s.scalars(select(Transfer).where(Transfer.kind == "spend")).all()
    assert [t.amount for t in paid] == [100]


def test_not_enough_points_changes_nothing(
    client: FlaskClient, shop: dict[str, Any], s: Session
) -> None:
    merchant = s.get(Merchant, shop["id"])
    assert merchant is not None
    big = services.create(s, merchant, amount=501, order="o-big", return_url=f"{ORIGIN}/r")
    before = counts(s)
    with pytest.raises(PointsError) as refused:
        services.pay(s, big.id, "ALICE234")
    assert refused.value.code is Code.INSUFFICIENT_POINTS
    assert counts(s) == before
    assert s.get(Checkout, big.id).status == "open"


def test_refund_of_unpaid_and_of_another_shop(
    client: FlaskClient, shop: dict[str, Any], s: Session, world: City
) -> None:
    made = client.post(URL, json=order(), headers=auth(shop["key"])).json["checkout"]
    answer = client.post(
        f"{URL}/{made['id']}/refunds",
        json={"amount": 1, "reference": "r"},
        headers=auth(shop["key"]),
    )
    assert answer.status_code == 422 and answer.json["error"]["code"] == "checkout_not_paid"
    missing = client.get(f"{URL}/co_nothere", headers=auth(shop["key"]))
    assert missing.status_code == 404 and missing.json["error"]["code"] == "unknown_checkout"
