"""A library's SIP2 settings page: saved with passwords sealed as the page seals them,
Test connection through the real connector bridge to the demo library system, the rules
that keep a sealed password to one bridge and one address, and who may see the page."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from bridge.seal import SecretContext, seal_secret
from tests.fixtures.sip2 import NoReaders
from webapp import db
from webapp.demo_data import DemoProviders, ensure_providers
from webapp.library_demo import LOGIN_PASSWORD, LOGIN_USER, DemoLibrary
from webapp.sip2.models import LibrarySip2
from webapp.staff import services as staff_services
from webapp.staff.models import Role
from webapp.terminals import services as terminal_services
from webapp.terminals.models import TerminalKind
from webapp.terminals.testing import BridgeThread, LivePlatform

PASSWORD = "library admin password"


@dataclass
class Site:
    platform: LivePlatform
    providers: DemoProviders
    connector: int
    bridge_id: str
    seal_key: str
    library: DemoLibrary


@pytest.fixture
def site(tmp_path: Path, demo_library: DemoLibrary) -> Iterator[Site]:
    with LivePlatform(tmp_path, extra={"WTF_CSRF_ENABLED": True}) as platform:
        with platform.app.app_context(), db.new_session() as s:
            providers = ensure_providers(s)
            connector = terminal_services.create_terminal(
                s, providers.library.id, TerminalKind.COUNTER, "Counter 1"
            ).id
            staff_services.create_staff(
                s, "libadmin", PASSWORD, Role.PROVIDER_ADMIN, providers.library.id
            )
            staff_services.create_staff(
                s, "museumadmin", PASSWORD, Role.PROVIDER_ADMIN, providers.museum.id
            )
        identity = platform.pair_bridge(tmp_path / "connector", connector)
        with platform.app.app_context(), db.new_session() as s:
            seal_key = terminal_services.get_bridge(s, identity.bridge_id).seal_public_key
        with BridgeThread(identity, NoReaders(), backoff_base=0.05, backoff_cap=0.2):
            yield Site(platform, providers, connector, identity.bridge_id, seal_key, demo_library)


def signed_in(site: Site, login: str) -> tuple[FlaskClient, str]:
    client = site.platform.app.test_client()
    page = client.get("/staff/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert token
    done = client.post(
        "/staff/login", data={"login": login, "password": PASSWORD, "csrf_token": token[1]}
    )
    assert done.status_code == 302
    return client, token[1]


def page_token(client: FlaskClient, url: str) -> tuple[str, str]:
    html = client.get(url).get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert token, html[:500]
    return html, token[1]


def sealed(site: Site, secret: str, purpose: str, host: str, port: int) -> str:
    target = f"tcp://{host}:{port}"
    return json.dumps(
        seal_secret(site.seal_key, secret, SecretContext(site.bridge_id, purpose, target))
    )


def form(site: Site, token: str, **overrides: Any) -> dict[str, Any]:
    host, port = site.library.host, site.library.port
    body: dict[str, Any] = {
        "csrf_token": token,
        "terminal_id": site.connector,
        "host": host,
        "port": port,
        "charset": "utf-8",
        "patron_status": "y",
        "institution_id": "JP-1000001",
        "location_code": "DEMO",
        "login_user": LOGIN_USER,
        "login_password_sealed": sealed(site, LOGIN_PASSWORD, "sip2-login", host, port),
        "terminal_password_sealed": sealed(site, "demo-terminal", "sip2-terminal", host, port),
        "sealed_for": site.bridge_id,
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def url(site: Site) -> str:
    return f"/admin/providers/{site.providers.library.id}/sip2"


def test_a_library_without_sip2_says_staff_verify(site: Site) -> None:
    client, _ = signed_in(site, "libadmin")
    html = client.get(url(site)).get_data(as_text=True)
    assert 'id="no-sip2"' in html
    settings = client.get(f"/admin/providers/{site.providers.library.id}").get_data(as_text=True)
    assert 'id="sip2-link"' in settings


def test_save_then_test_connection_through_the_connector(site: Site) -> None:
    client, _ = signed_in(site, "libadmin")
    _, token = page_token(client, url(site))
    saved = client.post(url(site), data=form(site, token))
    assert saved.status_code == 302, saved.get_data(as_text=True)[:2000]
    html, token = page_token(client, url(site))
    tested = client.post(f"{url(site)}/test", data={"csrf_token": token})
    page = tested.get_data(as_text=True)
    assert tested.status_code == 200 and 'id="test-result"' in page
    assert "63" in page  # the supported messages the system announced
    assert site.library.logins[-1] == (LOGIN_USER, True)
    with site.platform.app.app_context(), db.new_session() as s:
        row = s.get(LibrarySip2, site.providers.library.id)
        assert row is not None and row.check_code == "ok"
        stored = json.dumps(row.login_password)
    assert LOGIN_PASSWORD not in stored and LOGIN_PASSWORD not in html


def test_a_wrong_login_password_is_said_on_test(site: Site) -> None:
    client, _ = signed_in(site, "libadmin")
    _, token = page_token(client, url(site))
    host, port = site.library.host, site.library.port
    wrong = sealed(site, "not-the-login", "sip2-login", host, port)
    assert (
        client.post(url(site), data=form(site, token, login_password_sealed=wrong)).status_code
        == 302
    )
    _, token = page_token(client, url(site))
    tested = client.post(f"{url(site)}/test", data={"csrf_token": token})
    assert tested.status_code == 502
    assert "93" in tested.get_data(as_text=True)  # "refused the login (93)"


def test_passwords_are_typed_again_for_a_new_address(site: Site) -> None:
    client, _ = signed_in(site, "libadmin")
    _, token = page_token(client, url(site))
    assert client.post(url(site), data=form(site, token)).status_code == 302
    _, token = page_token(client, url(site))
    # Same address, no password typed: the stored envelopes are kept.
    kept = form(site, token, login_password_sealed="", terminal_password_sealed="")
    assert client.post(url(site), data=kept).status_code == 302
    # Another port, no password typed: refused (they are sealed to the old address).
    _, token = page_token(client, url(site))
    moved = form(
        site,
        token,
        port=site.library.port + 1,
        login_password_sealed="",
        terminal_password_sealed="",
    )
    refused = client.post(url(site), data=moved)
    assert refused.status_code == 422
    with site.platform.app.app_context(), db.new_session() as s:
        row = s.get(LibrarySip2, site.providers.library.id)
        assert row is not None and row.port == site.library.port  # nothing written


def test_an_envelope_that_is_no_envelope_is_refused(site: Site) -> None:
    client, _ = signed_in(site, "libadmin")
    _, token = page_token(client, url(site))
    bad = client.post(url(site), data=form(site, token, login_password_sealed="demo-sip2-login"))
    assert bad.status_code == 422
    with site.platform.app.app_context(), db.new_session() as s:
        assert s.get(LibrarySip2, site.providers.library.id) is None


def test_remove_goes_back_to_staff_verification(site: Site) -> None:
    client, _ = signed_in(site, "libadmin")
    _, token = page_token(client, url(site))
    assert client.post(url(site), data=form(site, token)).status_code == 302
    _, token = page_token(client, url(site))
    assert client.post(f"{url(site)}/remove", data={"csrf_token": token}).status_code == 302
    assert 'id="no-sip2"' in client.get(url(site)).get_data(as_text=True)


def test_only_the_librarys_admins_see_it(site: Site) -> None:
    client, _ = signed_in(site, "museumadmin")
    assert client.get(url(site)).status_code == 404  # another's provider: out of sight
    museum = f"/admin/providers/{site.providers.museum.id}/sip2"
    assert "libraries" in client.get(f"{museum}?lang=en").get_data(as_text=True).lower()
