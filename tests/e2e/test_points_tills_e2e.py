"""Merchant staff open their till from the tills page in Chromium (CSRF on): the staff
menu's link, the list with the readers' presence, the "open this till" button, the no-till
message; axe-core checks and screenshots in both languages."""

from __future__ import annotations

import re
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
from webapp.terminals import get_registry, services
from webapp.terminals.models import BridgeDevice, TerminalKind, utcnow
from webapp.terminals.testing import LivePlatform

__all__ = ["page"]
pytestmark = pytest.mark.e2e

SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots" / "points"
PASSWORD = "museum till password"


@dataclass(frozen=True)
class Site:
    platform: LivePlatform
    online: int  # the museum's till whose bridge is connected
    offline: int  # the museum's other till (no bridge paired)
    shop: int  # another merchant's till


@pytest.fixture
def site(tmp_path: Path, deployment: str) -> Iterator[Site]:
    # A long flush interval: "online" (seen within three flushes) holds for the whole test.
    extra = {"WTF_CSRF_ENABLED": True}
    with LivePlatform(tmp_path, flush_interval=600, extra=extra, deployment=deployment) as platform:
        with platform.app.app_context(), db.new_session() as s:
            demo = ensure_providers(s)
            city = build_city(s, "131997", name="いちまい市")
            shop = points_admin.create_merchant(
                s, city.muni.id, "SHOP1", "駅前商店", MerchantCategory.SHOP
            )
            cafe = points_admin.create_merchant(
                s, city.muni.id, "CAFE1", "駅前カフェ", MerchantCategory.SHOP
            )
            for login, merchant in (("museumstaff", city.museum.id), ("cafestaff", cafe.id)):
                staff_services.create_staff(
                    s, login, PASSWORD, Role.MERCHANT_STAFF, merchant_id=merchant
                )

            def till(name: str, merchant: int) -> int:
                return services.create_terminal(
                    s, demo.museum.id, TerminalKind.MERCHANT, name, merchant_id=merchant
                ).id

            ids = (
                till("美術館レジ1", city.museum.id),
                till("美術館レジ2", city.museum.id),
                till("駅前レジ", shop.id),
            )
            # Presence as the registry records it: held by a worker that answers (the
            # test's own app, on the platform's bus), seen just now.
            s.add(
                BridgeDevice(
                    id="brg_e2e",
                    terminal_id=ids[0],
                    auth_public_key="a",
                    seal_public_key="s",
                    paired_at=utcnow(),
                    last_seen_at=utcnow(),
                    connected_worker=get_registry(platform.app).worker_id,
                )
            )
            s.commit()
        yield Site(platform, *ids)


def shoot_and_audit(page: Any, name: str) -> None:
    """SHOTS/tills-NAME.png, and nothing serious for axe."""
    audit(page, SHOTS / f"tills-{name}.png", name)


def sign_in(page: Any, url: str, login: str, lang: str = "ja") -> None:
    page.goto(f"{url}/staff/login?lang={lang}")
    page.fill("#login", login)
    page.fill("#password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_load_state()


def test_merchant_staff_open_their_till(site: Site, page: Any) -> None:
    url = site.platform.url
    sign_in(page, url, "museumstaff")
    page.locator(".site-nav").get_by_role("link", name="レジ").click()
    page.wait_for_url("**/points/terminal/tills")
    tiles = page.locator(".till-list li")
    assert tiles.count() == 2  # the shop's till is not listed
    assert "駅前レジ" not in page.content()
    assert "カードリーダー接続中" in tiles.nth(0).inner_text()
    assert "カードリーダー未登録" in tiles.nth(1).inner_text()
    shoot_and_audit(page, "ja")

    page.goto(f"{url}/points/terminal/tills?lang=en")
    assert "Card reader connected" in tiles.nth(0).inner_text()
    shoot_and_audit(page, "en")

    page.get_by_role("button", name=re.compile(r"^Open this till\W+美術館レジ2$")).click()
    page.wait_for_url("**/points/terminal/")
    page.wait_for_selector("[data-screen='amount']:not([hidden])")
    assert "美術館レジ2" in page.locator(".kiosk-place").inner_text()
    shoot_and_audit(page, "opened-en")
    page.get_by_role("link", name="Other tills").click()
    page.wait_for_url("**/points/terminal/tills")
    assert "Open in this tab" in page.locator(".till-list li").nth(1).inner_text()
    assert "Card reader connected" in page.locator(".till-list li").nth(0).inner_text()
    shoot_and_audit(page, "open-here-en")


def test_no_till_says_to_ask_the_administrator(site: Site, page: Any) -> None:
    url = site.platform.url
    sign_in(page, url, "cafestaff")
    page.goto(f"{url}/points/terminal/tills")
    assert "管理者" in page.locator("[role=status]").inner_text()
    shoot_and_audit(page, "none-ja")
    page.goto(f"{url}/points/terminal/tills?lang=en")
    assert "Ask your administrator" in page.locator("[role=status]").inner_text()
    shoot_and_audit(page, "none-en")
