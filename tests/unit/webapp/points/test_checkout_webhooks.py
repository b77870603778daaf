"""The shops' webhooks from the outbox: delivered signed to the demo shop over real HTTP
(which checks the signature and its time, and takes each event once), retried with
backoff while the shop is down or answering 5xx, given up after the maximum of tries
and shown to the officer, and sent again on the officer's word. Also the officer's shop
settings: origins checked, the secret and keys shown once, every change in the log."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.db import Base
from webapp.demo_shop import Order, create_shop, webhook_ok
from webapp.devserver import local_server
from webapp.points import programs
from webapp.points.checkout import services, webhooks
from webapp.points.checkout.models import CHECKOUT_TABLES, Shop, WebhookDelivery
from webapp.points.checkout.signing import check_origin, webhook_signature
from webapp.points.demo import City
from webapp.points.directory import KnownMyKeyIds
from webapp.points.errors import Code, PointsError
from webapp.points.models import AcceptedCategory, AuditEntry, Merchant, MerchantCategory
from webapp.points.officer import Officer
from webapp.points.officer import shops as shop_services
from webapp.points.officer.merchants import add_merchant
from webapp.scaled import free_port


@pytest.fixture
def live_shop(app: Flask, s: Session, world: City, directory: KnownMyKeyIds) -> Iterator[Any]:
    """An online shop set up by the officer, served by the demo shop app on 127.0.0.1."""
    Base.metadata.create_all(app.extensions["db_engine"], tables=CHECKOUT_TABLES)
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    who = Officer(world.muni.id, "officer")
    s.add(AcceptedCategory(municipality_id=world.muni.id, category="online_goods"))
    s.commit()
    merchant = add_merchant(
        s, who, code="SHOP1", name="物産", category=MerchantCategory.ONLINE_GOODS
    )
    _, secret = shop_services.save_settings(
        s, who, merchant.id, origins_text=origin, webhook_url=f"{origin}/webhook",
        allow_loopback=True,
    )  # fmt: skip
    key = shop_services.issue_key(s, who, merchant.id)
    programs.grant(s, world.volunteering.id, "ALICE234", key="g1", directory=directory)
    shop_app = create_shop("http://unused", key, secret, origin)
    server = local_server(shop_app, port)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"merchant": merchant, "secret": secret, "key": key, "shop": shop_app,
           "server": server, "origin": origin, "who": who}  # fmt: skip
    server.shutdown()
    server.server_close()


def _paid_checkout(s: Session, live_shop: dict[str, Any], ref: str) -> str:
    merchant = s.get(Merchant, live_shop["merchant"].id)
    assert merchant is not None
    made = services.create(
        s, merchant, amount=100, order=ref, return_url=f"{live_shop['origin']}/return"
    )
    state = live_shop["shop"].extensions["demo_shop"]
    state.orders[ref] = Order(ref, 100, checkout=made.id)
    services.pay(s, made.id, "ALICE234")
    return made.id


def test_delivered_signed_once_and_repeats_are_told_apart(
    s: Session, live_shop: dict[str, Any]
) -> None:
    _paid_checkout(s, live_shop, "o-1")
    sender = webhooks.http_sender(allow_private=True)
    done = webhooks.deliver_due(s, sender)
    assert (done.delivered, done.retrying, done.failed) == (1, 0, 0)
    state = live_shop["shop"].extensions["demo_shop"]
    assert state.orders["o-1"].events == ["checkout.paid"]
    assert state.orders["o-1"].status == "paid" and state.bad_signatures == 0
    assert webhooks.deliver_due(s, sender).delivered == 0  # nothing due any more
    # The same event delivered again (a worker died after sending): taken once.
    row = s.scalars(select(WebhookDelivery)).one()
    row.status, row.next_attempt_at = "pending", services.utc_now()
    s.commit()
    assert webhooks.deliver_due(s, sender).delivered == 1
    assert state.orders["o-1"].events == ["checkout.paid"]


def test_signature_checks() -> None:
    body = json.dumps({"id": "evt_1"})
    header = webhook_signature("whsec_x", 1_700_000_000, body)
    assert webhook_ok("whsec_x", header, body.encode(), now=1_700_000_010)
    assert not webhook_ok("whsec_y", header, body.encode(), now=1_700_000_010)  # other secret
    assert not webhook_ok("whsec_x", header, b'{"id":"evt_2"}', now=1_700_000_010)  # changed
    assert not webhook_ok("whsec_x", header, body.encode(), now=1_700_000_000 + 301)  # old
    assert not webhook_ok("whsec_x", "t=abc,v1=00", body.encode())


def test_a_wrong_secret_is_refused_by_the_shop_and_retried(
    s: Session, live_shop: dict[str, Any]
) -> None:
    _paid_checkout(s, live_shop, "o-2")
    shop = s.get(Shop, live_shop["merchant"].id)
    assert shop is not None
    shop.signing_secret = "whsec_not_the_shops"
    s.commit()
    done = webhooks.deliver_due(s, webhooks.http_sender(allow_private=True))
    assert done.retrying == 1
    assert live_shop["shop"].extensions["demo_shop"].bad_signatures == 1
    row = s.scalars(select(WebhookDelivery)).one()
    assert (row.attempts, row.last_error) == (1, "HTTP 400")


def test_backoff_then_give_up_then_officer_sends_again(
    s: Session, live_shop: dict[str, Any]
) -> None:
    _paid_checkout(s, live_shop, "o-3")
    # The shop is down: nothing listens on its port any more.
    live_shop["server"].shutdown()
    live_shop["server"].server_close()
    sender = webhooks.http_sender(allow_private=True, timeout=2)
    now = services.utc_now()
    waits = []
    for attempt in range(1, 4):
        done = webhooks.deliver_due(s, sender, now=now, max_attempts=4)
        assert done.retrying == 1, attempt
        row = s.scalars(select(WebhookDelivery)).one()
        waits.append(row.next_attempt_at - now)
        assert "Connection refused" in (row.last_error or "")
        assert webhooks.deliver_due(s, sender, now=now, max_attempts=4) == webhooks.Pass()
        now = row.next_attempt_at
    assert waits == [timedelta(seconds=30), timedelta(seconds=60), timedelta(seconds=120)]
    done = webhooks.deliver_due(s, sender, now=now, max_attempts=4)
    assert done.failed == 1
    [trouble] = webhooks.troubles(s, live_shop["merchant"].id)
    assert (trouble.status, trouble.attempts) == ("failed", 4)
    assert webhooks.deliver_due(s, sender, now=now + timedelta(days=1)) == webhooks.Pass()
    assert webhooks.retry_now(s, live_shop["merchant"].id, trouble.id)
    assert not webhooks.retry_now(s, live_shop["merchant"].id + 99, trouble.id)
    assert s.get(WebhookDelivery, trouble.id).status == "pending"


def test_backoff_is_capped() -> None:
    assert webhooks.backoff(1) == timedelta(seconds=30)
    assert webhooks.backoff(5) == timedelta(minutes=8)
    assert webhooks.backoff(20) == timedelta(hours=1)


def test_private_addresses_are_refused_unless_allowed() -> None:
    sent = webhooks.http_sender()("http://127.0.0.1:9/webhook", "{}", {})
    assert not sent.ok and "not a public address" in sent.error


@pytest.mark.parametrize(
    ("text", "loopback", "stored"),
    [
        ("https://Shop.Example.jp/", False, "https://shop.example.jp"),
        ("https://shop.example.jp:443", False, "https://shop.example.jp"),
        ("https://shop.example.jp:8443", False, "https://shop.example.jp:8443"),
        ("http://127.0.0.1:5001", True, "http://127.0.0.1:5001"),
    ],
)
def test_origins_accepted(text: str, loopback: bool, stored: str) -> None:
    assert check_origin(text, allow_loopback_http=loopback) == stored


@pytest.mark.parametrize(
    "text",
    [
        "http://shop.example.jp",
        "http://127.0.0.1:5001",  # loopback not allowed here
        "https://shop.example.jp/path",
        "https://user@shop.example.jp",
        "ftp://shop.example.jp",
        "shop.example.jp",
        "https://shop.example.jp?x=1",
    ],
)
def test_origins_refused(text: str) -> None:
    with pytest.raises(PointsError) as refused:
        check_origin(text, allow_loopback_http=False)
    assert refused.value.code is Code.INVALID_ORIGIN


def test_officer_settings_are_checked_and_logged(
    s: Session, world: City, live_shop: dict[str, Any]
) -> None:
    who, merchant = live_shop["who"], live_shop["merchant"]
    with pytest.raises(PointsError) as refused:
        shop_services.save_settings(
            s, who, merchant.id, origins_text="https://a.example.jp",
            webhook_url="https://b.example.jp/hook", allow_loopback=False,
        )  # fmt: skip
    assert refused.value.code is Code.INVALID_ORIGIN
    with pytest.raises(PointsError) as refused:  # a till merchant has no shop
        shop_services.issue_key(s, who, world.museum.id)
    assert refused.value.code is Code.NOT_A_SHOP
    other = Officer(world.muni.id + 1, "elsewhere")
    with pytest.raises(PointsError) as refused:
        shop_services.issue_key(s, other, merchant.id)
    assert refused.value.code is Code.UNKNOWN_MERCHANT
    secret = shop_services.renew_secret(s, who, merchant.id)
    assert secret.startswith("whsec_") and secret != live_shop["secret"]
    s.rollback()
    actions = [e.action for e in s.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert actions[-3:] == ["shop.settings", "shop.key_issue", "shop.secret"]
    logged = json.dumps([e.changes for e in s.scalars(select(AuditEntry))])
    assert secret not in logged and live_shop["secret"] not in logged
    assert live_shop["key"].split("_", 2)[2] not in logged  # the secret (it may hold "_")


def test_the_delivery_command_sends_what_is_due(
    app: Flask, s: Session, live_shop: dict[str, Any]
) -> None:
    _paid_checkout(s, live_shop, "o-cli")
    app.config["CHECKOUT_ALLOW_LOOPBACK"] = True
    result = app.test_cli_runner().invoke(args=["points", "deliver-webhooks"])
    assert result.exit_code == 0, result.output
    assert "delivered 1, retrying 0, failed 0" in result.output
    state = live_shop["shop"].extensions["demo_shop"]
    assert state.orders["o-cli"].events == ["checkout.paid"]
    # Outside the demo and the tests, a webhook to a private address is refused.
    _paid_checkout(s, live_shop, "o-cli-2")
    app.config["CHECKOUT_ALLOW_LOOPBACK"] = False
    result = app.test_cli_runner().invoke(args=["points", "deliver-webhooks"])
    assert "delivered 0, retrying 1, failed 0" in result.output
    row = s.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id.desc())).first()
    assert row is not None and "not a public address" in (row.last_error or "")
