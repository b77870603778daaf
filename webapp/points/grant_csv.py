"""Grants by CSV upload: every row checked first, then all applied in one transaction.

A file is `mykey_id,program` (header required; Japanese headers マイキーID,事業コード
accepted), UTF-8 with or without BOM, or Shift_JIS (CP932) as Excel writes it. A bad
row is reported with its line number and no row of a rejected file is applied. The same
file uploaded twice is a replay: each row's idempotency key is the file's SHA-256 and the
row's line number, so the second upload returns the first upload's results.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import ledger
from .directory import CitizenDirectory
from .errors import Code, CsvRejected, InvalidInput, PointsError, Refused
from .ledger import Posting
from .models import Account, Program, ProgramCitizenTotal, Transfer
from .programs import ProgramTerms, grant_posting, grantable
from .validation import mykey_id, utc_now

MAX_BYTES = 2 * 1024 * 1024  # bounds memory per upload; ~50,000 rows of short IDs
MAX_ROWS = 10_000  # one transaction: keeps lock time and rollback size reasonable
MAX_ERRORS = 100  # a file full of errors is reported in part, not in full
_HEADERS = {
    "mykey_id": "mykey_id",
    "マイキーid": "mykey_id",
    "program": "program",
    "事業コード": "program",
}


@dataclass(frozen=True, slots=True)
class Row:
    """One parsed row and where it was in the file."""

    line: int
    mykey_id: str
    program_code: str


@dataclass(frozen=True, slots=True)
class CsvResult:
    """What an applied file did: rows and points granted, and whether it was a replay."""

    rows: int
    points: int
    transfer_ids: tuple[int, ...]
    replayed: bool = False


def _decode(data: bytes) -> str:
    if len(data) > MAX_BYTES:
        raise InvalidInput(Code.INVALID_CSV, f"larger than {MAX_BYTES} bytes")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return data.decode("cp932")
        except UnicodeDecodeError:
            raise InvalidInput(Code.INVALID_CSV, "not UTF-8 nor Shift_JIS text") from None


def parse(data: bytes) -> tuple[list[Row], list[PointsError]]:
    """Rows and per-line errors of a grant file (no database access)."""
    reader = csv.reader(io.StringIO(_decode(data), newline=""))
    header = next(reader, None)
    if header is None:
        raise CsvRejected([InvalidInput(Code.INVALID_CSV, "empty file", line=1)])
    names = [_HEADERS.get(h.strip().lower()) for h in header]
    if sorted(n for n in names if n) != ["mykey_id", "program"] or None in names:
        raise CsvRejected([InvalidInput(Code.INVALID_CSV, "header: mykey_id,program", line=1)])
    rows: list[Row] = []
    errors: list[PointsError] = []
    try:
        for record in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in record):
                continue  # blank lines are harmless
            if len(rows) >= MAX_ROWS:
                raise CsvRejected(
                    [InvalidInput(Code.INVALID_CSV, f"more than {MAX_ROWS} rows", line=line)]
                )
            if len(record) != len(names):
                errors.append(InvalidInput(Code.INVALID_CSV, f"{len(record)} columns", line=line))
                continue
            values = dict(zip(names, (cell.strip() for cell in record), strict=True))
            try:
                rows.append(Row(line, mykey_id(values["mykey_id"]), values["program"] or "?"))
            except PointsError as exc:
                exc.line = line
                errors.append(exc)
    except csv.Error as exc:
        errors.append(InvalidInput(Code.INVALID_CSV, str(exc), line=reader.line_num))
    if not rows and not errors:
        errors.append(InvalidInput(Code.INVALID_CSV, "no rows", line=1))
    return rows, errors


def _check(
    session: Session,
    municipality_id: int,
    rows: list[Row],
    directory: CitizenDirectory,
    now: datetime,
) -> tuple[dict[str, ProgramTerms], list[PointsError]]:
    """Per-row checks against the database: program, MyKey ID, budget and caps.

    Budget and caps are checked here only to name the line where a file goes over; the
    ledger checks them again, authoritatively, under its locks.
    """
    errors: list[PointsError] = []
    codes = {r.program_code for r in rows}
    found = session.scalars(
        select(Program).where(Program.municipality_id == municipality_id, Program.code.in_(codes))
    ).all()
    programs = {p.code: ProgramTerms.of(p) for p in found}
    budgets = {p.code: session.get(Account, p.account_id) for p in found}
    left = {code: (a.balance - a.debits_pending if a else 0) for code, a in budgets.items()}
    given: Counter[tuple[str, str]] = Counter()
    points: Counter[tuple[str, str]] = Counter()
    for row in rows:
        try:
            program = grantable(programs.get(row.program_code), municipality_id, now)
            if not directory.exists(session, row.mykey_id):
                raise InvalidInput(Code.UNKNOWN_CITIZEN, row.mykey_id)
            pair = (program.code, row.mykey_id)
            if pair not in given and (
                program.cap_grants_per_citizen or program.cap_points_per_citizen
            ):
                given[pair], points[pair] = _total(session, program, row.mykey_id)
            if (
                program.cap_grants_per_citizen is not None
                and given[pair] + 1 > program.cap_grants_per_citizen
            ) or (
                program.cap_points_per_citizen is not None
                and points[pair] + program.points_per_grant > program.cap_points_per_citizen
            ):
                raise Refused(Code.CAP_REACHED, f"{program.code} {row.mykey_id}")
            if left[program.code] < program.points_per_grant:
                raise Refused(Code.BUDGET_EXHAUSTED, program.code)
            left[program.code] -= program.points_per_grant
            given[pair] += 1
            points[pair] += program.points_per_grant
        except PointsError as exc:
            exc.line = row.line
            errors.append(exc)
            if len(errors) >= MAX_ERRORS:
                break
    return programs, errors


def _total(session: Session, program: ProgramTerms, citizen: str) -> tuple[int, int]:
    row = session.execute(
        select(ProgramCitizenTotal.grants, ProgramCitizenTotal.points)
        .join(Account, Account.id == ProgramCitizenTotal.account_id)
        .where(
            ProgramCitizenTotal.program_id == program.id,
            Account.municipality_id == program.municipality_id,
            Account.kind == "citizen",
            Account.owner == citizen,
        )
    ).first()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def grant_file(
    session: Session,
    municipality_id: int,
    data: bytes,
    *,
    directory: CitizenDirectory,
    now: datetime | None = None,
) -> CsvResult:
    """Check every row of a grant file, then apply all rows or none (CsvRejected)."""
    now = utc_now(now)
    rows, errors = parse(data)
    if errors:
        raise CsvRejected(errors)
    digest = hashlib.sha256(str(municipality_id).encode() + b"\0" + data).hexdigest()
    keys = [f"grant-csv:{digest[:40]}:{row.line}" for row in rows]

    def replay() -> CsvResult | None:
        firsts = session.scalars(select(Transfer).where(Transfer.idempotency_key.in_(keys))).all()
        if not firsts:
            return None
        for first in firsts:
            ledger.check_replay(first, digest)
        return CsvResult(
            len(firsts), sum(t.amount for t in firsts), tuple(sorted(t.id for t in firsts)), True
        )

    def work() -> CsvResult:
        first = replay()  # a replay is checked up front: no rows would be checked again
        if first is not None:
            return first
        programs, problems = _check(session, municipality_id, rows, directory, now)
        if problems:
            raise CsvRejected(problems)
        postings: list[Posting] = [
            grant_posting(programs[row.program_code], row.mykey_id, key, digest, now)
            for row, key in zip(rows, keys, strict=True)
        ]
        written = ledger.write(session, postings, now)
        return CsvResult(len(written), sum(w.amount for w in written), tuple(w.id for w in written))

    return ledger.run(session, work, replay)
