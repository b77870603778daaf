"""An online purchase past the refund window (issues 16 and 18 together): compaction
takes the citizen out of the shop's checkout and its refund, the shop's view of its
order (amount, refunded, status) stays as it was, and a refund is refused as late."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from tests.support.points_retention import DAY, NOW, T0
from webapp.db import Base
from webapp.points import invariants, programs, reports
from webapp.points.checkout import services
from webapp.points.checkout.demo import build_shop
from webapp.points.checkout.models import CHECKOUT_TABLES
from webapp.points.demo import build_city
from webapp.points.directory import KnownMyKeyIds
from webapp.points.errors import Code, Refused
from webapp.points.models import Merchant, Municipality
from webapp.points.retention import compact, scan

ORIGIN = "https://shop.example.jp"


def test_a_checkout_past_the_window_keeps_the_order_and_loses_the_citizen(
    app: Flask, s: Session, directory: KnownMyKeyIds
) -> None:
    Base.metadata.create_all(app.extensions["db_engine"], tables=CHECKOUT_TABLES)
    city = build_city(s, now=T0)
    muni = s.get(Municipality, city.muni.id)
    assert muni is not None
    muni.refund_window_days = None  # the platform's 90 days
    s.commit()
    account = build_shop(s, city.muni.id, ORIGIN)
    merchant = s.get(Merchant, account.merchant_id)
    assert merchant is not None
    programs.grant(s, city.volunteering.id, "ALICE234", key="g1", directory=directory, now=T0)
    made = services.create(
        s, merchant, amount=300, order="order-1", return_url=f"{ORIGIN}/r", now=T0 + DAY
    )
    services.pay(s, made.id, "ALICE234", now=T0 + DAY)
    services.refund(s, merchant, made.id, amount=120, ref="r1", now=T0 + 2 * DAY)
    before = services.view(s, services.get(s, made.id), NOW)
    assert {f.table for f in scan.scan(s, now=NOW)} >= {"points_transfers"}

    compact.compact(s, now=NOW)

    assert scan.scan(s, now=NOW) == []
    assert invariants.violations(s) == {}
    after = services.view(s, services.get(s, made.id), NOW)
    assert (after.status, after.amount, after.refunded) == (
        before.status,
        before.amount,
        before.refunded,
    )
    alice = reports.citizen_balances(s, "ALICE234")[0]
    months = {
        (m.month, m.category): (m.paid, m.received)
        for m in reports.citizen_months(s, alice.account_id)
    }
    assert months[("2025-04", "online_goods")] == (300, 120)
    with pytest.raises(Refused) as late:
        services.refund(s, merchant, made.id, amount=10, ref="r2", now=NOW)
    assert late.value.code is Code.REFUND_WINDOW_CLOSED
