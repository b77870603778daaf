"""A pushed counter lookup that meets a database connection the server dropped (a
restart) runs once more on fresh connections; a second loss, or any other error, is
raised (and said on the tab as "try again", webapp.counter.push.CounterPush.lookup)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.exc import DBAPIError, OperationalError

from webapp.counter.push import CounterPush


class _Session:
    def __init__(self) -> None:
        self.rollbacks = 0

    def rollback(self) -> None:
        self.rollbacks += 1


class _Ctx:
    def __init__(self) -> None:
        self.s = _Session()


def _lost() -> DBAPIError:
    return OperationalError("SELECT 1", {}, Exception("server closed"), connection_invalidated=True)


def _push(monkeypatch: pytest.MonkeyPatch, outcomes: list[Any]) -> tuple[CounterPush, list[int]]:
    push = CounterPush.__new__(CounterPush)
    calls: list[int] = []

    def answer(_ctx: Any, _reader: Any, epoch: int) -> dict[str, Any]:
        calls.append(epoch)
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    monkeypatch.setattr(push, "_answer", answer)
    return push, calls


def test_a_dropped_connection_is_looked_up_once_more(monkeypatch: pytest.MonkeyPatch) -> None:
    push, calls = _push(monkeypatch, [_lost(), {"result": "12345"}])
    ctx = _Ctx()
    assert push._answered(ctx, "reader", 7) == {"result": "12345"}  # type: ignore[arg-type]
    assert calls == [7, 7] and ctx.s.rollbacks == 1


def test_a_second_loss_is_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    push, calls = _push(monkeypatch, [_lost(), _lost()])
    with pytest.raises(OperationalError):
        push._answered(_Ctx(), "reader", 7)  # type: ignore[arg-type]
    assert calls == [7, 7]


def test_other_database_errors_are_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    other = OperationalError("SELECT 1", {}, Exception("deadlock"), connection_invalidated=False)
    push, calls = _push(monkeypatch, [other, {"result": "12345"}])
    with pytest.raises(OperationalError):
        push._answered(_Ctx(), "reader", 7)  # type: ignore[arg-type]
    assert calls == [7]
