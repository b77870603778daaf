"""The admin page /admin/sessions: who sees what, ending a session, revoking a kiosk or
home binding, CSRF, pages of 50, both languages."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask.testing import FlaskClient

from tests.support.forms import csrf_token
from tests.unit.webapp.sessions.conftest import (
    Site,
    cookie_of,
    ended_keys,
    open_kiosk,
    sign_in,
    token_of,
    wait_until,
)
from webapp.sessions import services
from webapp.sessions.models import SessionKind, WebSession

PAGE = "/admin/sessions/"


def admin(site: Site, login: str) -> FlaskClient:
    browser = site.browser(accept_language="en")
    sign_in(browser, login)
    return browser


def keys_on(browser: FlaskClient, url: str = PAGE) -> set[str]:
    html = browser.get(url).get_data(as_text=True)
    return set(re.findall(r"/admin/sessions/([0-9a-f]{64})/end", html))


def key(browser: FlaskClient) -> str:
    return services.key_of(cookie_of(browser) or "")


def home_browser(site: Site) -> FlaskClient:
    citizen = site.browser()
    page = citizen.get("/home/").get_data(as_text=True)
    assert citizen.post("/home/terminal", data={"csrf_token": csrf_token(page)}).status_code == 302
    return citizen


def test_platform_admins_see_every_session(site: Site) -> None:
    root = admin(site, "root")
    clerk, museum_clerk = site.browser(), site.browser()
    sign_in(clerk, "clerk")
    sign_in(museum_clerk, "museumclerk")
    kiosk = open_kiosk(site, site.kiosk, "libadmin")
    citizen = home_browser(site)
    stranger = site.browser()
    stranger.get("/staff/login")  # a CSRF token: an anonymous session
    everyone = {key(b) for b in (root, clerk, museum_clerk, kiosk, citizen, stranger)}
    assert keys_on(root) == everyone
    page = root.get(PAGE).get_data(as_text=True)
    assert "museumclerk" in page and "Counter staff" in page and "Lobby" in page
    assert "This browser" in page and "Werkzeug" in page  # the test client's summary
    assert keys_on(root, PAGE + "?kind=staff") == {key(b) for b in (root, clerk, museum_clerk)}
    assert keys_on(root, PAGE + "?kind=home") == {key(citizen)}


def test_provider_admins_see_their_staff_and_kiosks_only(site: Site) -> None:
    libadmin = admin(site, "libadmin")
    clerk, museum_clerk = site.browser(), site.browser()
    sign_in(clerk, "clerk")
    sign_in(museum_clerk, "museumclerk")
    ours = open_kiosk(site, site.kiosk)
    theirs = open_kiosk(site, site.museum_kiosk)
    citizen = home_browser(site)
    root = admin(site, "root")
    assert keys_on(libadmin) == {key(libadmin), key(clerk), key(ours)}
    assert keys_on(libadmin, PAGE + "?kind=home") == keys_on(libadmin)  # no such filter here
    token = token_of(libadmin, PAGE)
    for stranger in (museum_clerk, theirs, citizen, root):
        ended = libadmin.post(f"{PAGE}{key(stranger)}/end", data={"csrf_token": token})
        assert ended.status_code == 404
    for terminal in (site.museum_kiosk, site.rows()[-2].terminal_id):
        revoked = libadmin.post(f"{PAGE}terminals/{terminal}/revoke", data={"csrf_token": token})
        assert revoked.status_code == 404
    assert museum_clerk.get("/staff/").status_code == 200
    assert theirs.get("/terminal/status").status_code == 200
    assert citizen.get("/home/status").get_json()["state"] == "pairing"
    assert root.get("/admin/").status_code == 302  # still signed in: /admin/ redirects on


def test_an_admin_ends_a_session_and_that_browser_is_signed_out(site: Site) -> None:
    libadmin = admin(site, "libadmin")
    clerk = site.browser()
    sign_in(clerk, "clerk")
    ended = libadmin.post(f"{PAGE}{key(clerk)}/end", data={"csrf_token": token_of(libadmin, PAGE)})
    assert ended.status_code == 302
    assert "Sessions ended: 1" in libadmin.get(ended.headers["Location"]).get_data(as_text=True)
    response = clerk.get("/staff/")
    assert response.status_code == 302 and "/staff/login" in response.headers["Location"]
    assert key(clerk) not in keys_on(libadmin)


def test_ending_ones_own_session_is_signing_out(site: Site) -> None:
    root = admin(site, "root")
    mine = key(root)
    ended = root.post(f"{PAGE}{mine}/end", data={"csrf_token": token_of(root, PAGE)})
    assert ended.status_code == 302 and ended.headers["Location"] == "/staff/login"
    assert root.get(PAGE).status_code == 302
    assert mine in ended_keys(site, 2)  # after the sign-in's rotation


def test_revoking_a_kiosk_binding_frees_that_browser(site: Site) -> None:
    kiosk = open_kiosk(site, site.kiosk)
    second = open_kiosk(site, site.kiosk)  # the same kiosk opened on two devices
    assert kiosk.get("/terminal/status").status_code == 200
    bound = {key(kiosk), key(second)}
    libadmin = admin(site, "libadmin")
    page = libadmin.get(PAGE).get_data(as_text=True)
    assert f"{PAGE}terminals/{site.kiosk}/revoke" in page
    revoked = libadmin.post(
        f"{PAGE}terminals/{site.kiosk}/revoke", data={"csrf_token": token_of(libadmin, PAGE)}
    )
    assert revoked.status_code == 302
    for browser in (kiosk, second):
        assert browser.get("/terminal/status").status_code == 401  # no terminal any more
        assert browser.post("/flow/begin", json={"purpose": "kiosk"}).status_code in (400, 401)
        assert browser.get("/kiosk/").status_code == 302
    assert wait_until(lambda: any(site.kiosk in m["terminal_ids"] for m in site.ended))
    [announced] = [m for m in site.ended if site.kiosk in m["terminal_ids"]]
    assert set(announced["keys"]) == bound


def test_platform_admins_revoke_a_home_binding(site: Site) -> None:
    citizen = home_browser(site)
    [row] = [r for r in site.rows() if r.kind == SessionKind.HOME]
    root = admin(site, "root")
    revoked = root.post(
        f"{PAGE}terminals/{row.terminal_id}/revoke", data={"csrf_token": token_of(root, PAGE)}
    )
    assert revoked.status_code == 302
    assert citizen.get("/home/status").get_json() == {"state": "start", "expired": False}


@pytest.mark.parametrize("action", ["end", "revoke"])
def test_ending_needs_the_csrf_token(site: Site, action: str) -> None:
    root = admin(site, "root")
    kiosk = open_kiosk(site, site.kiosk)
    url = f"{PAGE}{key(kiosk)}/end" if action == "end" else f"{PAGE}terminals/{site.kiosk}/revoke"
    assert root.post(url).status_code == 400
    assert kiosk.get("/terminal/status").status_code == 200


def test_who_reaches_the_page(site: Site) -> None:
    assert site.browser().get(PAGE).status_code == 302
    clerk = site.browser()
    sign_in(clerk, "clerk")
    assert clerk.get(PAGE).status_code == 403
    root = admin(site, "root")
    bad = root.post(f"{PAGE}not-a-key/end", data={"csrf_token": token_of(root, PAGE)})
    assert bad.status_code == 404
    gone = root.post(f"{PAGE}{'0' * 64}/end", data={"csrf_token": token_of(root, PAGE)})
    assert gone.status_code == 404


def test_fifty_sessions_a_page_latest_first(site: Site) -> None:
    root = admin(site, "root")
    now = site.clock.now
    with site.db() as s:
        for i in range(60):
            seen = now - timedelta(minutes=i + 1)
            s.add(
                WebSession(
                    key=f"{i:064x}",
                    kind=SessionKind.ANONYMOUS,
                    data='{"lang":"ja"}',
                    created_at=seen,
                    last_seen_at=seen,
                    expires_at=seen + timedelta(hours=24),
                    idle_seconds=7200,
                    ends_at=seen + timedelta(hours=2),
                )
            )
        s.commit()
    first = root.get(PAGE).get_data(as_text=True)
    shown = re.findall(r"/admin/sessions/([0-9a-f]{64})/end", first)
    assert len(shown) == 50 and shown[0] == key(root) and shown[1] == f"{0:064x}"
    assert 'href="/admin/sessions/?page=2"' in first
    second = re.findall(r"/admin/sessions/([0-9a-f]{64})/end", root.get(PAGE + "?page=2").text)
    assert second == [f"{i:064x}" for i in range(49, 60)]
    site.clock.advance(hours=1, minutes=30)  # the oldest have been idle two hours: gone
    assert len(keys_on(root, PAGE + "?page=2")) < 11


def test_the_page_in_both_languages(site: Site) -> None:
    root = site.browser()
    sign_in(root, "root")
    ja = root.get(PAGE + "?lang=ja").get_data(as_text=True)
    assert "<h1>セッション</h1>" in ja and "キオスクと自宅のカードリーダーの結び付け" in ja
    assert "時刻は日本時間です。" in ja and "終了する" in ja
    en = root.get(PAGE + "?lang=en").get_data(as_text=True)
    assert "<h1>Sessions</h1>" in en and "Kiosk and home bindings" in en and ">End<" in en
    assert f'href="{PAGE}"' in root.get("/staff/").get_data(as_text=True)  # linked
