"""Grants by CSV: every error with its line number, all rows or none, replays."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from webapp.points import grant_csv, programs
from webapp.points.demo import City
from webapp.points.directory import KnownMyKeyIds
from webapp.points.errors import Code, CsvRejected
from webapp.points.models import ProgramCategory, Transfer

T0 = datetime(2025, 4, 1, 9, 0, tzinfo=UTC)


def grants(s: Session) -> int:
    """How many grant transfers exist."""
    n = s.scalar(select(func.count()).select_from(Transfer).where(Transfer.kind == "grant"))
    s.rollback()
    return n or 0


def test_good_file_is_applied_in_one_go(s: Session, world: City, directory: KnownMyKeyIds) -> None:
    data = b"mykey_id,program\nALICE234,VOL\nBOB23456,VOL\n\nALICE234,VOL\n"
    result = grant_csv.grant_file(s, world.muni.id, data, directory=directory, now=T0)
    assert (result.rows, result.points, result.replayed) == (3, 1500, False)
    again = grant_csv.grant_file(s, world.muni.id, data, directory=directory, now=T0)
    assert again.replayed and again.transfer_ids == result.transfer_ids
    assert grants(s) == 3


def test_shift_jis_with_japanese_headers(s: Session, world: City, directory: KnownMyKeyIds) -> None:
    data = "マイキーID,事業コード\r\nCAROL789,VOL\r\n".encode("cp932")
    assert grant_csv.grant_file(s, world.muni.id, data, directory=directory, now=T0).rows == 1


@pytest.mark.parametrize(
    ("data", "lines"),
    [
        (b"mykey_id,program\nALICE234,VOL\nNOBODY11,VOL\nBOB23456,NOPE\n", [3, 4]),
        (b"mykey_id,program\nALICE234,VOL\nbad id,VOL\nBOB23456\n", [3, 4]),
        (b"mykey_id,program\nALICE234,BONUS\n", [2]),
        (b"name,points\nALICE234,500\n", [1]),
        (b"", [1]),
        (b"mykey_id,program\n", [1]),
        (b"\xff\xfe\xfa", [None]),
    ],
)
def test_bad_rows_are_reported_with_line_numbers_and_nothing_is_applied(
    s: Session, world: City, directory: KnownMyKeyIds, data: bytes, lines: list[int | None]
) -> None:
    with pytest.raises((CsvRejected, grant_csv.InvalidInput)) as exc:
        grant_csv.grant_file(s, world.muni.id, data, directory=directory, now=T0)
    errors = exc.value.errors if isinstance(exc.value, CsvRejected) else [exc.value]
    assert [e.line for e in errors] == lines
    assert grants(s) == 0


def test_budget_and_caps_name_the_line_that_goes_over(
    s: Session, world: City, directory: KnownMyKeyIds
) -> None:
    programs.create_program(
        s, world.muni.id, "CARE", "介護支援", ProgramCategory.CARE_SUPPORT,
        points_per_grant=100, expiry_days=30, budget=250, cap_grants_per_citizen=1, now=T0,
    )  # fmt: skip
    data = b"mykey_id,program\nALICE234,CARE\nALICE234,CARE\nBOB23456,CARE\nCAROL789,CARE\n"
    with pytest.raises(CsvRejected) as exc:
        grant_csv.grant_file(s, world.muni.id, data, directory=directory, now=T0)
    assert [(e.line, e.code) for e in exc.value.errors] == [
        (3, Code.CAP_REACHED),  # ALICE234's second grant of a once-per-citizen program
        (5, Code.BUDGET_EXHAUSTED),  # 250 points: lines 2 and 4 fit, line 5 does not
    ]
    assert grants(s) == 0


def test_too_many_rows_is_refused(
    s: Session, world: City, directory: KnownMyKeyIds, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(grant_csv, "MAX_ROWS", 2)
    data = b"mykey_id,program\n" + b"ALICE234,VOL\n" * 3
    with pytest.raises(CsvRejected) as exc:
        grant_csv.grant_file(s, world.muni.id, data, directory=directory, now=T0)
    assert exc.value.errors[0].line == 4
