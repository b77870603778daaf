"""A seeded random workload of grants, conversions, spends, refunds, cancels, expiries and
replays, shared by the threaded test and the worker processes that get killed.

Every operation is a pure function of (seed, index), so a worker killed mid-way and
started again replays the same requests with the same idempotency keys.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from webapp.points import admin, conversion, expiry, ledger, programs, spend
from webapp.points.demo import build_city
from webapp.points.directory import AnyMyKeyId
from webapp.points.errors import Code, PointsError
from webapp.points.models import Merchant, Partner, Program, ProgramCategory, Transfer

T0 = datetime(2025, 4, 1, 0, 0, tzinfo=UTC)
CITY = "011002"
CITIZENS = [f"CIT{n:05d}" for n in range(24)]
DIRECTORY = AnyMyKeyId()
KINDS = ["grant", "grant_short", "convert", "spend", "refund", "cancel", "post", "expire", "replay"]
WEIGHTS = [22, 10, 14, 24, 8, 4, 4, 4, 10]


@dataclass(frozen=True)
class Op:
    """One request of the workload."""

    kind: str
    key: str
    citizen: str
    amount: int
    day: float
    ref: int | None = None  # index of an earlier op this one refers to (refund, cancel, replay)


@dataclass(frozen=True)
class Ids:
    """What the ledger needs to know about the test city."""

    municipality: int
    volunteering: int
    short: int
    museum: int
    partner: int


def setup(session: Session) -> Ids:
    """The test city with huge budgets, plus a program whose points live three days."""
    city = build_city(session, CITY, budget=10**12, now=T0)
    short = programs.create_program(
        session, city.muni.id, "SHORT", "短期イベント", ProgramCategory.EVENT,
        points_per_grant=300, expiry_days=3, budget=10**12, now=T0,
    )  # fmt: skip
    return Ids(city.muni.id, city.volunteering.id, short.id, city.museum.id, city.partner.id)


def lookup(session: Session) -> Ids:
    """The ids of the city `setup` made (for worker processes)."""
    muni = admin.municipality_by_code(session, CITY)
    progs = {p.code: p.id for p in session.scalars(select(Program))}
    museum = session.scalar(select(Merchant.id).where(Merchant.code == "MUSEUM1"))
    partner = session.scalar(select(Partner.id).where(Partner.code == "AIRLINE1"))
    assert museum is not None and partner is not None
    session.rollback()
    return Ids(muni.id, progs["VOL"], progs["SHORT"], museum, partner)


def plan(seed: int, count: int, prefix: str) -> list[Op]:
    """`count` operations drawn from `seed`; keys start with `prefix`."""
    rng = random.Random(seed)
    ops: list[Op] = []
    for i in range(count):
        kind = rng.choices(KINDS, WEIGHTS)[0]
        citizen = rng.choice(CITIZENS)
        day = rng.uniform(0, 30)
        ref = None
        amount = 0
        if kind == "convert":
            amount = rng.choice([100, 200, 1000, 3000])
        elif kind == "spend":
            amount = rng.randint(1, 900)
        elif kind == "refund":
            spends = [j for j, o in enumerate(ops) if o.kind == "spend"]
            kind, ref, amount = (
                ("refund", rng.choice(spends), rng.randint(1, 300))
                if spends
                else ("grant", None, 0)
            )
        elif kind == "cancel":
            converts = [j for j, o in enumerate(ops) if o.kind == "convert"]
            kind, ref = ("cancel", rng.choice(converts)) if converts else ("grant", None)
        elif kind == "replay":
            kind, ref = ("replay", rng.randrange(i)) if i else ("grant", None)
        ops.append(Op(kind, f"{prefix}-{i}", citizen, amount, day, ref))
    return ops


BUSY_RETRIES = 3  # as a client does on "busy, try again" (the request changed nothing)


def run(session: Session, ids: Ids, ops: list[Op], i: int) -> tuple[str, object]:
    """Execute op `i`: ("ok", what identifies its result) or ("refused", error code)."""
    op = ops[i]
    if op.kind == "replay":
        assert op.ref is not None
        return run(session, ids, ops, op.ref)
    now = T0 + timedelta(days=op.day)
    for attempt in range(BUSY_RETRIES + 1):
        try:
            return "ok", _execute(session, ids, ops, op, now)
        except PointsError as exc:
            session.rollback()
            if exc.code is not Code.BUSY or attempt == BUSY_RETRIES:
                return "refused", exc.code.value
    raise AssertionError("unreachable")


def _execute(session: Session, ids: Ids, ops: list[Op], op: Op, now: datetime) -> object:
    if op.kind in ("grant", "grant_short"):
        program = ids.volunteering if op.kind == "grant" else ids.short
        return programs.grant(
            session, program, op.citizen, key=op.key, directory=DIRECTORY, now=now
        ).transfer_id
    partner = session.get(Partner, ids.partner)
    assert partner is not None
    if op.kind == "convert":
        result = conversion.convert(
            session, partner, municipality_code=CITY, citizen=op.citizen,
            partner_points=op.amount, ref=op.key, directory=DIRECTORY, now=now,
        )  # fmt: skip
        return [result.reference, result.base_points, result.bonus_points]
    if op.kind == "spend":
        return spend.spend(
            session, ids.museum, op.citizen, op.amount, key=op.key, now=now
        ).transfer_id
    if op.kind == "refund":
        assert op.ref is not None
        key = f"spend:{ids.museum}:{ops[op.ref].key}"
        paid = ledger.read(session, lambda: _transfer_id(session, key))
        if paid is None:
            return None  # the payment was refused: nothing to refund
        return spend.refund(session, ids.museum, paid, op.amount, key=op.key, now=now).transfer_id
    if op.kind == "cancel":
        assert op.ref is not None
        return conversion.cancel(session, partner, ops[op.ref].key, now=now).status != "pending"
    if op.kind == "post":
        conversion.post_due(session, now=now, limit=50)
        return None
    if op.kind == "expire":
        expiry.expire_due(session, now=now, batch=50)
        return None
    raise AssertionError(op.kind)


def _transfer_id(session: Session, key: str) -> int | None:
    first = ledger.find(session, key)
    return None if first is None else first.id


def keyed(ops: list[Op], ids: Ids) -> dict[str, str]:
    """Idempotency key in the ledger -> the op key, for ops that write one transfer."""
    out = {}
    for op in ops:
        if op.kind in ("grant", "grant_short"):
            out[f"grant:{op.key}"] = op.key
        elif op.kind == "spend":
            out[f"spend:{ids.museum}:{op.key}"] = op.key
        elif op.kind == "refund":
            out[f"refund:{ids.museum}:{op.key}"] = op.key
        elif op.kind == "convert":
            out[f"conv:{ids.partner}:{op.key}"] = op.key
    return out


def transfers_by_key(session: Session, keys: list[str]) -> dict[str, int]:
    """How many transfers carry each key (the unique index says at most one)."""
    counts: dict[str, int] = {}
    for chunk in range(0, len(keys), 500):
        rows = session.execute(
            select(Transfer.idempotency_key, func.count())
            .where(Transfer.idempotency_key.in_(keys[chunk : chunk + 500]))
            .group_by(Transfer.idempotency_key)
        ).all()
        counts.update({k: int(n) for k, n in rows})
    session.rollback()
    return counts
