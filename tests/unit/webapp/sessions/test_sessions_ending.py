"""Sessions end on the server: sign-out, deactivation and a password change end them at
once, on every worker (here: a second app on the same database), and say so on the bus."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask

from tests.unit.webapp.sessions.conftest import (
    PASSWORD,
    Site,
    cookie_of,
    ended_keys,
    sign_in,
    token_of,
)
from webapp import create_app
from webapp.sessions import services
from webapp.sessions.models import SessionKind


@pytest.fixture
def worker(site: Site, tmp_path: Path) -> Flask:
    """Another worker process: its own app on the same database."""
    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'test.db'}",
            "SECRET_KEY": "another worker, another key: the cookie needs none",
            "TESTING": True,
            "BUS_URL": "memory://",
        }
    )
    app.session_interface.clock = site.clock  # type: ignore[attr-defined]
    return app


def test_a_cookie_saved_before_sign_out_opens_nothing_afterwards(site: Site, worker: Flask) -> None:
    browser = site.browser()
    sign_in(browser, "root")
    saved = cookie_of(browser) or ""
    on_worker = worker.test_client()
    on_worker.set_cookie("session", saved)
    assert on_worker.get("/admin/staff").status_code == 200  # the same session, elsewhere
    signed_out = browser.post("/staff/logout", data={"csrf_token": token_of(browser)})
    assert signed_out.status_code == 302
    for client in (site.browser(), worker.test_client()):
        client.set_cookie("session", saved)
        response = client.get("/admin/staff")
        assert response.status_code == 302 and "/staff/login" in response.headers["Location"]
        json = client.get("/admin/staff", headers={"Accept": "application/json"})
        assert json.status_code == 401
    # (the sign-in's rotation ended the anonymous session first; the bus may deliver late)
    assert services.key_of(saved) in ended_keys(site, 2)


def test_sign_out_keeps_the_language_under_a_new_token(site: Site) -> None:
    browser = site.browser(accept_language="ja")
    browser.get("/staff/login?lang=en")
    sign_in(browser, "clerk")
    signed_in = cookie_of(browser)
    browser.post("/staff/logout", data={"csrf_token": token_of(browser)})
    assert cookie_of(browser) != signed_in
    assert "Staff sign-in" in browser.get("/staff/login").get_data(as_text=True)
    assert [r.kind for r in site.rows()] == [SessionKind.ANONYMOUS]


def test_deactivation_ends_every_session_of_the_account_at_once(site: Site, worker: Flask) -> None:
    phone, desk, colleague = site.browser(), site.browser(), site.browser()
    for browser in (phone, desk):
        sign_in(browser, "clerk")
    sign_in(colleague, "libadmin")
    on_worker = worker.test_client()
    on_worker.set_cookie("session", cookie_of(desk) or "")
    assert on_worker.get("/staff/").status_code == 200
    keys = {services.key_of(cookie_of(b) or "") for b in (phone, desk)}
    admin = site.browser()
    sign_in(admin, "root")
    clerk = site.staff("clerk")
    response = admin.post(
        f"/admin/staff/{clerk.id}/active", data={"csrf_token": token_of(admin, "/admin/staff")}
    )
    assert response.status_code == 302
    for browser in (phone, desk, on_worker):
        assert browser.get("/staff/").status_code == 302
    assert colleague.get("/staff/").status_code == 200
    assert keys <= set(ended_keys(site, 2))
    assert not any(r.staff_id == clerk.id for r in site.rows())
    assert site.staff("clerk").session_epoch == clerk.session_epoch + 1  # kept, as a 2nd check


def test_a_password_change_ends_the_other_sessions_and_renews_this_one(
    site: Site, worker: Flask
) -> None:
    mine, other = site.browser(), site.browser()
    sign_in(mine, "clerk")
    sign_in(other, "clerk")
    before = cookie_of(mine) or ""
    on_worker = worker.test_client()
    on_worker.set_cookie("session", cookie_of(other) or "")
    new = "a brand new passphrase"
    changed = mine.post(
        "/staff/password",
        data={
            "current": PASSWORD,
            "new": new,
            "confirm": new,
            "csrf_token": token_of(mine, "/staff/password"),
        },
    )
    assert changed.status_code == 302
    assert mine.get("/staff/").status_code == 200  # this session goes on...
    assert cookie_of(mine) != before  # ...under a fresh token
    stale = site.browser()
    stale.set_cookie("session", before)
    assert stale.get("/staff/").status_code == 302
    assert other.get("/staff/").status_code == 302
    assert on_worker.get("/staff/").status_code == 302
    [row] = [r for r in site.rows() if r.kind == SessionKind.STAFF]
    assert row.key == services.key_of(cookie_of(mine) or "")
    assert services.key_of(before) in ended_keys(site, 2)
    assert sign_in(site.browser(), "clerk", new).status_code == 302


def test_staff_deleted_with_their_provider_take_their_sessions(site: Site) -> None:
    browser = site.browser()
    sign_in(browser, "museumclerk")
    with site.db() as s:
        from webapp.providers.models import Provider
        from webapp.terminals.models import Terminal

        s.query(Terminal).filter(Terminal.provider_id == site.museum).delete()
        s.query(Provider).filter(Provider.id == site.museum).delete()
        s.commit()
    assert site.rows() == []  # ON DELETE CASCADE: no session outlives its account
    assert browser.get("/staff/").status_code == 302
