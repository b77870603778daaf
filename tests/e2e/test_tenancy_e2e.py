"""Municipal tenancy in Chromium: the platform admin creates a municipality and its first
administrator; that administrator signs in, imports the municipality's providers from a
CSV file (a file with another municipality's row is refused whole, with its line), adds
a terminal and a staff member, and cannot reach another municipality's provider.
axe-core finds nothing serious; screenshots go to artifacts/screenshots/tenancy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import shoot_and_audit
from tests.e2e.counter_stack import page
from webapp import db
from webapp.providers import services as provider_services
from webapp.providers.models import ProviderKind
from webapp.staff import services as staff_services
from webapp.staff.models import Role
from webapp.terminals.testing import LivePlatform

__all__ = ["page"]
pytestmark = pytest.mark.e2e

SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots" / "tenancy"
ROOT_PASSWORD = "platform admin password"
ADMIN_PASSWORD = "chiyoda admin password"
HEADER = "ISIL,名称,よみ,都道府県,団体コード,種別\r\n"
OURS = (
    "JP-1310001,千代田区立千代田図書館,ちよだくりつちよだとしょかん,東京都,131016,公共図書館\r\n"
    "JP-1310002,日比谷図書文化館,ひびやとしょぶんかかん,東京都,131016,公共図書館\r\n"
    "chiyoda-museum,千代田区立美術館,ちよだくりつびじゅつかん,東京都,131016,博物館\r\n"
)
THEIRS = "JP-2710009,大阪市立図書館,おおさかしりつとしょかん,大阪府,271004,公共図書館\r\n"


@pytest.fixture
def platform(tmp_path: Path, deployment: str) -> Iterator[tuple[LivePlatform, int]]:
    with LivePlatform(tmp_path, extra={"WTF_CSRF_ENABLED": True}, deployment=deployment) as live:
        with live.app.app_context(), db.new_session() as s:
            staff_services.create_staff(s, "root", ROOT_PASSWORD, Role.PLATFORM_ADMIN, None)
            osaka = provider_services.create_provider(
                s,
                code="JP-2710001",
                kind=ProviderKind.LIBRARY,
                name_ja="大阪市立中央図書館",
                name_kana="おおさかしりつちゅうおうとしょかん",
                municipality_code="271004",
                municipality_name="大阪市",
            )
            other = osaka.id
        yield live, other


def sign_in(page: Any, url: str, login: str, password: str) -> None:
    page.context.clear_cookies()
    page.goto(f"{url}/staff/login?lang=ja")
    page.fill("#login", login)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def upload(page: Any, text: str, encoding: str) -> None:
    page.set_input_files(
        "#file", {"name": "providers.csv", "mimeType": "text/csv", "buffer": text.encode(encoding)}
    )
    page.get_by_role("button", name="確認して取り込む").click()
    page.wait_for_load_state()


def test_a_municipality_is_created_and_its_admin_manages_only_its_own(
    platform: tuple[LivePlatform, int], page: Any
) -> None:
    live, other = platform
    url = live.url
    # The platform admin: a municipality and its first administrator.
    sign_in(page, url, "root", ROOT_PASSWORD)
    page.goto(f"{url}/staff/")
    page.get_by_role("link", name="自治体").first.click()
    page.get_by_role("link", name="自治体を追加").click()
    page.fill("#code", "131017")  # a wrong check digit first
    page.fill("#name", "千代田区")
    page.fill("#login", "chiyoda.admin")
    page.fill("#password", ADMIN_PASSWORD)
    page.get_by_role("button", name="作成").click()
    page.wait_for_load_state()
    assert "検査数字" in page.locator(".alert-error").inner_text()
    shoot_and_audit(page, SHOTS / "municipality-new-error-ja.png", "municipality form error")
    page.fill("#code", "131016")
    page.fill("#password", ADMIN_PASSWORD)
    page.get_by_role("button", name="作成").click()
    page.wait_for_load_state()
    assert "/admin/municipalities" in page.url
    assert "131016" in page.locator("tbody").inner_text()
    shoot_and_audit(page, SHOTS / "municipalities-ja.png", "municipalities")

    # The municipal administrator signs in and imports the municipality's providers.
    sign_in(page, url, "chiyoda.admin", ADMIN_PASSWORD)
    page.goto(f"{url}/staff/")
    shoot_and_audit(page, SHOTS / "municipal-admin-home-ja.png", "municipal admin home")
    page.get_by_role("link", name="施設").first.click()
    page.get_by_role("link", name="CSVから取り込む").click()
    upload(page, HEADER + OURS + THEIRS, "utf-8-sig")
    errors = page.locator(".csv-errors tbody").inner_text()
    assert "5" in errors and "271004" in errors
    shoot_and_audit(page, SHOTS / "import-refused-ja.png", "import refused")
    upload(page, HEADER + OURS, "cp932")  # Shift_JIS, as Excel saves it
    assert "3件の施設を登録しました" in page.locator(".alert-success").inner_text()
    shoot_and_audit(page, SHOTS / "import-done-ja.png", "import done")
    page.get_by_role("link", name="施設一覧を見る").click()
    listing = page.locator("tbody").inner_text()
    assert "JP-1310001" in listing and "JP-2710001" not in listing
    shoot_and_audit(page, SHOTS / "providers-municipal-ja.png", "providers of a municipality")

    # A terminal for one of its libraries.
    page.goto(f"{url}/admin/terminals/")
    page.fill("#provider-code", "JP-1310002")
    page.get_by_role("button", name="表示").click()
    page.wait_for_load_state()
    page.fill("#terminal-name", "1階カウンター")
    page.get_by_role("button", name="端末を追加する").click()
    page.wait_for_load_state()
    assert "1階カウンター" in page.locator("table").first.inner_text()

    # A staff member, from the provider's row (no list of every provider in the country).
    page.goto(f"{url}/admin/providers/?q=JP-1310002")
    page.locator("tbody a", has_text="職員を追加").first.click()
    page.wait_for_load_state()
    assert "JP-1310002" in page.locator("#fixed-provider").inner_text()
    shoot_and_audit(page, SHOTS / "provider-staff-new-ja.png", "add staff of a provider")
    page.fill("#login", "hibiya.clerk")
    page.fill("#password", "a long clerk password")
    page.get_by_role("button", name="作成").click()
    page.wait_for_load_state()
    assert "hibiya.clerk" in page.locator("tbody").inner_text()
    shoot_and_audit(page, SHOTS / "staff-municipal-ja.png", "staff of a municipality")

    # The new-account form suggests its own providers as the admin types (no full list).
    page.goto(f"{url}/admin/staff/new")
    assert page.locator("#provider_code + datalist, datalist#provider-options").count() == 1
    page.locator("#provider_code").press_sequentially("日比谷")
    page.wait_for_function("() => document.querySelectorAll('#provider-options option').length > 0")
    offered = page.eval_on_selector_all("#provider-options option", "os => os.map(o => o.value)")
    assert offered == ["JP-1310002"]
    page.locator("#provider_code").fill("")
    page.locator("#provider_code").press_sequentially("JP-27")  # another town's: none
    page.wait_for_timeout(600)
    offered = page.eval_on_selector_all("#provider-options option", "os => os.map(o => o.value)")
    assert "JP-2710001" not in offered

    # Another municipality's provider: not there, by its id or its code.
    for path in (
        f"/admin/providers/{other}",
        f"/admin/providers/{other}/staff/new",
        f"/admin/terminals/?provider_id={other}",
    ):
        reply = page.goto(url + path)
        assert reply is not None and reply.status == 404, path
    page.goto(f"{url}/admin/providers/?q=JP-2710001")
    assert page.locator("tbody").count() == 0
    page.goto(f"{url}/admin/audit")
    log = page.locator("tbody").inner_text()
    assert "施設を一括登録" in log and "端末を追加" in log and "スタッフアカウントの作成" in log
    shoot_and_audit(page, SHOTS / "audit-municipal-ja.png", "administration log")
    # The new pages in English too.
    for path, name in (
        ("/admin/providers/import?lang=en", "import-en"),
        ("/admin/staff/new?lang=en", "staff-new-en"),
        ("/admin/providers/new?lang=en", "provider-new-municipal-en"),
    ):
        page.goto(url + path)
        shoot_and_audit(page, SHOTS / f"{name}.png", name)
    sign_in(page, url, "root", ROOT_PASSWORD)
    page.goto(f"{url}/admin/municipalities/new?lang=en")
    shoot_and_audit(page, SHOTS / "municipality-new-en.png", "municipality form (en)")
    page.goto(f"{url}/admin/staff/new?lang=en")
    shoot_and_audit(page, SHOTS / "staff-new-platform-en.png", "staff form (platform, en)")
