"""The partner JSON API: good requests, and bad input that gets a clear 4xx and changes nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from webapp.points import partners
from webapp.points.demo import City
from webapp.points.models import Account, Conversion, Transfer

URL = "/api/v1/partners/conversions"


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of the app."""
    return app.test_client()


def body(**changes: Any) -> dict[str, Any]:
    """A good conversion request, with `changes`."""
    base: dict[str, Any] = {
        "municipality": "011002",
        "mykey_id": "ALICE234",
        "partner_points": 1000,
        "reference": "REF-1",
    }
    base.update(changes)
    return base


def auth(key: str) -> dict[str, str]:
    """The Authorization header for `key`."""
    return {"Authorization": f"Bearer {key}"}


def state(s: Session) -> tuple[int, int, int]:
    """Counts that must not move on a refused request."""
    counts = (
        s.scalar(select(func.count()).select_from(Transfer)) or 0,
        s.scalar(select(func.count()).select_from(Conversion)) or 0,
        s.scalar(select(func.sum(Account.credits_pending))) or 0,
    )
    s.rollback()
    return counts


def test_convert_then_replay_then_status(client: FlaskClient, world: City, s: Session) -> None:
    first = client.post(URL, json=body(), headers=auth(world.api_key))
    assert first.status_code == 201, first.json
    assert first.json is not None
    conv = first.json["conversion"]
    assert (conv["points"], conv["status"], conv["replayed"]) == (1100, "pending", False)
    assert first.headers["Cache-Control"] == "no-store"
    again = client.post(URL, json=body(), headers=auth(world.api_key))
    assert again.status_code == 200 and again.json is not None
    assert again.json["conversion"]["replayed"] is True
    shown = client.get(f"{URL}/REF-1", headers=auth(world.api_key))
    assert shown.status_code == 200 and shown.json is not None
    assert shown.json["conversion"]["base_points"] == 1000
    cancelled = client.post(f"{URL}/REF-1/cancel", headers=auth(world.api_key))
    assert cancelled.status_code == 200 and cancelled.json is not None
    assert cancelled.json["conversion"]["status"] == "voided"
    terms = client.get("/api/v1/partners/municipalities", headers=auth(world.api_key))
    assert terms.json == {
        "municipalities": [
            {"code": "011002", "name": "テスト市011002", "rate": [1, 1], "bonus_bp": 1000,
             "min_unit": 100, "hold_days": 14}
        ]
    }  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "status", "code"),
    [
        ({"partner_points": -100}, 400, "invalid_amount"),
        ({"partner_points": 0}, 400, "invalid_amount"),
        ({"partner_points": 10**11}, 400, "invalid_amount"),
        ({"partner_points": 10**30}, 400, "invalid_amount"),
        ({"partner_points": 100.0}, 400, "invalid_amount"),
        ({"partner_points": 150.5}, 400, "invalid_amount"),
        ({"partner_points": "1000"}, 400, "invalid_amount"),
        ({"partner_points": True}, 400, "invalid_amount"),
        ({"partner_points": None}, 400, "invalid_amount"),
        ({"partner_points": [1000]}, 400, "invalid_amount"),
        ({"partner_points": 150}, 422, "below_minimum_unit"),
        ({"mykey_id": "NOBODY11"}, 404, "unknown_citizen"),
        ({"mykey_id": "../etc"}, 400, "invalid_mykey_id"),
        ({"mykey_id": 12345678}, 400, "invalid_mykey_id"),
        ({"municipality": "999999"}, 404, "unknown_municipality"),
        ({"municipality": 11002}, 400, "invalid_input"),
        ({"reference": ""}, 400, "invalid_reference"),
        ({"reference": "x" * 65}, 400, "invalid_reference"),
        ({"reference": "with space"}, 400, "invalid_reference"),
        ({"extra": 1}, 400, "unknown_field"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(
    client: FlaskClient, world: City, s: Session, changes: dict[str, Any], status: int, code: str
) -> None:
    before = state(s)
    response = client.post(URL, json=body(**changes), headers=auth(world.api_key))
    assert response.status_code == status, response.json
    assert response.json is not None
    error = response.json["error"]
    assert error["code"] == code and error["message"] and error["message_ja"]
    assert "Traceback" not in response.get_data(as_text=True)
    assert state(s) == before


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        (b"{not json", "application/json"),
        (b'{"partner_points": NaN}', "application/json"),
        (b'{"partner_points": 1' + b"0" * 5000 + b"}", "application/json"),
        (json.dumps(body()).encode(), "text/plain"),
        (b"[]", "application/json"),
        (b'{"municipality": "011002"}', "application/json"),
        (b"x" * 20_000, "application/json"),
    ],
)
def test_malformed_bodies(
    client: FlaskClient, world: City, s: Session, raw: bytes, content_type: str
) -> None:
    before = state(s)
    response = client.post(URL, data=raw, content_type=content_type, headers=auth(world.api_key))
    assert response.status_code == 400 and response.json is not None
    assert response.json["error"]["code"] in {"invalid_input", "missing_field"}
    assert state(s) == before


def test_credentials_and_rotation(client: FlaskClient, world: City, s: Session) -> None:
    before = state(s)
    wrong = world.api_key[:-4] + ("AAAA" if not world.api_key.endswith("AAAA") else "BBBB")
    for headers in (
        {},
        {"Authorization": "Basic abc"},
        auth("ick_0000000000000000_" + "A" * 43),
        auth(wrong),
        auth("nonsense"),
    ):
        response = client.post(URL, json=body(), headers=headers)
        assert response.status_code == 401 and response.json is not None
        assert response.json["error"]["code"] == "unauthorized"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert state(s) == before
    new_key = partners.issue_key(s, world.partner.id)  # rotation: two keys live
    assert client.post(URL, json=body(reference="A"), headers=auth(new_key)).status_code == 201
    assert (
        client.post(URL, json=body(reference="B"), headers=auth(world.api_key)).status_code == 201
    )
    with pytest.raises(partners.Refused):
        partners.issue_key(s, world.partner.id)
    old_id = world.api_key.split("_")[1]
    partners.revoke_key(s, old_id)
    response = client.post(URL, json=body(reference="C"), headers=auth(world.api_key))
    assert response.status_code == 401
    assert client.get(f"{URL}/A", headers=auth(new_key)).status_code == 200


def test_replay_with_changed_payload_is_a_conflict(
    client: FlaskClient, world: City, s: Session
) -> None:
    assert client.post(URL, json=body(), headers=auth(world.api_key)).status_code == 201
    before = state(s)
    response = client.post(URL, json=body(partner_points=2000), headers=auth(world.api_key))
    assert response.status_code == 409 and response.json is not None
    assert response.json["error"]["code"] == "idempotency_conflict"
    assert state(s) == before


def test_other_partners_references_are_not_visible(
    client: FlaskClient, world: City, s: Session
) -> None:
    from webapp.points import admin
    from webapp.points.models import PartnerKind

    assert client.post(URL, json=body(), headers=auth(world.api_key)).status_code == 201
    other = admin.create_partner(s, "CARD1", "テストカード", PartnerKind.CREDIT_CARD)
    key = partners.issue_key(s, other.id)
    assert client.get(f"{URL}/REF-1", headers=auth(key)).status_code == 404
    assert client.post(f"{URL}/REF-1/cancel", headers=auth(key)).status_code == 404
    response = client.post(URL, json=body(), headers=auth(key))
    assert response.status_code == 403 and response.json is not None
    assert response.json["error"]["code"] == "not_accepted"
    assert client.delete(URL, headers=auth(key)).status_code == 405


def test_a_capped_bonus_says_what_was_paid_and_what_was_asked(
    client: FlaskClient, world: City, s: Session
) -> None:
    """The bonus program caps a citizen at 50 points: the conversion still goes through,
    and the answer says the bonus paid next to the bonus the terms give; retries and
    look-ups say the same."""
    from datetime import UTC, datetime

    from webapp.points import admin, programs
    from webapp.points.models import ProgramCategory

    t0 = datetime(2025, 4, 1, 9, 0, tzinfo=UTC)
    capped = programs.create_program(
        s, world.muni.id, "CAPPED", "上乗せ(上限50)", ProgramCategory.PARTNER_BONUS,
        points_per_grant=1, expiry_days=365, budget=100_000, cap_points_per_citizen=50, now=t0,
    )  # fmt: skip
    admin.set_terms(
        s, world.muni.id, world.partner.id, bonus_bp=1000, min_unit=100, hold_days=14,
        bonus_program_id=capped.id, now=t0,
    )  # fmt: skip
    answers = []
    for ref in ("REF-1", "REF-2"):
        response = client.post(URL, json=body(reference=ref), headers=auth(world.api_key))
        assert response.status_code == 201 and response.json is not None
        answers.append(response.json["conversion"])
    picked = [
        {k: a[k] for k in ("base_points", "bonus_points", "bonus_asked", "points", "status")}
        for a in answers
    ]
    assert picked == [
        {"base_points": 1000, "bonus_points": 50, "bonus_asked": 100, "points": 1050,
         "status": "pending"},
        {"base_points": 1000, "bonus_points": 0, "bonus_asked": 100, "points": 1000,
         "status": "pending"},
    ]  # fmt: skip
    again = client.post(URL, json=body(reference="REF-1"), headers=auth(world.api_key))
    assert again.status_code == 200 and again.json is not None
    assert again.json["conversion"] == {**answers[0], "replayed": True}
    shown = client.get(f"{URL}/REF-2", headers=auth(world.api_key))
    assert shown.status_code == 200 and shown.json is not None
    assert shown.json["conversion"] == answers[1]
