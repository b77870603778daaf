"""Every payment from a program honours its caps and budget, whichever path it takes.

One table of limits (a per-citizen cap in points, a per-citizen count of payments, the
budget, the program paused, before its start or after its end), run on every path that
pays a citizen from a program: a staff grant, a CSV file (with its own check, and with
only the ledger's), and a partner conversion's bonus, posted at once, held then posted,
and held then cancelled. A grant past a limit is refused; a conversion always goes
through, its bonus paid only up to what the limit leaves (possibly nothing). The ledger
invariants are checked after each.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from webapp.points import admin, conversion, grant_csv, ledger, programs, reports
from webapp.points.demo import City
from webapp.points.directory import KnownMyKeyIds
from webapp.points.errors import Code, CsvRejected, PointsError
from webapp.points.ledger import Acct, Caps, Posting
from webapp.points.models import (
    Account,
    AccountKind,
    Program,
    ProgramCategory,
    ProgramCitizenTotal,
    Transfer,
    TransferKind,
)

T0 = datetime(2025, 4, 1, 9, 0, tzinfo=UTC)
PER_GRANT = 100  # a grant of the capped program
ASKED = 100  # the bonus of converting 1,000 partner points at 10 %

# kind -> the program's limits ("paused": made inactive after creation)
LIMITS: dict[str, dict[str, int | bool]] = {
    "points": {"cap_points_per_citizen": 150},
    "grants": {"cap_grants_per_citizen": 1},
    "budget": {"budget": 150},
    "paused": {"paused": True},
    "not_started": {},  # starts the day after T0 (see DATES)
    "ended": {},  # ended at T0
}
DATES = {"not_started": (T0 + timedelta(days=1), None), "ended": (None, T0)}
# What three grants to one citizen get: a points total or the refusal's code.
GRANTS = {
    "points": [100, Code.CAP_REACHED, Code.CAP_REACHED],
    "grants": [100, Code.CAP_REACHED, Code.CAP_REACHED],
    "budget": [100, Code.BUDGET_EXHAUSTED, Code.BUDGET_EXHAUSTED],
    "paused": [Code.INACTIVE, Code.INACTIVE, Code.INACTIVE],
    "not_started": [Code.NOT_RUNNING] * 3,
    "ended": [Code.NOT_RUNNING] * 3,
}
# The bonus paid on each of three conversions for one citizen (each asks 100).
BONUSES = {
    "points": [100, 50, 0],
    "grants": [100, 0, 0],
    "budget": [100, 50, 0],
    "paused": [0, 0, 0],
    "not_started": [0, 0, 0],
    "ended": [0, 0, 0],
}


def capped(
    s: Session, world: City, kind: str, category: ProgramCategory = ProgramCategory.EVENT
) -> Program:
    """A program of the test city with the limit `kind`."""
    limits = dict(LIMITS[kind])
    paused = bool(limits.pop("paused", False))
    kw: dict[str, int] = {"budget": 10_000, **{k: int(v) for k, v in limits.items()}}
    program = programs.create_program(
        s, world.muni.id, "CAP", "上限つき事業", category,
        points_per_grant=PER_GRANT, expiry_days=30, now=T0, **kw,
    )  # fmt: skip
    if paused:
        program.active = False
        s.commit()
    if kind in DATES:
        program.starts_at, program.ends_at = DATES[kind]
        s.commit()
    return program


def received(s: Session, program_id: int, citizen: str = "ALICE234") -> int:
    """Points credited to `citizen` from the program, held or posted, never voided."""
    paid = s.scalars(
        select(Transfer)
        .join(Account, Account.id == Transfer.credit_account_id)
        .where(
            Transfer.program_id == program_id,
            Transfer.pending_id.is_(None),
            Account.owner == citizen,
        )
    ).all()
    voided = {
        t.pending_id
        for t in s.scalars(select(Transfer).where(Transfer.status == "voided"))
        if t.pending_id is not None
    }
    total = sum(t.amount for t in paid if t.id not in voided)
    s.rollback()
    return total


# --- grants: one by one, and by CSV file ----------------------------------------------


def one_by_one(s: Session, world: City, d: KnownMyKeyIds, program: int, n: int) -> None:
    """A staff grant (programs.grant)."""
    programs.grant(s, program, "ALICE234", key=f"g{n}", directory=d, now=T0)


def by_file(s: Session, world: City, d: KnownMyKeyIds, program: int, n: int) -> None:
    """A CSV file of one row (each file different: n blank lines)."""
    data = b"mykey_id,program\n" + b"\n" * n + b"ALICE234,CAP\n"
    grant_csv.grant_file(s, world.muni.id, data, directory=d, now=T0)


def by_file_ledger_only(s: Session, world: City, d: KnownMyKeyIds, program: int, n: int) -> None:
    """A CSV file whose own check did not see the earlier grants (as when another file
    was applied between its check and its write): the ledger's check is what holds."""
    real = grant_csv._total
    grant_csv._total = lambda *args: (0, 0)  # type: ignore[assignment]
    try:
        by_file(s, world, d, program, n)
    finally:
        grant_csv._total = real  # type: ignore[assignment]


def outcome(call: Callable[[], None]) -> Code | None:
    """None when it went through, else the refusal's code (a file's first row error)."""
    try:
        call()
    except CsvRejected as exc:
        return exc.errors[0].code
    except PointsError as exc:
        return exc.code
    return None


@pytest.mark.parametrize("kind", list(LIMITS))
@pytest.mark.parametrize("path", [one_by_one, by_file, by_file_ledger_only])
def test_grants_stop_at_every_limit(
    s: Session,
    world: City,
    directory: KnownMyKeyIds,
    path: Callable[[Session, City, KnownMyKeyIds, int, int], None],
    kind: str,
) -> None:
    program = capped(s, world, kind).id
    got = [outcome(lambda n=n: path(s, world, directory, program, n)) for n in range(3)]
    expected = GRANTS[kind]
    assert got == [None if isinstance(e, int) else e for e in expected]
    assert received(s, program) == sum(e for e in expected if not isinstance(e, Code))


# --- a conversion's bonus -------------------------------------------------------------


def bonus_terms(s: Session, world: City, kind: str, hold_days: int) -> Program:
    """The test partner's terms (1:1, bonus 10 %) paying the bonus from a capped program."""
    program = capped(s, world, kind, ProgramCategory.PARTNER_BONUS)
    admin.set_terms(
        s, world.muni.id, world.partner.id, rate=(1, 1), bonus_bp=1000, min_unit=100,
        hold_days=hold_days, expiry_days=365, bonus_program_id=program.id, now=T0,
    )  # fmt: skip
    return program


def convert(
    s: Session, world: City, d: KnownMyKeyIds, ref: str, citizen: str = "ALICE234"
) -> conversion.ConversionResult:
    """1,000 partner points for `citizen` at T0."""
    return conversion.convert(
        s, world.partner, municipality_code="011002", citizen=citizen, partner_points=1000,
        ref=ref, directory=d, now=T0,
    )  # fmt: skip


def balance(s: Session, citizen: str = "ALICE234") -> tuple[int, int]:
    """(posted, pending) of the citizen in the test city."""
    [mine] = reports.citizen_balances(s, citizen, T0)
    s.rollback()
    return mine.balance, mine.pending


@pytest.mark.parametrize("kind", list(LIMITS))
@pytest.mark.parametrize("hold_days", [0, 14], ids=["posted-at-once", "held-then-posted"])
def test_a_conversion_goes_through_and_its_bonus_stops_at_every_limit(
    s: Session, world: City, directory: KnownMyKeyIds, kind: str, hold_days: int
) -> None:
    program = bonus_terms(s, world, kind, hold_days).id
    results = [convert(s, world, directory, f"R{n}") for n in range(3)]
    paid = BONUSES[kind]
    assert [(r.base_points, r.bonus_points, r.bonus_asked) for r in results] == [
        (1000, bonus, ASKED) for bonus in paid
    ]
    assert [r.points for r in results] == [1000 + bonus for bonus in paid]
    assert received(s, program) == sum(paid)
    if hold_days:
        assert {r.status for r in results} == {"pending"}
        assert balance(s) == (0, 3000 + sum(paid))
        # The holds took their cap room: posting them counts nothing more, refuses nothing.
        assert conversion.post_due(s, now=T0 + timedelta(days=hold_days)) == 3
    assert balance(s) == (3000 + sum(paid), 0)
    shown = [conversion.status(s, world.partner, f"R{n}") for n in range(3)]
    assert [(r.status, r.bonus_points, r.bonus_asked) for r in shown] == [
        ("posted", bonus, ASKED) for bonus in paid
    ]
    again = convert(s, world, directory, "R1")  # a retry answers with the first result
    assert again.replayed and (again.bonus_points, again.bonus_asked) == (paid[1], ASKED)
    if kind != "budget":  # the caps are per citizen: another citizen starts afresh
        assert convert(s, world, directory, "B0", "BOB23456").bonus_points == paid[0]


@pytest.mark.parametrize("kind", list(LIMITS))
def test_a_cancelled_conversion_gives_its_bonus_room_back(
    s: Session, world: City, directory: KnownMyKeyIds, kind: str
) -> None:
    program = bonus_terms(s, world, kind, hold_days=14).id
    results = [convert(s, world, directory, f"R{n}") for n in range(3)]
    assert [r.bonus_points for r in results] == BONUSES[kind]
    voided = conversion.cancel(s, world.partner, "R0", now=T0 + timedelta(days=1))
    assert (voided.status, voided.bonus_points) == ("voided", BONUSES[kind][0])
    # The void gave back what the first held: the next conversion gets it.
    assert convert(s, world, directory, "R3").bonus_points == BONUSES[kind][0]
    assert received(s, program) == sum(BONUSES[kind])
    assert conversion.post_due(s, now=T0 + timedelta(days=14)) == 3
    assert balance(s) == (3000 + sum(BONUSES[kind]), 0)


def test_the_issue_five_conversions_under_a_cap_of_50_and_one_grant(
    s: Session, world: City, directory: KnownMyKeyIds
) -> None:
    """Issue 13, item 8: a cap of 50 points and one grant per citizen paid 500."""
    program = programs.create_program(
        s, world.muni.id, "CAP", "上乗せ", ProgramCategory.PARTNER_BONUS, points_per_grant=1,
        expiry_days=365, budget=100_000, cap_points_per_citizen=50, cap_grants_per_citizen=1,
        now=T0,
    )  # fmt: skip
    admin.set_terms(
        s, world.muni.id, world.partner.id, bonus_bp=1000, min_unit=100,
        bonus_program_id=program.id, now=T0,
    )  # fmt: skip
    paid = [convert(s, world, directory, f"R{n}").bonus_points for n in range(5)]
    assert paid == [50, 0, 0, 0, 0]
    conversion.post_due(s, now=T0 + timedelta(days=14))
    assert received(s, program.id) == 50
    assert balance(s) == (5050, 0)
    summary = reports.municipality_summary(s, world.muni.id)
    assert summary.conversions == [("AIRLINE1", 5, 5000, 5000, 50)]  # the bonus paid


def test_counters_follow_holds_voids_posts_and_revokes(
    s: Session, world: City, directory: KnownMyKeyIds
) -> None:
    """What a citizen has had from a capped program: held counts, a void gives the points
    and the payment back, a posting adds nothing, a revoke gives the points back only."""
    bonus = bonus_terms(s, world, "points", hold_days=14).id
    grants = programs.create_program(
        s, world.muni.id, "EVT", "イベント", ProgramCategory.EVENT, points_per_grant=100,
        expiry_days=30, budget=1000, cap_points_per_citizen=1000, now=T0,
    )  # fmt: skip

    def totals() -> list[tuple[int, int, int]]:
        rows = s.execute(
            select(
                ProgramCitizenTotal.program_id,
                ProgramCitizenTotal.points,
                ProgramCitizenTotal.grants,
            ).order_by(ProgramCitizenTotal.program_id)
        ).all()
        s.rollback()
        return [tuple(r) for r in rows]  # type: ignore[misc]

    convert(s, world, directory, "R0")
    convert(s, world, directory, "R1")
    assert totals() == [(bonus, 150, 2)]
    conversion.cancel(s, world.partner, "R1", now=T0)
    assert totals() == [(bonus, 100, 1)]
    conversion.post_due(s, now=T0 + timedelta(days=14))
    assert totals() == [(bonus, 100, 1)]
    g = programs.grant(s, grants.id, "ALICE234", key="e1", directory=directory, now=T0)
    programs.revoke(s, g.transfer_id, key="r1", now=T0)
    assert totals() == [(bonus, 100, 1), (grants.id, 0, 1)]


def test_a_payment_from_a_program_without_its_caps_is_refused_by_the_ledger(
    s: Session, world: City
) -> None:
    """No path can pay past a cap by leaving the caps out: the ledger asks for them."""
    vol = world.volunteering
    posting = Posting(
        kind=TransferKind.GRANT,
        debit=Acct(AccountKind.PROGRAM, world.muni.id, id=vol.account_id),
        credit=Acct(AccountKind.CITIZEN, world.muni.id, mykey_id="ALICE234"),
        amount=1,
        key="grant:no-caps",
        payload_hash="h",
        program_id=vol.id,
        lot_expires_at=T0,
    )
    with pytest.raises(ValueError, match="caps"):
        ledger.write(s, [posting], T0)
    s.rollback()
    from dataclasses import replace

    [w] = ledger.write(s, [replace(posting, caps=Caps())], T0)  # no caps, said so
    assert w.amount == 1
    s.commit()
    assert s.scalar(select(func.count()).select_from(Transfer).where(Transfer.id == w.id)) == 1


@pytest.mark.parametrize(
    ("caps", "points", "grants", "room"),
    [
        (Caps(), 10**9, 10**6, None),
        (Caps(points=150), 0, 0, 150),
        (Caps(points=150), 100, 1, 50),
        (Caps(points=150), 200, 2, 0),  # over already (a cap lowered by hand): nothing
        (Caps(grants=1), 0, 0, None),
        (Caps(grants=1), 100, 1, 0),
        (Caps(points=150, grants=2), 100, 1, 50),
        (Caps(points=150, grants=2), 100, 2, 0),
    ],
)
def test_room_left_under_caps(caps: Caps, points: int, grants: int, room: int | None) -> None:
    assert caps.room(points, grants) == room


def test_the_audit_sees_a_citizen_past_a_cap_and_a_wrong_counter(
    s: Session, world: City, directory: KnownMyKeyIds
) -> None:
    from sqlalchemy import update

    from webapp.points import invariants

    program = capped(s, world, "points")
    programs.grant(s, program.id, "ALICE234", key="e1", directory=directory, now=T0)
    assert invariants.violations(s) == {}
    s.execute(update(Program).where(Program.id == program.id).values(cap_points_per_citizen=50))
    s.execute(update(ProgramCitizenTotal).values(grants=2))
    found = invariants.violations(s)
    assert set(found) == {
        "no citizen paid past a program's per-citizen caps",
        "cap counters equal what was paid",
    }
    s.rollback()  # the audit after the test finds the books as they were
