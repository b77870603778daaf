"""No page a role can use is reachable only by typing its address.

Walks every route of the app (`app.url_map`) as every role (and as a visitor): each GET
page the role opens (200, HTML) must be linked from the role's own pages, one click
away: the staff home and its navigation bar, and the front door (every page's header
links it). The routes that are not pages, and the pages reached from a list rather
than from the menu, are listed below, each with the reason; for the latter the test
follows the links from the role's pages and checks the page is found there.
"""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Rule

from webapp import create_app, db
from webapp.demo_data import ensure_providers
from webapp.points.demo import build_city
from webapp.staff import services as staff_services
from webapp.staff.models import Role
from webapp.terminals import services as terminal_services
from webapp.terminals.models import TerminalKind

PASSWORD = "correct horse battery"

# Routes that are not pages a person opens from a menu.
NOT_PAGES = {
    "static": "stylesheets, scripts and images",
    "checkout.page": "a citizen's checkout, reached from an online shop (its API's url)",
    "checkout.back": "the way back to the shop from a closed checkout",
    "health.healthz": "for the load balancer",
    "bridge_ws.bridge_socket": "the bridges' WebSocket",
    "cardflow.terminal_socket": "a terminal tab's WebSocket (counter.js, kiosk.js...)",
    "cardflow.status": "JSON polled by a terminal tab",
    "cardflow.current": "JSON: where a terminal tab's card flow stands",
    "cardflow.do": "JSON: a card flow's further step",
    "home.status": "JSON polled by home.js while the pairing code is shown",
    "bridge_download.wheel": "the bridge's wheel file, linked from /bridge/ (the install page)",
}
# JSON APIs of machines (bridges pairing, partners, the admin API): all under /api/.
API_PREFIX = "/api/"

# Pages reached from a list or another page rather than from the menu (page: where).
REACHED_FROM = {
    "providers_admin.create": "providers_admin.index",  # "Add a provider"
    "providers_admin.edit": "providers_admin.index",  # a provider's row
    "providers_admin.terms": "providers_admin.index",  # a provider's row
    "sip2_admin.settings": "providers_admin.edit",  # a library's settings page
    "admin.staff_new": "admin.staff_list",  # "Add an account"
    "admin.provider_staff_new": "providers_admin.index",  # a provider's row: "Add staff"
    "tenancy.import_providers": "providers_admin.index",  # "Import from CSV"
    "tenancy.import_template": "tenancy.import_providers",  # a CSV template download
    "tenancy.municipality_new": "tenancy.municipalities",  # "Add a municipality"
    "points_pages.grant_template": "points_pages.grants",  # a CSV template download
    "points_pages.settlement_csv": "points_pages.settlement",  # a CSV download
    "points_admin.program": "points_admin.programs",  # a program's row
    "points_admin.merchant": "points_admin.merchants",  # a merchant's row
    "points_admin.partner": "points_admin.partners_list",  # a partner's row
    "points_admin.cause": "points_admin.causes",  # a cause's or project's row
}

ROLES = ("visitor", *(role.value for role in Role))


class Links(HTMLParser):
    """Every <a href> of a page, and those inside the staff navigation bar."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.nav: list[str] = []
        self._nav_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        classes = (found.get("class") or "").split()
        if tag == "nav" and (self._nav_depth or "site-nav" in classes):
            self._nav_depth += 1
        if tag == "a" and found.get("href"):
            href = str(found["href"])
            self.hrefs.append(href)
            if self._nav_depth:
                self.nav.append(href)

    def handle_endtag(self, tag: str) -> None:
        if tag == "nav" and self._nav_depth:
            self._nav_depth -= 1


def links_of(html: str) -> Links:
    parser = Links()
    parser.feed(html)
    return parser


@dataclass
class Site:
    app: Flask
    library_id: int


@pytest.fixture
def site(tmp_path: Path) -> Site:
    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'menu.db'}",
            "SECRET_KEY": "t",
            "TESTING": True,
            "BUS_URL": "memory://",
            "DEMO_MODE": True,  # the front door's demo section, the virtual reader panel
        }
    )
    db.create_all(app)
    # The panel answers only where the demo runner's readers are: an empty set here.
    app.extensions["demo_readers"] = SimpleNamespace(
        terminals={}, cards={}, mode="test", revoked=set()
    )
    with app.app_context(), db.new_session() as s:
        demo = ensure_providers(s)
        city = build_city(s, "131997", name="いちまい市")
        for kind, name in (
            (TerminalKind.COUNTER, "カウンター1"),
            (TerminalKind.COUNTER, "カウンター2"),
            (TerminalKind.KIOSK, "キオスク1"),
        ):
            terminal_services.create_terminal(s, demo.library.id, kind, name)
        for name in ("美術館レジ1", "美術館レジ2"):
            terminal_services.create_terminal(
                s, demo.museum.id, TerminalKind.MERCHANT, name, merchant_id=city.museum.id
            )
        staff_services.create_staff(s, "platform_admin", PASSWORD, Role.PLATFORM_ADMIN)
        for role in (Role.PROVIDER_ADMIN, Role.COUNTER_STAFF):
            staff_services.create_staff(s, role.value, PASSWORD, role, demo.library.id)
        staff_services.create_staff(
            s, "merchant_staff", PASSWORD, Role.MERCHANT_STAFF, merchant_id=city.museum.id
        )
        staff_services.create_staff(
            s, "points_officer", PASSWORD, Role.POINTS_OFFICER, municipality_id=city.muni.id
        )
        staff_services.create_staff(
            s, "municipal_admin", PASSWORD, Role.MUNICIPAL_ADMIN, municipality_id=city.muni.id
        )
        library_id = demo.library.id
    app.config["WTF_CSRF_ENABLED"] = False  # the forms' tokens are tested elsewhere
    return Site(app, library_id)


def client_as(site: Site, role: str) -> FlaskClient:
    client = site.app.test_client()
    if role != "visitor":
        reply = client.post("/staff/login", data={"login": role, "password": PASSWORD})
        assert reply.status_code == 302, role
    return client


def endpoint_of(app: Flask, href: str) -> str | None:
    """The endpoint a link on our site leads to (None: elsewhere, or no route)."""
    parts = urlsplit(href)
    if parts.scheme or parts.netloc or not parts.path.startswith("/"):
        return None
    adapter = app.url_map.bind("localhost")
    try:
        endpoint, _ = adapter.match(parts.path, method="GET")
    except HTTPException:
        return None
    return str(endpoint)


def is_page(reply: Any) -> bool:
    return reply.status_code == 200 and reply.mimetype == "text/html"


def get_rules(app: Flask) -> list[Rule]:
    return [r for r in app.url_map.iter_rules() if "GET" in (r.methods or ())]


def own_pages(client: FlaskClient, role: str) -> dict[str, Links]:
    """The role's own pages (front door; staff home) and their links."""
    paths = ["/"] if role == "visitor" else ["/", "/staff/"]
    pages = {}
    for path in paths:
        reply = client.get(path)
        assert is_page(reply), (role, path, reply.status_code)
        pages[path] = links_of(reply.get_data(as_text=True))
    return pages


def crawl(app: Flask, client: FlaskClient, start: list[str]) -> set[str]:
    """Endpoints reached by following links two clicks from `start` (GET pages only)."""
    seen_paths: set[str] = set()
    reached: set[str] = set()
    frontier = list(start)
    for _ in range(2):
        following = []
        for href in frontier:
            path = urlsplit(href).path
            endpoint = endpoint_of(app, href)
            if endpoint is None or path in seen_paths or endpoint in NOT_PAGES:
                continue
            seen_paths.add(path)
            reply = client.get(href)
            if not is_page(reply):
                continue
            reached.add(endpoint)
            following += links_of(reply.get_data(as_text=True)).hrefs
        frontier = following
    return reached


@pytest.mark.parametrize("role", ROLES)
def test_every_page_a_role_opens_is_linked_from_its_pages(site: Site, role: str) -> None:
    app = site.app
    client = client_as(site, role)
    pages = own_pages(client, role)
    one_click = {
        e for links in pages.values() for e in map(lambda h: endpoint_of(app, h), links.hrefs)
    }
    unlinked, unlisted = [], []
    for rule in get_rules(app):
        endpoint = rule.endpoint
        if endpoint in NOT_PAGES or rule.rule.startswith(API_PREFIX):
            continue
        if rule.arguments:
            # A page of one object (a provider, a step...): it must say where it is found.
            if endpoint not in REACHED_FROM:
                unlisted.append(rule.rule)
            continue
        reply = client.get(rule.rule)
        if not is_page(reply):
            continue  # not this role's (403, a redirect to sign in or to another page)
        if endpoint not in one_click and endpoint not in REACHED_FROM:
            unlinked.append(rule.rule)
    assert not unlisted, f"pages of one object missing from REACHED_FROM: {unlisted}"
    assert not unlinked, f"{role} opens these pages, but nothing links them: {unlinked}"

    # The pages reached from a list: found by following the role's own links.
    reached = crawl(app, client, [h for links in pages.values() for h in links.hrefs])
    for endpoint, parent in REACHED_FROM.items():
        rule = next(r for r in get_rules(app) if r.endpoint == endpoint)
        # A page of one object cannot be probed without the object: found, it opens.
        opens = endpoint in reached if rule.arguments else is_page(client.get(rule.rule))
        if opens:
            assert parent in reached, f"{role}: {endpoint}'s list {parent} is not linked"
            assert endpoint in reached, f"{role}: {parent} does not link {endpoint}"


def test_a_provider_admin_reaches_their_providers_pages(site: Site) -> None:
    """The pages of one object this role uses are found through its own links."""
    client = client_as(site, "provider_admin")
    pages = own_pages(client, "provider_admin")
    reached = crawl(site.app, client, [h for links in pages.values() for h in links.hrefs])
    assert {"providers_admin.edit", "providers_admin.terms", "sip2_admin.settings"} <= reached


@pytest.mark.parametrize("role", [r.value for r in Role])
def test_the_navigation_bar_shows_the_same_pages_as_the_home(site: Site, role: str) -> None:
    app = site.app
    client = client_as(site, role)
    home = links_of(client.get("/staff/").get_data(as_text=True))
    tiles = {endpoint_of(app, h) for h in home.hrefs if h not in home.nav}
    on_another_page = links_of(client.get("/staff/password").get_data(as_text=True))
    nav = {endpoint_of(app, h) for h in on_another_page.nav}
    assert nav == {endpoint_of(app, h) for h in home.nav}
    # The brand (every page's header) links the front door; the nav, the staff home.
    assert "/" in on_another_page.hrefs
    assert "staff.home" in nav
    assert tiles - {None, "front.index"} <= nav, (role, tiles - nav)
