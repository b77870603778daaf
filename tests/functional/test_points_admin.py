"""The points officer's set-up pages through the app, CSRF on: every form's happy and
unhappy paths, each change in the audit log (and nothing when refused), another
municipality's ids refused by direct POSTs, no CSRF token, a signed-out session's cookie."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete, select

from webapp import create_app, db
from webapp.points import admin as points_admin
from webapp.points import invariants, partners
from webapp.points.demo import build_city
from webapp.points.directory import KnownMyKeyIds
from webapp.points.models import (
    Account,
    AuditEntry,
    ConversionTerms,
    Merchant,
    Partner,
    PartnerKey,
    PartnerKind,
    Program,
)
from webapp.staff import services as staff_services
from webapp.staff.models import Role, StaffUser
from webapp.terminals.models import Terminal

PASSWORD = "correct horse battery"
CITIZEN = "ALICE234"


@dataclass(frozen=True)
class World:
    """Town A (nothing configured, officer `officer-a`) and city B (the demo city,
    officer `officer-b`, with a program, a merchant, a till, staff and a partner)."""

    app: Flask
    a: int
    b: int
    b_program: int
    b_bonus: int
    b_merchant: int
    b_till: int
    b_staff: int
    b_partner: int
    b_key_id: str


@pytest.fixture
def world(tmp_path: Path) -> World:
    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'test.db'}",
            "SECRET_KEY": "test",
            "TESTING": True,
            "BUS_URL": "memory://",
        }
    )
    db.create_all(app)
    app.extensions["points_directory"] = KnownMyKeyIds({CITIZEN})
    with app.app_context(), db.new_session() as s:
        a = points_admin.create_municipality(s, "131008", "いちまい町")
        city = build_city(s, "011002")
        staff_services.create_staff(
            s, "officer-a", PASSWORD, Role.POINTS_OFFICER, municipality_id=a.id
        )
        staff_services.create_staff(
            s, "officer-b", PASSWORD, Role.POINTS_OFFICER, municipality_id=city.muni.id
        )
        staff_services.create_staff(s, "root", PASSWORD, Role.PLATFORM_ADMIN)
        b_staff = staff_services.create_staff(
            s, "museum-staff", PASSWORD, Role.MERCHANT_STAFF, merchant_id=city.museum.id
        )
        from webapp.points.officer import Officer
        from webapp.points.officer import merchants as merchant_services

        till = merchant_services.add_till(
            s, Officer(city.muni.id, "setup"), city.museum.id, "美術館レジ"
        )
        s.execute(delete(AuditEntry))  # the set-up is not the officers' doing
        s.commit()
        key = s.scalar(select(PartnerKey.key_id).where(PartnerKey.partner_id == city.partner.id))
        assert key is not None
        return World(
            app, a.id, city.muni.id, city.volunteering.id, city.bonus.id, city.museum.id,
            till.id, b_staff.id, city.partner.id, key,
        )  # fmt: skip


def token(html: str) -> str:
    found = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def sign_in(world: World, login: str) -> tuple[FlaskClient, str]:
    client = world.app.test_client()
    page = client.get("/staff/login").get_data(as_text=True)
    signed = client.post(
        "/staff/login", data={"login": login, "password": PASSWORD, "csrf_token": token(page)}
    )
    assert signed.status_code == 302
    return client, token(client.get("/staff/").get_data(as_text=True))


def log(world: World, municipality: int) -> list[AuditEntry]:
    with world.app.app_context(), db.new_session() as s:
        return list(
            s.scalars(
                select(AuditEntry)
                .where(AuditEntry.municipality_id == municipality)
                .order_by(AuditEntry.id)
            )
        )


def snapshot(world: World) -> dict[str, Any]:
    """Everything an officer's change could touch, to show a refused one changed nothing."""
    with world.app.app_context(), db.new_session() as s:
        out: dict[str, Any] = {}
        for model in (
            Program,
            Merchant,
            Partner,
            PartnerKey,
            ConversionTerms,
            Terminal,
            StaffUser,
            AuditEntry,
        ):
            rows = s.scalars(select(model)).all()
            out[model.__tablename__] = sorted(
                repr(sorted((k, v) for k, v in vars(r).items() if not k.startswith("_")))
                for r in rows
            )
        out["balances"] = sorted(s.execute(select(Account.id, Account.balance)).all())
        return out


PROGRAM = {
    "code": "kosodate",
    "name": "子育て応援",
    "category": "child_rearing",
    "points_per_grant": "300",
    "expiry_days": "180",
    "budget": "9000",
    "cap_points_per_citizen": "600",
    "cap_grants_per_citizen": "",
    "starts_on": "",
    "ends_on": "",
}


def test_pages_answer_the_officer_in_japanese_and_english(world: World) -> None:
    client, _ = sign_in(world, "officer-b")
    for path in (
        "/points/programs", f"/points/programs/{world.b_program}", "/points/merchants",
        f"/points/merchants/{world.b_merchant}", "/points/partners",
        f"/points/partners/{world.b_partner}", "/points/policy", "/points/audit",
    ):  # fmt: skip
        ja = client.get(path)
        assert ja.status_code == 200, path
        assert '<html lang="ja">' in ja.get_data(as_text=True)
        assert client.get(path + "?lang=en").status_code == 200
        client.get(path + "?lang=ja")
    html = client.get("/points/programs").get_data(as_text=True)
    assert "ポイント事業" in html and "監査ログ" in html


@pytest.mark.parametrize("login", ["root", "museum-staff"])
def test_other_roles_are_refused(world: World, login: str) -> None:
    client, csrf = sign_in(world, login)
    assert client.get("/points/programs").status_code == 403
    answer = client.post("/points/programs", data={**PROGRAM, "csrf_token": csrf})
    assert answer.status_code == 403
    assert log(world, world.b) == []


def test_create_a_program_then_change_pause_fund_it(world: World) -> None:
    client, csrf = sign_in(world, "officer-a")
    made = client.post("/points/programs", data={**PROGRAM, "csrf_token": csrf})
    assert made.status_code == 302
    with world.app.app_context(), db.new_session() as s:
        program = s.scalar(select(Program).where(Program.municipality_id == world.a))
        assert program is not None
        assert (program.code, program.points_per_grant, program.cap_points_per_citizen) == (
            "KOSODATE",
            300,
            600,
        )
        pid = program.id
    page = client.get(made.headers["Location"] + "&lang=en").get_data(as_text=True)
    assert "Created." in page and "9,000" in page
    changed = client.post(
        f"/points/programs/{pid}",
        data={
            "name": "子育て応援2026", "points_per_grant": "400", "expiry_days": "90",
            "cap_points_per_citizen": "800", "cap_grants_per_citizen": "",
            "starts_on": "2026-04-01", "ends_on": "2027-03-31", "csrf_token": csrf,
        },
    )  # fmt: skip
    assert changed.status_code == 302
    assert (
        client.post(f"/points/programs/{pid}/pause", data={"csrf_token": csrf}).status_code == 302
    )
    assert (
        client.post(f"/points/programs/{pid}/resume", data={"csrf_token": csrf}).status_code == 302
    )
    funded = client.post(
        f"/points/programs/{pid}/budget", data={"points": "1000", "key": "k1", "csrf_token": csrf}
    )
    assert funded.status_code == 302
    again = client.post(
        f"/points/programs/{pid}/budget", data={"points": "1000", "key": "k1", "csrf_token": csrf}
    )
    assert again.status_code == 302  # a double submit is one funding, logged once
    entries = log(world, world.a)
    assert [e.action for e in entries] == [
        "program.create", "program.update", "program.pause", "program.resume", "program.fund",
    ]  # fmt: skip
    assert all(e.actor == "officer-a" for e in entries)
    update = entries[1].changes
    assert update["name"] == ["子育て応援", "子育て応援2026"]
    assert update["points_per_grant"] == [300, 400]
    assert update["cap_points_per_citizen"] == [600, 800]
    assert update["starts_at"] == [None, "2026-03-31T15:00:00+00:00"]  # midnight in Japan
    assert update["ends_at"] == [None, "2027-03-31T15:00:00+00:00"]  # the end of 31 March
    assert "category" not in update and "cap_grants_per_citizen" not in update
    assert entries[2].changes == {"active": [True, False]}
    assert entries[4].changes["budget_added"] == [None, 1000]
    with world.app.app_context(), db.new_session() as s:
        program = s.get(Program, pid)
        assert program is not None
        account = s.get(Account, program.account_id)
        assert account is not None and account.balance == 10_000
        assert not any(invariants.violations(s).values())
    audit_page = client.get("/points/audit?lang=en").get_data(as_text=True)
    for words in (
        "Program created",
        "Program changed",
        "Program paused",
        "Budget added",
        "officer-a",
    ):
        assert words in audit_page


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"code": ""}, "Please enter a code."),
        ({"code": "bad code!"}, "Use only letters A-Z, digits, - or _."),
        ({"code": "X" * 33}, "At most 32 characters."),
        ({"code": "AB\x07"}, "control character"),
        ({"name": ""}, "Please enter a name."),
        ({"name": "名" * 201}, "At most 200 characters."),
        ({"points_per_grant": "0"}, "Enter a whole number from 1"),
        ({"points_per_grant": "abc"}, "Not a valid integer value."),
        ({"budget": "-5"}, "Enter a whole number from 1"),
        ({"expiry_days": "0"}, "Enter a number of days from 1 to 3650."),
        ({"expiry_days": "99999"}, "Enter a number of days from 1 to 3650."),
        ({"category": "gambling"}, "Not a valid choice."),
        ({"starts_on": "2026-05-01", "ends_on": "2026-04-01"}, "The last day must be on or after"),
        ({"starts_on": "not a date"}, "Not a valid date value."),
        ({"code": "VOL"}, None),  # city B's code: fine here (codes are per municipality)
    ],
)
def test_a_bad_program_is_refused_with_its_reason(
    world: World, change: dict[str, str], message: str | None
) -> None:
    client, csrf = sign_in(world, "officer-a")
    before = snapshot(world)
    answer = client.post("/points/programs?lang=en", data={**PROGRAM, **change, "csrf_token": csrf})
    if message is None:
        assert answer.status_code == 302
        return
    assert answer.status_code == 400
    assert message in answer.get_data(as_text=True)
    assert snapshot(world) == before


def test_a_duplicate_code_and_a_lowered_cap_are_refused(world: World) -> None:
    client, csrf = sign_in(world, "officer-a")
    client.post("/points/programs", data={**PROGRAM, "csrf_token": csrf})
    before = snapshot(world)
    twice = client.post("/points/programs?lang=en", data={**PROGRAM, "csrf_token": csrf})
    assert twice.status_code == 400 and "already used" in twice.get_data(as_text=True)
    with world.app.app_context(), db.new_session() as s:
        pid = s.scalar(select(Program.id).where(Program.municipality_id == world.a))
    edit = {
        "name": "子育て応援", "points_per_grant": "300", "expiry_days": "180",
        "cap_points_per_citizen": "500", "cap_grants_per_citizen": "", "csrf_token": csrf,
    }  # fmt: skip
    lowered = client.post(f"/points/programs/{pid}?lang=en", data=edit)
    assert lowered.status_code == 422 and "can only be raised" in lowered.get_data(as_text=True)
    added = client.post(
        f"/points/programs/{pid}?lang=en",
        data={**edit, "cap_points_per_citizen": "600", "cap_grants_per_citizen": "3"},
    )
    assert added.status_code == 422
    ja = client.post(f"/points/programs/{pid}?lang=ja", data=edit).get_data(as_text=True)
    assert "上限" in ja
    assert snapshot(world) == before


def test_a_program_paused_or_ended_grants_nothing_from_the_page(world: World) -> None:
    client, csrf = sign_in(world, "officer-b")
    grant = {"mykey_id": CITIZEN, "program_id": str(world.b_program), "csrf_token": csrf}
    client.post(f"/points/programs/{world.b_program}/pause", data={"csrf_token": csrf})
    paused = client.post("/points/grants?lang=en", data={**grant, "key": "g1"})
    assert paused.status_code == 422 and "not active" in paused.get_data(as_text=True)
    client.post(f"/points/programs/{world.b_program}/resume", data={"csrf_token": csrf})
    ended = {
        "name": "ボランティア", "points_per_grant": "500", "expiry_days": "180",
        "starts_on": "2020-01-01", "ends_on": "2020-12-31", "csrf_token": csrf,
    }  # fmt: skip
    assert client.post(f"/points/programs/{world.b_program}", data=ended).status_code == 302
    shown = client.get(f"/points/programs/{world.b_program}?lang=en").get_data(as_text=True)
    assert "Ended on 2020-12-31" in shown
    assert "Ended on 2020-12-31" in client.get("/points/programs").get_data(as_text=True)
    after = client.post("/points/grants?lang=en", data={**grant, "key": "g2"})
    assert after.status_code == 422 and "does not pay on this date" in after.get_data(as_text=True)
    ended["ends_on"] = ""
    client.post(f"/points/programs/{world.b_program}", data=ended)
    works = client.post("/points/grants?lang=en", data={**grant, "key": "g3"})
    assert works.status_code == 200 and "Granted." in works.get_data(as_text=True)


def test_merchant_till_and_staff(world: World) -> None:
    client, csrf = sign_in(world, "officer-a")
    made = client.post(
        "/points/merchants",
        data={"code": "cafe1", "name": "町のカフェ", "category": "shop", "csrf_token": csrf},
    )
    assert made.status_code == 302
    with world.app.app_context(), db.new_session() as s:
        mid = s.scalar(select(Merchant.id).where(Merchant.municipality_id == world.a))
    assert made.headers["Location"].startswith(f"/points/merchants/{mid}")
    second = client.post(
        "/points/merchants",
        data={"code": "bus", "name": "町営バス", "category": "transport", "csrf_token": csrf},
    )
    bus = int(second.headers["Location"].split("/")[3].split("?")[0])
    assert (
        client.post(
            f"/points/merchants/{mid}/tills", data={"till_name": "カフェのレジ", "csrf_token": csrf}
        ).status_code
        == 302
    )
    with world.app.app_context(), db.new_session() as s:
        till = s.scalar(select(Terminal).where(Terminal.merchant_id == mid))
        assert till is not None and till.kind == "merchant"
        tid = till.id
    code = client.post(f"/points/tills/{tid}/pairing-code", data={"csrf_token": csrf})
    assert code.status_code == 200 and 'data-testid="pairing-code"' in code.get_data(as_text=True)
    moved = client.post(
        f"/points/merchants/{bus}/tills/bind", data={"terminal_id": str(tid), "csrf_token": csrf}
    )
    assert moved.status_code == 302
    staff = client.post(
        f"/points/merchants/{bus}/staff",
        data={"login": "bus-driver", "password": PASSWORD, "csrf_token": csrf},
    )
    assert staff.status_code == 302
    weak = client.post(
        f"/points/merchants/{bus}/staff?lang=en",
        data={"login": "bus-driver2", "password": "short", "csrf_token": csrf},
    )
    assert weak.status_code == 400 and "Passwords need at least" in weak.get_data(as_text=True)
    taken = client.post(
        f"/points/merchants/{bus}/staff?lang=en",
        data={"login": "officer-b", "password": PASSWORD, "csrf_token": csrf},
    )
    assert taken.status_code == 400
    with world.app.app_context(), db.new_session() as s:
        driver = s.scalar(select(StaffUser).where(StaffUser.login == "bus-driver"))
        assert driver is not None and driver.merchant_id == bus and driver.role == "merchant_staff"
        did = driver.id
    assert client.post(f"/points/staff/{did}/disable", data={"csrf_token": csrf}).status_code == 302
    renamed = client.post(
        f"/points/merchants/{mid}",
        data={"name": "町のカフェ本店", "category": "shop", "active": "y", "csrf_token": csrf},
    )
    assert renamed.status_code == 302
    bad = client.post(
        f"/points/merchants/{mid}?lang=en",
        data={"name": "", "category": "shop", "csrf_token": csrf},
    )
    assert bad.status_code == 400 and "Please enter a name." in bad.get_data(as_text=True)
    actions = [(e.action, e.subject, e.changes) for e in log(world, world.a)]
    assert [a for a, _, _ in actions] == [
        "merchant.create", "merchant.create", "till.create", "till.pairing_code", "till.bind",
        "staff.create", "staff.disable", "merchant.update",
    ]  # fmt: skip
    assert actions[4][2] == {"merchant": ["CAFE1", "BUS"]}
    assert actions[7][2] == {"name": ["町のカフェ", "町のカフェ本店"]}
    # No password, hash or secret in the log.
    text = repr(actions)
    assert PASSWORD not in text and "argon2" not in text


def test_partner_terms_and_keys(world: World) -> None:
    client, csrf = sign_in(world, "officer-a")
    # A bonus program first (kind partner bonus).
    client.post(
        "/points/programs",
        data={
            **PROGRAM,
            "code": "BONUS",
            "category": "partner_bonus",
            "cap_points_per_citizen": "",
            "csrf_token": csrf,
        },
    )
    made = client.post(
        "/points/partners",
        data={"code": "sky-air", "name": "スカイ航空", "kind": "airline", "csrf_token": csrf},
    )
    assert made.status_code == 302
    pid = int(made.headers["Location"].split("/")[3].split("?")[0])
    with world.app.app_context(), db.new_session() as s:
        bonus = s.scalar(
            select(Program.id).where(Program.code == "BONUS", Program.municipality_id == world.a)
        )
    terms = {
        "rate_num": "1", "rate_den": "2", "bonus_bp": "500", "bonus_program_id": str(bonus),
        "min_unit": "100", "hold_days": "0", "expiry_days": "365", "active": "y",
        "csrf_token": csrf,
    }  # fmt: skip
    assert client.post(f"/points/partners/{pid}", data=terms).status_code == 302
    no_program = client.post(
        f"/points/partners/{pid}?lang=en", data={**terms, "bonus_program_id": "0"}
    )
    assert no_program.status_code == 400 and "partner bonus program" in no_program.get_data(
        as_text=True
    )
    foreign = client.post(
        f"/points/partners/{pid}?lang=en", data={**terms, "bonus_program_id": str(world.b_bonus)}
    )
    assert foreign.status_code == 400
    zero = client.post(f"/points/partners/{pid}?lang=en", data={**terms, "rate_den": "0"})
    assert zero.status_code == 400 and "Enter 1 to 1,000,000." in zero.get_data(as_text=True)
    issued = client.post(f"/points/partners/{pid}/keys", data={"csrf_token": csrf})
    html = issued.get_data(as_text=True)
    key = re.search(r'data-testid="api-key">(ick_[0-9a-f]{16}_[A-Za-z0-9_-]{43})<', html)
    assert issued.status_code == 200 and key
    with world.app.app_context(), db.new_session() as s:
        assert partners.authenticate(s, key.group(1)).id == pid
    # Shown once: the partner's page never shows it again.
    assert key.group(1) not in client.get(f"/points/partners/{pid}").get_data(as_text=True)
    client.post(f"/points/partners/{pid}/keys", data={"csrf_token": csrf})
    third = client.post(f"/points/partners/{pid}/keys?lang=en", data={"csrf_token": csrf})
    assert third.status_code == 422 and "At most two API keys" in third.get_data(as_text=True)
    key_id = key.group(1).split("_")[1]
    revoked = client.post(
        f"/points/partners/{pid}/keys/revoke", data={"key_id": key_id, "csrf_token": csrf}
    )
    assert revoked.status_code == 302
    with (
        world.app.app_context(),
        db.new_session() as s,
        pytest.raises(Exception, match="unauthorized"),
    ):
        partners.authenticate(s, key.group(1))
    entries = log(world, world.a)
    assert [e.action for e in entries][1:] == [
        "partner.create", "partner.terms", "partner.key_issue", "partner.key_issue",
        "partner.key_revoke",
    ]  # fmt: skip
    assert entries[2].changes["rate_den"] == [None, 2] and entries[2].changes["bonus_bp"] == [
        None,
        500,
    ]
    assert entries[3].changes == {"key_id": [None, key_id]}
    assert key.group(1).split("_", 2)[2] not in repr([e.changes for e in entries])  # no secret


def test_policy(world: World) -> None:
    client, csrf = sign_in(world, "officer-a")
    saved = client.post(
        "/points/policy",
        data={"default_expiry_days": "730", "refund_window_days": "14", "csrf_token": csrf},
    )
    assert saved.status_code == 302
    bad = client.post(
        "/points/policy?lang=en",
        data={"default_expiry_days": "0", "refund_window_days": "-1", "csrf_token": csrf},
    )
    assert bad.status_code == 400 and "Enter a number of days from 1 to 3650." in bad.get_data(
        as_text=True
    )
    bad = client.post(
        "/points/policy?lang=en",
        data={"default_expiry_days": "730", "refund_window_days": "-1", "csrf_token": csrf},
    )
    assert bad.status_code == 400 and "Enter a number of days from 0 to 3650." in bad.get_data(
        as_text=True
    )
    # Blank: back to the platform's window (90 days), shown in the hint.
    page = client.get("/points/policy?lang=en").get_data(as_text=True)
    assert 'value="14"' in page and "the platform's 90 days" in page
    saved = client.post(
        "/points/policy",
        data={"default_expiry_days": "730", "refund_window_days": "", "csrf_token": csrf},
    )
    assert saved.status_code == 302
    assert [(e.action, e.changes) for e in log(world, world.a)] == [
        ("policy.update", {"default_expiry_days": [365, 730], "refund_window_days": [None, 14]}),
        ("policy.update", {"refund_window_days": [14, None]}),
    ]
    # A new program starts from the policy's validity.
    assert 'value="730"' in client.get("/points/programs").get_data(as_text=True)


def cross_requests(world: World) -> list[tuple[str, dict[str, str]]]:
    """Officer A aiming at city B's things by id, one request per form."""
    b = world
    return [
        (
            f"/points/programs/{b.b_program}",
            {"name": "x", "points_per_grant": "1", "expiry_days": "1"},
        ),
        (f"/points/programs/{b.b_program}/pause", {}),
        (f"/points/programs/{b.b_program}/resume", {}),
        (f"/points/programs/{b.b_program}/budget", {"points": "5", "key": "k"}),
        (f"/points/merchants/{b.b_merchant}", {"name": "x", "category": "shop", "active": "y"}),
        (f"/points/merchants/{b.b_merchant}/tills", {"till_name": "x"}),
        (f"/points/merchants/{b.b_merchant}/staff", {"login": "intruder", "password": PASSWORD}),
        (f"/points/tills/{b.b_till}/pairing-code", {}),
        (f"/points/staff/{b.b_staff}/disable", {}),
        (
            f"/points/partners/{b.b_partner}",
            {
                "rate_num": "9",
                "rate_den": "1",
                "bonus_bp": "0",
                "bonus_program_id": "0",
                "min_unit": "1",
                "hold_days": "0",
                "expiry_days": "1",
            },
        ),
        (f"/points/partners/{b.b_partner}/keys", {}),
        (f"/points/partners/{b.b_partner}/keys/revoke", {"key_id": b.b_key_id}),
    ]


def test_another_municipalitys_things_are_not_found_and_unchanged(world: World) -> None:
    client, csrf = sign_in(world, "officer-a")
    for path in (
        f"/points/programs/{world.b_program}",
        f"/points/merchants/{world.b_merchant}",
        f"/points/partners/{world.b_partner}",
    ):
        assert client.get(path).status_code == 404
    page = client.get("/points/partners").get_data(as_text=True)
    assert "AIRLINE1" not in page
    before = snapshot(world)
    for path, data in cross_requests(world):
        answer = client.post(path, data={**data, "csrf_token": csrf})
        assert answer.status_code == 404, path
    # A's own merchant cannot take B's till either.
    mine = client.post(
        "/points/merchants",
        data={"code": "M1", "name": "店", "category": "shop", "csrf_token": csrf},
    )
    mid = int(mine.headers["Location"].split("/")[3].split("?")[0])
    steal = client.post(
        f"/points/merchants/{mid}/tills/bind",
        data={"terminal_id": str(world.b_till), "csrf_token": csrf},
    )
    assert steal.status_code == 404
    after = snapshot(world)
    assert after["points_audit_log"] == before["points_audit_log"] + [
        a for a in after["points_audit_log"] if "merchant.create" in a
    ]
    for table in (
        "points_programs",
        "points_partners",
        "points_partner_keys",
        "points_conversion_terms",
        "terminals",
        "staff_users",
    ):
        assert after[table] == before[table], table
    assert log(world, world.b) == []


def test_no_csrf_token_no_change(world: World) -> None:
    client, _ = sign_in(world, "officer-b")
    before = snapshot(world)
    for path, data in cross_requests(world):
        assert client.post(path, data=data).status_code == 400, path
    assert client.post("/points/programs", data=PROGRAM).status_code == 400
    assert snapshot(world) == before


def test_a_signed_out_sessions_cookie_changes_nothing(world: World) -> None:
    client, csrf = sign_in(world, "officer-b")
    cookie = client.get_cookie("session")
    assert cookie is not None
    out = client.post("/staff/logout", data={"csrf_token": csrf})
    assert out.status_code in (302, 303)
    before = snapshot(world)
    replay = world.app.test_client()
    replay.set_cookie("session", cookie.value, domain=cookie.domain or "localhost")
    for path, data in cross_requests(world)[:4]:
        answer = replay.post(path, data={**data, "csrf_token": csrf})
        assert answer.status_code in (302, 400), path
        assert "/staff/login" in answer.headers.get("Location", "/staff/login")
    assert replay.get("/points/audit").status_code == 302
    assert snapshot(world) == before


def test_a_platform_partner_takes_terms_here_but_its_keys_are_not_issued_here(
    world: World,
) -> None:
    with world.app.app_context(), db.new_session() as s:
        national = points_admin.create_partner(s, "MOBILE1", "全国モバイル", PartnerKind.MOBILE)
        points_admin.set_terms(s, world.b, national.id, rate=(1, 1))
        nid = national.id
    client, csrf = sign_in(world, "officer-b")
    page = client.get(f"/points/partners/{nid}?lang=en").get_data(as_text=True)
    assert "managed by the platform" in page and "Issue an API key" not in page
    refused = client.post(f"/points/partners/{nid}/keys?lang=en", data={"csrf_token": csrf})
    assert refused.status_code == 422 and "managed by the platform" in refused.get_data(
        as_text=True
    )
    with world.app.app_context(), db.new_session() as s:
        assert partners.live_keys(s, nid) == []
    other, _ = sign_in(world, "officer-a")  # no terms in town A: not there at all
    assert other.get(f"/points/partners/{nid}").status_code == 404
