"""A new municipality set up through the UI alone, in Chromium (CSRF on), in either
deployment (embedded, or gunicorn workers on PostgreSQL and Redis: every change must be
seen by whichever worker takes the next request).

Its points officer, starting from nothing configured, creates a program, a merchant,
adds a till to it and a staff account, registers a partner with its terms and issues its
API key (which then works against the partner API); a grant from the grants page then
goes through, the expiry policy is changed, and the audit log page shows every change.
Screenshots of every page (both languages) in artifacts/screenshots/points-admin/, each
checked by axe-core.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.e2e.conftest import shoot_and_audit
from tests.e2e.counter_stack import page
from webapp import db
from webapp.identity import services as identity
from webapp.points import admin as points_admin
from webapp.points import invariants
from webapp.points.models import Account, AccountKind, AuditEntry
from webapp.staff import services as staff_services
from webapp.staff.models import Role
from webapp.terminals.testing import LivePlatform

__all__ = ["page"]
pytestmark = pytest.mark.e2e

SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots" / "points-admin"
PASSWORD = "town points officer password"
CODE = "132004"


@pytest.fixture
def town(tmp_path: Path, deployment: str) -> Iterator[tuple[LivePlatform, str]]:
    """An empty municipality, its officer, and one citizen's MyKey ID (made with a card
    earlier: only the ID is needed here)."""
    extra = {"WTF_CSRF_ENABLED": True}
    with LivePlatform(tmp_path, extra=extra, deployment=deployment) as platform:
        with platform.app.app_context(), db.new_session() as s:
            muni = points_admin.create_municipality(s, CODE, "ひとつ町")
            staff_services.create_staff(
                s, "town-points", PASSWORD, Role.POINTS_OFFICER, municipality_id=muni.id
            )
            mykey, _ = identity.open_or_create(
                s, b"\x01" * 32, datetime.now(UTC) + timedelta(days=3650)
            )
            citizen = mykey.id
        yield platform, citizen


def shot(page: Any, name: str) -> None:
    shoot_and_audit(page, SHOTS / f"{name}.png", name)


def both(page: Any, name: str) -> None:
    """This page in Japanese (as it is) and in English, then back to Japanese."""
    shot(page, f"{name}-ja")
    here = page.url.split("?")[0]
    page.goto(f"{here}?lang=en")
    shot(page, f"{name}-en")
    page.goto(f"{here}?lang=ja")


def submit(page: Any, form: str) -> None:
    """Press the submit button of the form posting to `form` and wait for the answer."""
    with page.expect_navigation():
        page.locator(f"form[action$='{form}'] button[type=submit]").click()


def success(page: Any) -> str:
    status = page.locator(".alert-success")
    assert status.count() == 1, page.locator(".alert-error").all_inner_texts()
    return str(status.inner_text())


def test_an_officer_sets_up_a_new_municipality_through_the_ui(
    town: tuple[LivePlatform, str], page: Any
) -> None:
    platform, citizen = town
    url = platform.url
    page.goto(f"{url}/staff/login?lang=ja")
    page.fill("#login", "town-points")
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("main button[type=submit]")

    # 1. A program, from a page with none.
    page.goto(f"{url}/points/programs")
    assert "事業はまだありません" in page.content() or "No programs yet" in page.content()
    both(page, "programs-empty")
    page.fill("#code", "kosodate")
    page.fill("#name", "子育て応援ポイント")
    page.select_option("#category", "child_rearing")
    page.fill("#points_per_grant", "300")
    page.fill("#budget", "50000")
    page.fill("#cap_grants_per_citizen", "12")
    submit(page, "/points/programs")
    assert "作成しました" in success(page)
    both(page, "program")
    # A refused change says why and changes nothing.
    page.fill("#cap_grants_per_citizen", "5")
    submit(page, f"{page.url.split('?')[0].removeprefix(url)}")
    assert "引き上げのみ" in page.locator(".alert-error").inner_text()
    shot(page, "program-refused-ja")

    page.goto(f"{url}/points/programs")
    both(page, "programs")
    page.fill("#code", "kosodate")
    page.fill("#points_per_grant", "0")
    submit(page, "/points/programs")
    assert "1〜1,000,000,000,000" in page.inner_text("#points_per_grant-error")
    assert page.locator(".alert-error").count() == 1
    shot(page, "programs-refused-ja")

    # 2. A merchant, a till bound to it, a staff account.
    page.goto(f"{url}/points/merchants")
    both(page, "merchants-empty")
    page.fill("#code", "cafe1")
    page.fill("#name", "ひとつ町カフェ")
    page.select_option("#category", "shop")
    submit(page, "/points/merchants")
    merchant_page = page.url.split("?")[0]
    page.fill("#till_name", "カフェのレジ1")
    submit(page, "/tills")
    assert "レジを追加しました" in success(page)
    assert "カフェのレジ1" in page.locator(".plain-list").inner_text()
    page.fill("#login", "cafe-staff")
    page.fill("#password", "cafe staff first password")
    submit(page, "/staff")
    assert "cafe-staff" in page.content()
    page.locator("form[action*='/pairing-code'] button").click()
    page.wait_for_selector("[data-testid=pairing-code]")
    assert re.fullmatch(r"[0-9A-Z]{5}-[0-9A-Z]{5}", page.inner_text("[data-testid=pairing-code]"))
    shot(page, "merchant-pairing-code-ja")
    page.goto(merchant_page)
    both(page, "merchant")

    page.goto(f"{url}/points/merchants")
    both(page, "merchants")

    # 3. A partner with its terms and an API key, shown once.
    page.goto(f"{url}/points/partners")
    both(page, "partners-empty")
    page.fill("#code", "hitotsu-card")
    page.fill("#name", "ひとつカード")
    page.select_option("#kind", "credit_card")
    submit(page, "/points/partners")
    partner_page = page.url.split("?")[0]
    page.fill("#rate_den", "2")
    page.fill("#min_unit", "100")
    page.fill("#hold_days", "0")
    submit(page, partner_page.removeprefix(url))
    assert "保存しました" in success(page)
    submit(page, "/keys")
    key = page.inner_text("[data-testid=api-key]").strip()
    assert re.fullmatch(r"ick_[0-9a-f]{16}_[A-Za-z0-9_-]{43}", key)
    shot(page, "partner-key-shown-once-ja")
    page.goto(partner_page)
    assert key not in page.content()  # shown once
    both(page, "partner")
    asked = urllib.request.Request(  # noqa: S310  (our own test server)
        f"{url}/api/v1/partners/municipalities", headers={"Authorization": f"Bearer {key}"}
    )
    with urllib.request.urlopen(asked, timeout=10) as answer:  # noqa: S310
        listed = json.load(answer)["municipalities"]
    assert [(m["code"], m["rate"], m["hold_days"]) for m in listed] == [(CODE, [1, 2], 0)]

    page.goto(f"{url}/points/partners")
    both(page, "partners")

    # 4. A grant from the grants page works on what was just set up.
    page.goto(f"{url}/points/grants")
    page.fill("#mykey_id", citizen)
    page.select_option("#program_id", label="KOSODATE 子育て応援ポイント")
    submit(page, "/points/grants")
    granted = success(page)
    assert citizen in granted and "300" in granted
    shot(page, "grant-ja")

    # 5. The expiry policy.
    page.goto(f"{url}/points/policy")
    page.fill("#default_expiry_days", "730")
    submit(page, "/points/policy")
    assert "保存しました" in success(page)
    both(page, "policy")

    # 6. The audit log shows each change, who made it, never a secret.
    page.goto(f"{url}/points/audit")
    actions = page.locator("tr[data-action]").evaluate_all(
        "rows => rows.map(r => r.dataset.action)"
    )
    assert actions == [
        "policy.update", "partner.key_issue", "partner.terms", "partner.create",
        "till.pairing_code", "staff.create", "till.create", "merchant.create", "program.create",
    ]  # fmt: skip
    table = page.locator("table.audit").inner_text()
    assert "town-points" in table and "子育て応援ポイント" in table and "730" in table
    assert key.split("_")[1] in table and key.split("_", 2)[2] not in table
    assert "cafe staff first password" not in page.content()
    both(page, "audit")

    with platform.app.app_context(), db.new_session() as s:
        assert invariants.violations(s) == {}
        assert len(s.scalars(select(AuditEntry)).all()) == len(actions)
        citizens = s.scalars(select(Account).where(Account.kind == AccountKind.CITIZEN)).all()
        assert [(a.owner, a.balance) for a in citizens] == [(citizen, 300)]
