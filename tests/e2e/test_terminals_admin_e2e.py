"""The terminals admin page in Chromium: a shop till with its merchant, the merchant
changed from the page (CSRF on), axe-core checks and screenshots in both languages."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import shoot_and_audit as audit
from tests.e2e.counter_stack import page
from webapp import db
from webapp.demo_data import ensure_providers
from webapp.points import admin as points_admin
from webapp.points.demo import build_city
from webapp.points.models import MerchantCategory
from webapp.staff import services as staff_services
from webapp.staff.models import Role
from webapp.terminals import services
from webapp.terminals.models import Terminal, TerminalKind
from webapp.terminals.testing import LivePlatform

__all__ = ["page"]
pytestmark = pytest.mark.e2e

SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots" / "admin"
PASSWORD = "museum admin password"


@dataclass(frozen=True)
class Site:
    platform: LivePlatform
    till: int
    museum: int
    shop: int


@pytest.fixture
def site(tmp_path: Path, deployment: str) -> Iterator[Site]:
    with LivePlatform(
        tmp_path, extra={"WTF_CSRF_ENABLED": True}, deployment=deployment
    ) as platform:
        with platform.app.app_context(), db.new_session() as s:
            demo = ensure_providers(s)
            city = build_city(s, "131997", name="いちまい市")
            shop = points_admin.create_merchant(
                s, city.muni.id, "SHOP1", "駅前商店", MerchantCategory.SHOP
            )
            staff_services.create_staff(
                s, "museumadmin", PASSWORD, Role.PROVIDER_ADMIN, demo.museum.id
            )
            services.create_terminal(s, demo.museum.id, TerminalKind.COUNTER, "受付1")
            till = services.create_terminal(
                s, demo.museum.id, TerminalKind.MERCHANT, "美術館レジ1", merchant_id=city.museum.id
            )
            ids = (till.id, city.museum.id, shop.id)
        yield Site(platform, *ids)


def shoot_and_audit(page: Any, name: str) -> None:
    """SHOTS/terminals-NAME.png, and nothing serious for axe."""
    audit(page, SHOTS / f"terminals-{name}.png", name)


def merchant_of(site: Site) -> int | None:
    with site.platform.app.app_context(), db.new_session() as s:
        terminal = s.get(Terminal, site.till)
        assert terminal is not None
        return terminal.merchant_id


def test_an_admin_moves_a_till_to_another_merchant(site: Site, page: Any) -> None:
    url = site.platform.url
    page.goto(f"{url}/staff/login?lang=ja")
    page.fill("#login", "museumadmin")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{url}/admin/terminals/")
    row = page.locator("tr", has_text="美術館レジ1")
    assert "市立美術館" in row.inner_text() and "いちまい市" in row.inner_text()
    shoot_and_audit(page, "ja")

    page.select_option(f"#merchant-{site.till}", str(site.shop))
    row.get_by_role("button", name="加盟店を変更").click()
    page.wait_for_load_state()
    assert "駅前商店" in page.locator("tr", has_text="美術館レジ1").inner_text()
    assert merchant_of(site) == site.shop

    # A till with no merchant is refused with the reason, and nothing changes.
    page.select_option("#terminal-kind", TerminalKind.MERCHANT)
    page.fill("#terminal-name", "レジ2")
    page.click("form[method=post][action$='/admin/terminals/'] button[type=submit]")
    assert "加盟店レジには加盟店が必要です" in page.locator("[role=alert]").inner_text()
    shoot_and_audit(page, "refused-ja")

    page.goto(f"{url}/admin/terminals/?lang=en")
    assert "Shop till" in page.locator("tr", has_text="美術館レジ1").inner_text()
    shoot_and_audit(page, "en")
    assert merchant_of(site) == site.shop
