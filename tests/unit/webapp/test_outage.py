"""A service down answers 503 "try again" (webapp/outage.py), never a 500: in the error
format for JSON clients, as a page for browsers, also when the session cannot be opened.
The live restarts are in tests/e2e/test_faults_e2e.py."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from flask import Blueprint, Flask
from sqlalchemy import exc as sa_exc

from webapp import create_app
from webapp.bus import BusError, BusTimeout


def _db_down() -> None:
    raise sa_exc.OperationalError("SELECT 1", {}, Exception("server closed the connection"))


def _redis_down() -> None:
    raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379")


def _bus_down() -> None:
    raise BusError("Redis publish failed: connection refused")


def _bus_timeout() -> None:
    raise BusTimeout("no reply")  # a slow bridge, not Redis: not an outage


@pytest.fixture
def app(tmp_path: Path) -> Flask:
    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'test.db'}",
            "SECRET_KEY": "test",
            "TESTING": True,
            "BUS_URL": "memory://",
        }
    )
    bp = Blueprint("outages", __name__)
    for name, fail in {
        "db": _db_down,
        "redis": _redis_down,
        "bus": _bus_down,
        "timeout": _bus_timeout,
    }.items():
        bp.add_url_rule(f"/outage/{name}", name, fail)
    app.register_blueprint(bp)
    return app


@pytest.mark.parametrize("service", ["db", "redis", "bus"])
def test_json_clients_get_503_in_the_error_format(app: Flask, service: str) -> None:
    answer = app.test_client().get(f"/outage/{service}", headers={"Accept": "application/json"})
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "5"
    error = answer.get_json()["error"]
    assert error["code"] == "service_unavailable" and error["final"] is False
    assert error["title"] and error["message"] and error["action"]


@pytest.mark.parametrize("service", ["db", "redis"])
def test_browsers_get_the_503_page(app: Flask, service: str) -> None:
    answer = app.test_client().get(f"/outage/{service}", headers={"Accept": "text/html"})
    page = answer.get_data(as_text=True)
    assert answer.status_code == 503
    assert "一時的にご利用いただけません" in page and "Temporarily unavailable" in page
    assert "Traceback" not in page and "OperationalError" not in page


def test_a_bus_timeout_is_not_an_outage(app: Flask) -> None:
    app.config["PROPAGATE_EXCEPTIONS"] = False
    answer = app.test_client().get("/outage/timeout", headers={"Accept": "application/json"})
    assert answer.status_code == 500


@pytest.mark.parametrize("fail", [_db_down, _redis_down])
def test_the_session_store_down_before_the_view_is_503_too(
    app: Flask,
    monkeypatch: pytest.MonkeyPatch,
    fail: Callable[[], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Sessions are rows: opening one is the first thing a request needs the database for.
    One warning line each, no traceback in the log."""
    app.config["PROPAGATE_EXCEPTIONS"] = False
    monkeypatch.setattr(app.session_interface, "open_session", lambda *a: fail())
    client = app.test_client()
    page = client.get("/staff/login", headers={"Accept": "text/html"})
    assert page.status_code == 503 and "Temporarily unavailable" in page.get_data(as_text=True)
    api = client.get("/terminal/status", headers={"Accept": "application/json"})
    assert api.status_code == 503 and api.get_json()["error"]["code"] == "service_unavailable"
    assert [r.levelname for r in caplog.records if r.name.startswith("webapp")] == ["WARNING"] * 2
    assert not any(r.exc_info for r in caplog.records)
