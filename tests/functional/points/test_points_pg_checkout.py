"""Checkouts on PostgreSQL under concurrency: parallel payments of one checkout pay once
(the same citizen gets the one receipt, another citizen is refused), parallel refunds
never refund more than was paid in total, parallel creations with one order reference
make one checkout; each committed change has exactly its webhook in the outbox."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from points_workload import T0
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from webapp.db import Base
from webapp.points import invariants, programs
from webapp.points.checkout import services, webhooks
from webapp.points.checkout.demo import build_shop
from webapp.points.checkout.models import CHECKOUT_TABLES, Checkout, WebhookDelivery
from webapp.points.demo import build_city
from webapp.points.directory import AnyMyKeyId
from webapp.points.errors import Code, PointsError
from webapp.points.models import Merchant, Transfer
from webapp.points.spend import spendable

ORIGIN = "https://shop.example.jp"


def _world(engine: Engine, sessions: sessionmaker[Session]) -> tuple[int, int]:
    Base.metadata.create_all(engine, tables=CHECKOUT_TABLES)
    d = AnyMyKeyId()
    with sessions() as s:
        city = build_city(s, now=T0)
        shop = build_shop(s, city.muni.id, ORIGIN)
        programs.grant(s, city.volunteering.id, "ALICE234", key="g", directory=d)
        programs.grant(s, city.volunteering.id, "BOB23456", key="g2", directory=d)
        return city.muni.id, shop.merchant_id


def _checkout(sessions: sessionmaker[Session], merchant_id: int, ref: str, points: int) -> str:
    with sessions() as s:
        merchant = s.get(Merchant, merchant_id)
        assert merchant is not None
        return services.create(s, merchant, amount=points, order=ref, return_url=f"{ORIGIN}/r").id


def test_parallel_payments_pay_once(pg_engine: Engine, pg_sessions: sessionmaker[Session]) -> None:
    muni, merchant_id = _world(pg_engine, pg_sessions)
    checkout_id = _checkout(pg_sessions, merchant_id, "o-1", 300)

    def pay(i: int) -> str:
        citizen = "ALICE234" if i % 2 == 0 else "BOB23456"
        with pg_sessions() as s:
            try:
                return f"{citizen}:{services.pay(s, checkout_id, citizen).status}"
            except PointsError as exc:
                return f"{citizen}:{exc.code.value}"

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(pay, range(16)))
    winners = {o.split(":")[0] for o in outcomes if o.endswith(":paid")}
    assert len(winners) == 1, outcomes
    loser = ({"ALICE234", "BOB23456"} - winners).pop()
    assert all(o == f"{loser}:{Code.CHECKOUT_PAID.value}" for o in outcomes if o.startswith(loser))
    with pg_sessions() as s:
        spends = s.scalars(select(Transfer).where(Transfer.kind == "spend")).all()
        assert [t.amount for t in spends] == [300]
        winner = winners.pop()
        assert spendable(s, muni, winner) == 200 and spendable(s, muni, loser) == 500
        events = s.scalars(select(WebhookDelivery.event)).all()
        assert events == ["checkout.paid"]
        assert invariants.violations(s) == {}


def test_parallel_refunds_never_exceed_the_payment(
    pg_engine: Engine, pg_sessions: sessionmaker[Session]
) -> None:
    muni, merchant_id = _world(pg_engine, pg_sessions)
    checkout_id = _checkout(pg_sessions, merchant_id, "o-2", 400)
    with pg_sessions() as s:
        services.pay(s, checkout_id, "ALICE234")

    def refund(i: int) -> str:
        with pg_sessions() as s:
            merchant = s.get(Merchant, merchant_id)
            assert merchant is not None
            try:
                done = services.refund(s, merchant, checkout_id, amount=150, ref=f"r{i}")
                return f"ok:{done.refunded}"
            except PointsError as exc:
                return exc.code.value

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(refund, range(12)))
    assert sum(o.startswith("ok:") for o in outcomes) == 2, outcomes  # 300 of 400
    assert outcomes.count(Code.REFUND_EXCEEDS_SPENT.value) == 10
    with pg_sessions() as s:
        refunds = s.scalars(select(Transfer.amount).where(Transfer.kind == "refund")).all()
        assert sorted(refunds) == [150, 150]
        assert spendable(s, muni, "ALICE234") == 100 + 300
        assert (
            s.scalar(
                select(func.count())
                .select_from(WebhookDelivery)
                .where(WebhookDelivery.event == "checkout.refunded")
            )
            == 2
        )
        assert invariants.violations(s) == {}


def test_parallel_same_reference_refunds_pay_once(
    pg_engine: Engine, pg_sessions: sessionmaker[Session]
) -> None:
    _, merchant_id = _world(pg_engine, pg_sessions)
    checkout_id = _checkout(pg_sessions, merchant_id, "o-3", 400)
    with pg_sessions() as s:
        services.pay(s, checkout_id, "ALICE234")

    def refund(_: int) -> int:
        with pg_sessions() as s:
            merchant = s.get(Merchant, merchant_id)
            assert merchant is not None
            return services.refund(s, merchant, checkout_id, amount=100, ref="same").refunded

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(refund, range(8))) == {100}
    with pg_sessions() as s:
        assert s.scalars(select(Transfer.amount).where(Transfer.kind == "refund")).all() == [100]


def test_parallel_creations_of_one_order_make_one_checkout(
    pg_engine: Engine, pg_sessions: sessionmaker[Session]
) -> None:
    _, merchant_id = _world(pg_engine, pg_sessions)
    with ThreadPoolExecutor(8) as pool:
        ids = set(pool.map(lambda _: _checkout(pg_sessions, merchant_id, "o-4", 10), range(8)))
    assert len(ids) == 1
    with pg_sessions() as s:
        assert s.scalar(select(func.count()).select_from(Checkout)) == 1


def test_parallel_delivery_workers_send_each_event_once(
    pg_engine: Engine, pg_sessions: sessionmaker[Session]
) -> None:
    """Four workers passing over the outbox at once (FOR UPDATE SKIP LOCKED, a lease):
    every event is sent once, and all are delivered."""
    _, merchant_id = _world(pg_engine, pg_sessions)
    for i in range(12):
        checkout_id = _checkout(pg_sessions, merchant_id, f"o-w{i}", 1)
        with pg_sessions() as s:
            services.cancel(s, checkout_id)
    sent: list[str] = []
    lock = threading.Lock()

    def send(url: str, body: str, headers: dict[str, str]) -> webhooks.Sent:
        time.sleep(0.05)
        with lock:
            sent.append(headers["Ichimai-Event-Id"])
        return webhooks.Sent(True)

    def worker(_: int) -> int:
        with pg_sessions() as s:
            return webhooks.deliver_due(s, send, batch=4).delivered

    with ThreadPoolExecutor(4) as pool:
        delivered = sum(pool.map(worker, range(4)))
    with pg_sessions() as s:
        while (more := webhooks.deliver_due(s, send).delivered) > 0:
            delivered += more
        states = s.scalars(select(WebhookDelivery.status)).all()
    assert delivered == 12 and len(sent) == 12 and len(set(sent)) == 12
    assert set(states) == {"delivered"}
