"""What an operator watches (webapp/ops): one JSON line per event with codes and ids only,
/metrics behind a token or an address list, and sockets closed with 1001 on the way out."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from flask import Flask

from webapp import create_app
from webapp.ops import events, going_away
from webapp.ops.logs import JsonLineFormatter

TOKEN = "m" * 40
# What an event line may carry: codes, kinds and the ids of devices and places.
ALLOWED_FIELDS = {
    "ts",
    "level",
    "logger",
    "pid",
    "event",
    "code",
    "reason",
    "terminal",
    "provider",
    "purpose",
    "bridge",
    "seconds",
    "why",
}


def app_with(**config: Any) -> Flask:
    return create_app({"DATABASE_URL": "sqlite://", "CARD_KEY_SECRET": "k" * 40, **config})


def lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    formatter = JsonLineFormatter()
    out = []
    for record in caplog.records:
        if record.name == "ichimai.events":
            text = formatter.format(record)
            assert "\n" not in text
            out.append(json.loads(text))
    return out


def test_a_refused_card_is_one_line_with_its_code_and_no_person(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ichimai.events")
    events.card_refused("revoked", reason="revoked", terminal=3, provider=1, purpose="lookup")
    (line,) = lines(caplog)
    assert line["event"] == "card_refused"
    assert (line["code"], line["terminal"], line["provider"]) == ("revoked", 3, 1)
    assert set(line) <= ALLOWED_FIELDS


@pytest.mark.parametrize(
    ("emit", "event"),
    [
        (lambda: events.link_refused("number_taken", terminal=2, provider=1), "link_refused"),
        (lambda: events.payment_refused("insufficient", terminal=5, provider=2), "payment_refused"),
        (lambda: events.bridge_connected("brg_x", terminal=2, provider=1), "bridge_connected"),
        (
            lambda: events.bridge_disconnected(
                "brg_x", terminal=2, provider=1, seconds=3.0, why="going_away"
            ),
            "bridge_disconnected",
        ),
    ],
)
def test_every_event_is_one_line_of_codes_and_ids(
    caplog: pytest.LogCaptureFixture, emit: Any, event: str
) -> None:
    caplog.set_level(logging.INFO, logger="ichimai.events")
    emit()
    (line,) = lines(caplog)
    assert line["event"] == event
    assert set(line) <= ALLOWED_FIELDS


def test_an_exception_stays_on_one_line() -> None:
    try:
        raise ValueError("two\nlines")
    except ValueError:
        record = logging.LogRecord("webapp.x", logging.ERROR, __file__, 1, "failed", (), None)
        import sys

        record.exc_info = sys.exc_info()
    text = JsonLineFormatter().format(record)
    assert "\n" not in text
    assert "ValueError" in json.loads(text)["exc"]


def test_metrics_are_off_without_a_token_or_addresses() -> None:
    assert app_with().test_client().get("/metrics").status_code == 404


def test_metrics_need_the_bearer_token() -> None:
    client = app_with(METRICS_TOKEN=TOKEN).test_client()
    assert client.get("/metrics").status_code == 401
    wrong = {"Authorization": "Bearer " + "x" * 40}
    assert client.get("/metrics", headers=wrong).status_code == 401
    events.card_refused("untrusted", terminal=1, provider=1)
    answer = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200
    assert answer.content_type.startswith("text/plain")
    text = answer.get_data(as_text=True)
    assert 'ichimai_refusals_total{code="untrusted",what="card"}' in text


@pytest.mark.parametrize(
    ("allow", "status"),
    [("127.0.0.1", 200), ("127.0.0.0/8,10.0.0.0/8", 200), ("10.0.0.0/8", 403), ("::1", 403)],
)
def test_metrics_only_from_the_allowed_addresses(allow: str, status: int) -> None:
    client = app_with(METRICS_ALLOW=allow).test_client()
    assert client.get("/metrics").status_code == status  # the test client is 127.0.0.1


def test_with_both_settings_both_must_hold() -> None:
    client = app_with(METRICS_ALLOW="10.0.0.0/8", METRICS_TOKEN=TOKEN).test_client()
    answer = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 403


class FakeSocket:
    def __init__(self) -> None:
        self.closed: tuple[int, str] | None = None

    def close(self, reason: int, message: str) -> None:
        self.closed = (reason, message)


@pytest.fixture
def stopping(monkeypatch: pytest.MonkeyPatch) -> Any:
    # A registry of its own: live platforms of other tests in this process hold sockets
    # too, and must neither be counted nor closed here.
    monkeypatch.setattr(going_away, "_held", {})
    yield going_away
    going_away.reset_for_tests()


def test_a_stopping_worker_closes_its_sockets_with_1001(stopping: Any) -> None:
    ws, woken = FakeSocket(), []
    with stopping.held(ws, lambda: woken.append(True)) as serving:
        assert serving
        assert stopping.going_away() == 1
    assert ws.closed is not None and ws.closed[0] == 1001
    assert woken == [True]
    late = FakeSocket()  # one arriving while the worker stops is closed at once
    with stopping.held(late) as serving:
        assert not serving
    assert late.closed is not None and late.closed[0] == 1001
