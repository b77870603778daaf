"""Behind N reverse proxies (ICHIMAI_PROXY_HOPS), the client's address is the one the
proxies forwarded, so the throttles count per client; with none, a forwarded header
is ignored (a client cannot pick its own address)."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask, request

from tests.support.forms import csrf_token
from webapp import create_app, db


def app_with(tmp_path: Path, hops: object, **settings: object) -> Flask:
    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'proxy.db'}",
            "SECRET_KEY": "t",
            "TESTING": True,
            "BUS_URL": "memory://",
            "PROXY_HOPS": hops,
            **settings,
        }
    )

    @app.get("/_test/client")
    def client() -> str:
        return f"{request.remote_addr} {request.scheme}"

    return app


def ask(app: Flask, forwarded_for: str, proto: str = "https") -> str:
    reply = app.test_client().get(
        "/_test/client",
        headers={"X-Forwarded-For": forwarded_for, "X-Forwarded-Proto": proto},
        environ_base={"REMOTE_ADDR": "10.0.0.2"},  # the proxy's own address
    )
    return reply.get_data(as_text=True)


def test_without_proxies_a_forwarded_address_is_ignored(tmp_path: Path) -> None:
    assert ask(app_with(tmp_path, "0"), "203.0.113.7") == "10.0.0.2 http"


def test_behind_one_proxy_the_client_is_the_address_it_forwarded(tmp_path: Path) -> None:
    app = app_with(tmp_path, "1")
    assert ask(app, "203.0.113.7") == "203.0.113.7 https"
    # A client that sends its own header cannot choose: the proxy appends the real one.
    assert ask(app, "198.51.100.1, 203.0.113.7") == "203.0.113.7 https"


def test_behind_two_proxies_the_second_last_entry_is_the_client(tmp_path: Path) -> None:
    app = app_with(tmp_path, 2)
    assert ask(app, "198.51.100.1, 203.0.113.7, 10.0.0.1", "https, http") == ("203.0.113.7 https")


@pytest.mark.parametrize("bad", ["-1", "one", "1.5", ""])
def test_a_bad_setting_stops_the_start_with_a_clear_message(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="ICHIMAI_PROXY_HOPS"):
        app_with(tmp_path, bad)


def test_the_sign_in_throttle_counts_each_client_behind_the_proxy(tmp_path: Path) -> None:
    """Everyone arrives from the proxy's address; one client's failures must not lock
    out the others."""
    app = app_with(tmp_path, "1", LOGIN_LIMIT_PER_IP="3 per 15 minutes")
    db.create_all(app)

    def attempt(client_ip: str, login: str) -> int:
        client = app.test_client()
        via_proxy = {"REMOTE_ADDR": "10.0.0.2"}
        headers = {"X-Forwarded-For": client_ip}
        page = client.get("/staff/login", headers=headers, environ_base=via_proxy)
        form = {"login": login, "password": "wrong password!", "csrf_token": csrf_token(page.text)}
        reply = client.post("/staff/login", data=form, headers=headers, environ_base=via_proxy)
        return reply.status_code

    statuses = [attempt("203.0.113.7", f"spray{i}") for i in range(4)]
    assert statuses[-1] == 429 and 429 not in statuses[:3]
    assert attempt("198.51.100.1", "someone") != 429  # another client, same proxy
