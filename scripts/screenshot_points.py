"""Screenshots of the points staff pages (ja and en) into artifacts/screenshots/points/.

Run: .venv/bin/python scripts/screenshot_points.py  (a throwaway SQLite file, a demo city)
"""

from __future__ import annotations

import tempfile
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.sync_api import Page, sync_playwright
from werkzeug.serving import make_server

from webapp import create_app, db
from webapp.points import causes, programs, spend
from webapp.points.demo import build_city
from webapp.points.directory import KnownMyKeyIds
from webapp.points.models import CauseKind, MissPolicy
from webapp.points.officer import Officer
from webapp.points.officer.causes import add_cause
from webapp.staff import services as staff_services
from webapp.staff.models import Role

OUT = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots" / "points"
PASSWORD = "correct horse battery"  # noqa: S105  (a throwaway demo database)
PEOPLE = {"ALICE234", "BOB23456", "CAROL789"}


def _seed(app: object) -> None:
    """A city with grants, two payments, a refund, an officer and merchant staff."""
    with db.new_session() as s:
        city = build_city(s)
        directory = KnownMyKeyIds(PEOPLE)
        for n, person in enumerate(sorted(PEOPLE)):
            programs.grant(s, city.volunteering.id, person, key=f"seed{n}", directory=directory)
        first = spend.spend(s, city.museum.id, "ALICE234", 300, key="pay1")
        spend.spend(s, city.museum.id, "BOB23456", 200, key="pay2")
        spend.refund(s, city.museum.id, first.transfer_id, 100, key="ref1")
        staff_services.create_staff(
            s, "officer", PASSWORD, Role.POINTS_OFFICER, municipality_id=city.muni.id
        )
        who = Officer(city.muni.id, "officer")
        relief = add_cause(
            s, who, code="RELIEF", name="災害復興支援", description="豪雨災害の復旧に使われます。",
            kind=CauseKind.CAUSE, goal_points=None, ends_at=None, miss_policy=MissPolicy.RETURN,
            fresh_days=30,
        )  # fmt: skip
        hall = add_cause(
            s, who, code="HALL", name="町民ホールの改修", description="", kind=CauseKind.PROJECT,
            goal_points=50_000, ends_at=datetime.now(UTC) + timedelta(days=60),
            miss_policy=MissPolicy.RETURN, fresh_days=30,
        )  # fmt: skip
        causes.donate(s, relief.id, "CAROL789", 200, key="give1")
        causes.donate(s, hall.id, "BOB23456", 100, key="give2")
        staff_services.create_staff(
            s, "shop", PASSWORD, Role.MERCHANT_STAFF, merchant_id=city.museum.id
        )


def _login(page: Page, base: str, login: str) -> None:
    page.goto(f"{base}/staff/login")
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")


def _shoot(page: Page, base: str, path: str, name: str) -> None:
    for lang in ("ja", "en"):
        page.goto(f"{base}{path}{'&' if '?' in path else '?'}lang={lang}")
        page.screenshot(path=str(OUT / f"{name}-{lang}.png"), full_page=True)


def main() -> None:
    """Start the app on a free port, seed it, and take the screenshots."""
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.mkdtemp()
    app = create_app(
        {"DATABASE_URL": f"sqlite:///{tmp}/shots.db", "SECRET_KEY": "shots", "BUS_URL": "memory://"}
    )
    app.extensions["points_directory"] = KnownMyKeyIds(PEOPLE)
    db.create_all(app)
    with app.app_context():
        _seed(app)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    bad = Path(tmp) / "grants.csv"
    bad.write_text("mykey_id,program\r\nALICE234,VOL\r\nNOBODY99,VOL\r\nBOB23456,NOPE\r\n")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        _login(page, base, "officer")
        _shoot(page, base, "/points/municipality", "municipality")
        _shoot(page, base, "/points/grants", "grants")
        _shoot(page, base, "/points/causes", "causes")
        _shoot(page, base, "/points/causes/2", "cause-project")
        for lang in ("ja", "en"):
            page.goto(f"{base}/points/causes?lang={lang}")
            page.select_option("select[name=kind]", "project")
            page.fill("input[name=code]", "NEWPROJ")
            page.fill("input[name=name]", "図書館の絵本")
            page.click("form button.primary")
            page.screenshot(path=str(OUT / f"causes-refused-{lang}.png"), full_page=True)
        for lang in ("ja", "en"):
            page.goto(f"{base}/points/grants?lang={lang}")
            page.set_input_files("input[type=file]", str(bad))
            page.click("form[enctype] button[type=submit]")
            page.screenshot(path=str(OUT / f"grants-csv-rejected-{lang}.png"), full_page=True)
            page.goto(f"{base}/points/grants?lang={lang}")
            page.fill("input[name=mykey_id]", "CAROL789")
            page.click("form:not([enctype]) button.primary")
            page.screenshot(path=str(OUT / f"grants-granted-{lang}.png"), full_page=True)
        page.context.clear_cookies()
        _login(page, base, "shop")
        _shoot(page, base, "/points/merchant/settlement", "settlement")
        _shoot(
            page,
            base,
            "/points/merchant/settlement?start=2025-05-01&end=2025-04-01",
            "settlement-error",
        )
        _shoot(page, base, "/points/merchant/refunds", "refunds")
        mobile = browser.new_page(viewport={"width": 390, "height": 844})
        mobile.context.add_cookies(page.context.cookies())
        mobile.goto(f"{base}/points/merchant/refunds?lang=ja")
        mobile.screenshot(path=str(OUT / "refunds-mobile-ja.png"), full_page=True)
        browser.close()
    server.shutdown()


if __name__ == "__main__":
    main()
