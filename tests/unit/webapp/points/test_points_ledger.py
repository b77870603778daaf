"""Grants, spends, refunds, expiry and idempotency through the services, on SQLite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from webapp.points import expiry, ledger, programs, reports, spend
from webapp.points.demo import City
from webapp.points.directory import KnownMyKeyIds
from webapp.points.errors import Code, Conflict, InvalidInput, NotFound, PointsError, Refused
from webapp.points.ledger import Acct, Posting
from webapp.points.models import (
    Account,
    AccountKind,
    PointLot,
    ProgramCategory,
    Transfer,
    TransferKind,
)

T0 = datetime(2025, 4, 1, 9, 0, tzinfo=UTC)  # the clock of conftest.py


def grant(s: Session, w: City, d: KnownMyKeyIds, who: str, key: str, days: int = 0) -> int:
    """Grant VOL points at T0 + days; returns the transfer id."""
    return programs.grant(
        s, w.volunteering.id, who, key=key, directory=d, now=T0 + timedelta(days=days)
    ).transfer_id


def balance(s: Session, w: City, who: str) -> int:
    """The citizen's posted balance in the test city."""
    value = s.scalar(
        select(Account.balance).where(
            Account.municipality_id == w.muni.id, Account.owner == who, Account.kind == "citizen"
        )
    )
    s.rollback()
    return value or 0


def test_grant_credits_citizen_and_debits_budget(
    s: Session, world: City, directory: KnownMyKeyIds
) -> None:
    result = programs.grant(
        s, world.volunteering.id, "ALICE234", key="k1", directory=directory, now=T0
    )
    assert (result.points, result.balance, result.replayed) == (500, 500, False)
    assert result.expires_at == T0 + timedelta(days=180)
    budget = s.get(Account, world.volunteering.account_id)
    assert budget is not None and budget.balance == 100_000 - 500


def test_grant_replay_returns_first_result_and_changes_nothing(
    s: Session, world: City, directory: KnownMyKeyIds
) -> None:
    first = programs.grant(
        s, world.volunteering.id, "ALICE234", key="k1", directory=directory, now=T0
    )
    again = programs.grant(
        s,
        world.volunteering.id,
        "ALICE234",
        key="k1",
        directory=directory,
        now=T0 + timedelta(days=3),
    )
    assert again.transfer_id == first.transfer_id and again.replayed
    assert again.expires_at == first.expires_at
    assert balance(s, world, "ALICE234") == 500


def test_same_key_other_payload_is_refused(
    s: Session, world: City, directory: KnownMyKeyIds
) -> None:
    programs.grant(s, world.volunteering.id, "ALICE234", key="k1", directory=directory, now=T0)
    with pytest.raises(Conflict) as exc:
        programs.grant(s, world.volunteering.id, "BOB23456", key="k1", directory=directory, now=T0)
    assert exc.value.code is Code.IDEMPOTENCY_CONFLICT
    assert balance(s, world, "BOB23456") == 0


@pytest.mark.parametrize(
    ("who", "error", "code"),
    [
        ("NOBODY99", NotFound, Code.UNKNOWN_CITIZEN),
        ("bad id!", InvalidInput, Code.INVALID_MYKEY_ID),
        ("", InvalidInput, Code.INVALID_MYKEY_ID),
    ],
)
def test_grant_to_unknown_or_malformed_citizen(
    s: Session,
    world: City,
    directory: KnownMyKeyIds,
    who: str,
    error: type[PointsError],
    code: Code,
) -> None:
    with pytest.raises(error) as exc:
        programs.grant(s, world.volunteering.id, who, key="k1", directory=directory, now=T0)
    assert exc.value.code is code
    assert s.scalar(select(func.count()).select_from(Transfer).where(Transfer.kind == "grant")) == 0


def test_budget_is_never_overspent(s: Session, world: City, directory: KnownMyKeyIds) -> None:
    small = programs.create_program(
        s, world.muni.id, "CHECK", "健診", ProgramCategory.HEALTH_CHECKUP,
        points_per_grant=400, expiry_days=30, budget=1000, now=T0,
    )  # fmt: skip
    for n in range(2):
        programs.grant(s, small.id, "ALICE234", key=f"c{n}", directory=directory, now=T0)
    with pytest.raises(Refused) as exc:
        programs.grant(s, small.id, "BOB23456", key="c3", directory=directory, now=T0)
    assert exc.value.code is Code.BUDGET_EXHAUSTED
    programs.fund(s, small.id, 400, key="top-up", now=T0)
    programs.grant(s, small.id, "BOB23456", key="c3", directory=directory, now=T0)
    assert s.get(Account, small.account_id).balance == 200  # type: ignore[union-attr]


def test_per_citizen_caps(s: Session, world: City, directory: KnownMyKeyIds) -> None:
    capped = programs.create_program(
        s, world.muni.id, "EVENT", "イベント", ProgramCategory.EVENT,
        points_per_grant=100, expiry_days=30, budget=10_000, cap_grants_per_citizen=2, now=T0,
    )  # fmt: skip
    programs.grant(s, capped.id, "ALICE234", key="e1", directory=directory, now=T0)
    programs.grant(s, capped.id, "ALICE234", key="e2", directory=directory, now=T0)
    with pytest.raises(Refused) as exc:
        programs.grant(s, capped.id, "ALICE234", key="e3", directory=directory, now=T0)
    assert exc.value.code is Code.CAP_REACHED
    programs.grant(s, capped.id, "BOB23456", key="e4", directory=directory, now=T0)


def test_bonus_program_and_inactive_program_are_not_grantable(
    s: Session, world: City, directory: KnownMyKeyIds
) -> None:
    with pytest.raises(Refused):
        programs.grant(s, world.bonus.id, "ALICE234", key="b1", directory=directory, now=T0)
    world.volunteering.active = False
    s.commit()
    with pytest.raises(Refused) as exc:
        programs.grant(s, world.volunteering.id, "ALICE234", key="b2", directory=directory, now=T0)
    assert exc.value.code is Code.INACTIVE


def test_spend_consumes_oldest_expiring_lots_first(
    s: Session, world: City, directory: KnownMyKeyIds
) -> None:
    short = programs.create_program(
        s, world.muni.id, "SHORT", "短期", ProgramCategory.EVENT,
        points_per_grant=300, expiry_days=10, budget=10_000, now=T0,
    )  # fmt: skip
    grant(s, world, directory, "ALICE234", "long")  # 500, expires day 180
    programs.grant(s, short.id, "ALICE234", key="short", directory=directory, now=T0)  # 300, day 10
    receipt = spend.spend(s, world.museum.id, "ALICE234", 400, key="t1", now=T0 + timedelta(days=1))
    assert (receipt.points, receipt.balance) == (400, 400)
    lots = s.scalars(select(PointLot).order_by(PointLot.expires_at)).all()
    assert [lot.remaining for lot in lots] == [0, 400]


def test_spend_replay_after_balance_is_used_returns_first_receipt(
    s: Session, world: City, directory: KnownMyKeyIds
) -> None:
    grant(s, world, directory, "ALICE234", "g")
    first = spend.spend(s, world.museum.id, "ALICE234", 500, key="t1", now=T0)
    again = spend.spend(s, world.museum.id, "ALICE234", 500, key="t1", now=T0)
    assert again.replayed and again.transfer_id == first.transfer_id and again.balance == 0
    with pytest.raises(Conflict):
        spend.spend(s, world.museum.id, "ALICE234", 400, key="t1", now=T0)


def test_spend_more_than_balance_is_refused_and_changes_nothing(
    s: Session, world: City, directory: KnownMyKeyIds
) -> None:
    grant(s, world, directory, "ALICE234", "g")
    with pytest.raises(Refused) as exc:
        spend.spend(s, world.museum.id, "ALICE234", 501, key="t1", now=T0)
    assert exc.value.code is Code.INSUFFICIENT_POINTS
    with pytest.raises(Refused):
        spend.spend(s, world.museum.id, "BOB23456", 1, key="t2", now=T0)  # no account at all
    assert balance(s, world, "ALICE234") == 500


def test_expired_lots_are_not_spendable(s: Session, world: City, directory: KnownMyKeyIds) -> None:
    grant(s, world, directory, "ALICE234", "g")
    later = T0 + timedelta(days=181)
    assert spend.spendable(s, world.muni.id, "ALICE234", later) == 0
    with pytest.raises(Refused):
        spend.spend(s, world.museum.id, "ALICE234", 100, key="t1", now=later)


def test_refund_is_a_capped_reversal_within_the_window(
    s: Session, world: City, directory: KnownMyKeyIds
) -> None:
    grant(s, world, directory, "ALICE234", "g")
    paid = spend.spend(s, world.museum.id, "ALICE234", 300, key="t1", now=T0)
    r1 = spend.refund(
        s, world.museum.id, paid.transfer_id, 200, key="r1", now=T0 + timedelta(days=1)
    )
    assert (r1.points, r1.refundable_left) == (200, 100)
    with pytest.raises(Refused) as exc:
        spend.refund(
            s, world.museum.id, paid.transfer_id, 101, key="r2", now=T0 + timedelta(days=1)
        )
    assert exc.value.code is Code.REFUND_EXCEEDS_SPENT
    with pytest.raises(Refused) as exc:
        spend.refund(
            s, world.museum.id, paid.transfer_id, 100, key="r3", now=T0 + timedelta(days=31)
        )
    assert exc.value.code is Code.REFUND_WINDOW_CLOSED
    assert spend.refund(s, world.museum.id, paid.transfer_id, 200, key="r1", now=T0).replayed
    assert balance(s, world, "ALICE234") == 400
    refund = s.get(Transfer, r1.transfer_id)
    assert refund is not None and refund.reversal_of == paid.transfer_id


def test_refund_of_another_merchants_payment_is_not_found(
    s: Session, world: City, directory: KnownMyKeyIds
) -> None:
    from webapp.points import admin
    from webapp.points.models import MerchantCategory

    shop = admin.create_merchant(s, world.muni.id, "SHOP1", "商店", MerchantCategory.SHOP, now=T0)
    grant(s, world, directory, "ALICE234", "g")
    paid = spend.spend(s, world.museum.id, "ALICE234", 300, key="t1", now=T0)
    with pytest.raises(NotFound):
        spend.refund(s, shop.id, paid.transfer_id, 100, key="r1", now=T0)


def test_refund_restores_the_lots_with_their_expiry(
    s: Session, world: City, directory: KnownMyKeyIds
) -> None:
    grant(s, world, directory, "ALICE234", "g")
    paid = spend.spend(s, world.museum.id, "ALICE234", 500, key="t1", now=T0)
    spend.refund(s, world.museum.id, paid.transfer_id, 500, key="r1", now=T0)
    lot = s.scalars(select(PointLot)).one()
    assert (lot.remaining, lot.expires_at) == (500, T0 + timedelta(days=180))


def test_expiry_moves_leftovers_to_the_sink_and_is_idempotent(
    s: Session, world: City, directory: KnownMyKeyIds
) -> None:
    grant(s, world, directory, "ALICE234", "g1")
    grant(s, world, directory, "BOB23456", "g2")
    grant(s, world, directory, "BOB23456", "g3", days=100)
    spend.spend(s, world.museum.id, "ALICE234", 200, key="t1", now=T0)
    run = expiry.expire_due(s, now=T0 + timedelta(days=181), batch=1)
    assert (run.accounts, run.points) == (2, 300 + 500)
    assert expiry.expire_due(s, now=T0 + timedelta(days=181)).points == 0
    assert balance(s, world, "BOB23456") == 500
    assert s.scalar(select(func.count()).select_from(PointLot)) == 3  # never deleted
    summary = reports.municipality_summary(s, world.muni.id)
    assert summary.expired == 800 and summary.outstanding == 500


def test_revoke_grant_takes_back_unspent_points_only(
    s: Session, world: City, directory: KnownMyKeyIds
) -> None:
    g1 = grant(s, world, directory, "ALICE234", "g1")
    revoked = programs.revoke(s, g1, key="rv1", now=T0)
    assert revoked.amount == 500 and balance(s, world, "ALICE234") == 0
    assert programs.revoke(s, g1, key="rv1", now=T0).id == revoked.id  # a replay
    with pytest.raises(Conflict):
        programs.revoke(s, g1, key="rv1", points=100, now=T0)  # same key, other request
    with pytest.raises(Refused):
        programs.revoke(s, g1, key="rv2", points=1, now=T0)
    g2 = grant(s, world, directory, "ALICE234", "g2")
    spend.spend(s, world.museum.id, "ALICE234", 100, key="t1", now=T0)
    with pytest.raises(Refused) as exc:
        programs.revoke(s, g2, key="rv3", now=T0)
    assert exc.value.code is Code.NOT_REVERSIBLE
    assert programs.revoke(s, g2, key="rv4", points=400, now=T0).amount == 400


def test_ledger_refuses_same_account_and_cross_municipality(s: Session, world: City) -> None:
    from webapp.points import admin

    other = admin.create_municipality(s, "131016", "千代田区", now=T0)
    issuance = admin.system_account(s, other.id, AccountKind.ISSUANCE)
    own = Acct(AccountKind.PROGRAM, world.muni.id, id=world.volunteering.account_id)
    for debit, credit in [(own, own), (Acct(AccountKind.ISSUANCE, other.id, id=issuance.id), own)]:
        posting = Posting(TransferKind.FUNDING, debit, credit, 1, "x", "h")
        with pytest.raises(InvalidInput):
            ledger.write(s, [posting], T0)
        s.rollback()


def test_statement_and_balances_for_the_citizen(
    s: Session, world: City, directory: KnownMyKeyIds
) -> None:
    grant(s, world, directory, "ALICE234", "g1")
    spend.spend(s, world.museum.id, "ALICE234", 120, key="t1", now=T0 + timedelta(hours=1))
    [mine] = reports.citizen_balances(s, "ALICE234", T0)
    assert (mine.municipality_code, mine.balance, mine.spendable, mine.pending) == (
        "011002",
        380,
        380,
        0,
    )
    assert [(lot.remaining, lot.expired) for lot in mine.lots] == [(380, False)]
    lines = reports.citizen_transfers(s, mine.account_id)
    assert [(line.points, line.balance, line.counterparty) for line in lines] == [
        (-120, 380, "市立美術館"),
        (500, 500, "ボランティア"),
    ]
    assert (
        reports.citizen_transfers(s, mine.account_id, before_id=lines[0].transfer_id)[0].points
        == 500
    )


def test_statement_names_counterparties_in_one_query_per_kind(
    s: Session, world: City, directory: KnownMyKeyIds
) -> None:
    """Spends at five merchants cost one merchants query, not five (no N+1 at the kiosk)."""
    from sqlalchemy import event

    from webapp.points import admin
    from webapp.points.models import MerchantCategory

    grant(s, world, directory, "ALICE234", "g1")
    shops = [world.museum] + [
        admin.create_merchant(
            s, world.muni.id, f"SHOP{n}", f"商店{n}", MerchantCategory.SHOP, now=T0
        )
        for n in range(4)
    ]
    for n, shop in enumerate(shops):
        spend.spend(s, shop.id, "ALICE234", 10, key=f"t{n}", now=T0 + timedelta(hours=n + 1))
    [mine] = reports.citizen_balances(s, "ALICE234", T0)
    seen: list[str] = []

    def capture(_conn: object, _cursor: object, sql: str, *_: object) -> None:
        seen.append(sql)

    engine = s.get_bind()
    event.listen(engine, "before_cursor_execute", capture)
    try:
        lines = reports.citizen_transfers(s, mine.account_id)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert [line.counterparty for line in lines] == [
        "商店3", "商店2", "商店1", "商店0", "市立美術館", "ボランティア",
    ]  # fmt: skip
    assert [line.detail for line in lines][:2] == ["shop", "shop"]
    # The transfers, the merchants, the programs: three queries.
    assert len([q for q in seen if q.lstrip().upper().startswith("SELECT")]) == 3
