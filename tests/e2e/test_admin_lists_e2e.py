"""The admin lists in Chromium with 120 generated rows each: the first page is bounded,
the search box and the pager work from the keyboard-visible page, axe-core finds nothing
serious, and screenshots of each list (Japanese) go to artifacts/screenshots/admin."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import shoot_and_audit
from tests.e2e.counter_stack import page
from webapp import db
from webapp.demo_data import ensure_providers
from webapp.providers.models import Provider, ProviderKind
from webapp.providers.services import set_search_keys
from webapp.staff import services as staff_services
from webapp.staff.models import Role, StaffUser
from webapp.terminals.models import Terminal, TerminalKind
from webapp.terminals.testing import LivePlatform

__all__ = ["page"]
pytestmark = pytest.mark.e2e

SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots" / "admin"
PASSWORD = "platform admin password"
MANY = 120


@pytest.fixture
def platform(tmp_path: Path, deployment: str) -> Iterator[tuple[LivePlatform, int]]:
    with LivePlatform(tmp_path, extra={"WTF_CSRF_ENABLED": True}, deployment=deployment) as live:
        with live.app.app_context(), db.new_session() as s:
            demo = ensure_providers(s)
            root = staff_services.create_staff(s, "root", PASSWORD, Role.PLATFORM_ADMIN, None)
            for n in range(MANY):
                p = Provider(
                    code=f"JP-9{n:05d}", kind=ProviderKind.LIBRARY, name_ja=f"生成図書館{n:03d}"
                )
                set_search_keys(p)
                s.add(p)
                s.add(
                    Terminal(
                        provider_id=demo.library.id,
                        kind=TerminalKind.COUNTER,
                        name=f"カウンター{n:03d}",
                    )
                )
                s.add(
                    StaffUser(
                        login=f"clerk{n:03d}",
                        password_hash=root.password_hash,
                        role=Role.COUNTER_STAFF,
                        provider_id=demo.library.id,
                    )
                )
            s.commit()
            library = demo.library.id
        yield live, library


def rows(page: Any) -> int:
    return page.locator("tbody tr").count()


def test_each_admin_list_pages_and_searches(platform: tuple[LivePlatform, int], page: Any) -> None:
    live, library = platform
    url = live.url
    page.goto(f"{url}/staff/login?lang=ja")
    page.fill("#login", "root")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    for path, name, query, hits in (
        ("/admin/providers/", "providers", "生成図書館01", 10),
        (f"/admin/terminals/?provider_id={library}", "terminals", "カウンター02", 10),
        ("/admin/staff", "staff", "clerk11", 10),
    ):
        page.goto(url + path)
        assert rows(page) == 50
        shoot_and_audit(page, SHOTS / f"list-{name}-ja.png", name)
        page.locator(".pager a[rel=next]").click()
        page.wait_for_load_state()
        assert rows(page) == 50 and "page=2" in page.url
        page.fill("#list-q", query)
        page.locator("#list-q").press("Enter")
        page.wait_for_load_state()
        assert rows(page) == hits, name
        assert page.locator(".list-count").inner_text()
        shoot_and_audit(page, SHOTS / f"list-{name}-search-ja.png", f"{name} search")
    page.goto(f"{url}/admin/sessions/")
    shoot_and_audit(page, SHOTS / "list-sessions-ja.png", "sessions")
