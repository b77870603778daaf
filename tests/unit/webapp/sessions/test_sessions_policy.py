"""A session's kind from its data, lifetimes from the settings, the browser summary."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import pytest

from webapp.config import from_environment
from webapp.sessions.models import USER_AGENT_LENGTH, SessionKind
from webapp.sessions.policy import kind_of, lifetimes, summarize_user_agent


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        ({}, SessionKind.ANONYMOUS),
        ({"lang": "en", "csrf_token": "x"}, SessionKind.ANONYMOUS),
        ({"staff_id": 3, "staff_epoch": 0}, SessionKind.STAFF),
        ({"staff_id": 3, "terminal_id": 7, "terminal_kind": "counter"}, SessionKind.STAFF),
        ({"staff_id": 3, "terminal_id": 7, "terminal_kind": "kiosk"}, SessionKind.STAFF),
        ({"terminal_id": 7, "terminal_kind": "kiosk"}, SessionKind.KIOSK),
        ({"terminal_id": 7, "terminal_kind": "home", "home_key": "k"}, SessionKind.HOME),
        ({"terminal_id": 7, "terminal_kind": "counter"}, SessionKind.ANONYMOUS),
        ({"terminal_id": "7", "terminal_kind": "kiosk"}, SessionKind.ANONYMOUS),
        ({"terminal_id": True, "terminal_kind": "kiosk"}, SessionKind.ANONYMOUS),
        ({"staff_id": None, "lang": "ja"}, SessionKind.ANONYMOUS),
    ],
)
def test_kind_of(data: dict[str, Any], kind: str) -> None:
    assert kind_of(data) == kind


def test_default_lifetimes(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("ICHIMAI_"):
            monkeypatch.delenv(name)
    found = lifetimes(from_environment(str(tmp_path)))
    assert found[SessionKind.STAFF].idle == timedelta(hours=8)
    assert found[SessionKind.STAFF].absolute == timedelta(hours=16)
    assert found[SessionKind.KIOSK].idle == timedelta(days=7)
    assert found[SessionKind.KIOSK].absolute == timedelta(days=90)
    assert found[SessionKind.HOME].idle == timedelta(days=30)
    assert found[SessionKind.HOME].absolute == timedelta(days=365)
    assert found[SessionKind.ANONYMOUS].idle == timedelta(hours=2)
    assert found[SessionKind.ANONYMOUS].absolute == timedelta(hours=24)


def test_lifetimes_from_the_environment(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ICHIMAI_STAFF_SESSION_IDLE_HOURS", "0.5")
    monkeypatch.setenv("ICHIMAI_KIOSK_SESSION_LIFETIME_DAYS", "30")
    monkeypatch.setenv("ICHIMAI_HOME_TERMINAL_IDLE_DAYS", "14")
    found = lifetimes(from_environment(str(tmp_path)))
    assert found[SessionKind.STAFF].idle == timedelta(minutes=30)
    assert found[SessionKind.KIOSK].absolute == timedelta(days=30)
    assert found[SessionKind.HOME].idle == timedelta(days=14)


@pytest.mark.parametrize("value", ["0", "-1", "soon", None])
def test_a_bad_lifetime_names_its_setting(tmp_path: Any, value: Any) -> None:
    config = from_environment(str(tmp_path))
    config["KIOSK_SESSION_IDLE_DAYS"] = value
    with pytest.raises(ValueError, match="KIOSK_SESSION_IDLE_DAYS"):
        lifetimes(config)


def test_a_bad_lifetime_stops_start_up(tmp_path: Any) -> None:
    from webapp import create_app

    with pytest.raises(ValueError, match="STAFF_SESSION_LIFETIME_HOURS"):
        create_app({"DATABASE_URL": "sqlite://", "STAFF_SESSION_LIFETIME_HOURS": "never"})


@pytest.mark.parametrize(
    ("header", "summary"),
    [
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Safari/537.36",
            "Chrome 131 on Windows",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86",
            "Edge 131 on Windows",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7_1) AppleWebKit/605.1.15 (KHTML, like "
            "Gecko) Version/18.1 Safari/605.1.15",
            "Safari 18 on macOS",
        ),
        (
            "Mozilla/5.0 (iPad; CPU OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
            "Gecko) Version/17.7 Mobile/15E148 Safari/604.1",
            "Safari 17 on iPadOS",
        ),
        (
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
            "Firefox 128 on Linux",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; SH-M26) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/130.0.6723.107 Mobile Safari/537.36",
            "Chrome 130 on Android",
        ),
        ("Werkzeug/3.1.3", "Werkzeug/3.1.3"),
        ("curl/8.5.0\x00\x1b[31m", "curl/8.5.0[31m"),
        ("", None),
        (None, None),
        ("\x00\x01", None),
    ],
)
def test_summarize_user_agent(header: str | None, summary: str | None) -> None:
    assert summarize_user_agent(header) == summary


def test_a_huge_user_agent_is_cut_short() -> None:
    summary = summarize_user_agent("x" * 8000 + " Chrome/131")
    assert summary is not None and len(summary) <= USER_AGENT_LENGTH
    assert summary == "x" * 60  # only the first 512 characters are looked at
