"""The JSON admin API creates shop tills with their merchant (`merchant_id`), and refuses
a till without one, a merchant on a counter, an unknown merchant or a non-integer id,
writing nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from webapp import db
from webapp.points.demo import build_city
from webapp.providers.models import Provider
from webapp.terminals.models import Terminal
from webapp.terminals.testing import ADMIN_TOKEN, LivePlatform, build_app

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
URL = "/api/v1/admin/terminals"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    app = build_app(f"sqlite:///{tmp_path / 't.db'}")
    yield app
    app.extensions["bus"].close()


@pytest.fixture
def ids(app: Flask) -> tuple[int, int]:
    """(provider id, museum merchant id)"""
    with app.app_context(), db.new_session() as s:
        provider = Provider(code="JP-1000001", kind="museum", name_ja="美術館")
        s.add(provider)
        city = build_city(s)
        s.commit()
        return provider.id, city.museum.id


def count(app: Flask) -> int:
    with app.app_context(), db.new_session() as s:
        return int(s.scalar(select(func.count()).select_from(Terminal)) or 0)


def post(app: Flask, body: Any) -> tuple[int, Any]:
    answer = app.test_client().post(URL, json=body, headers=AUTH)
    return answer.status_code, answer.get_json()


def test_a_till_is_created_with_its_merchant(app: Flask, ids: tuple[int, int]) -> None:
    provider, museum = ids
    status, body = post(
        app, {"provider_id": provider, "kind": "merchant", "name": "Till", "merchant_id": museum}
    )
    assert status == 201, body
    assert body == {
        "id": body["id"],
        "provider_id": provider,
        "kind": "merchant",
        "name": "Till",
        "merchant_id": museum,
    }
    shown = app.test_client().get(f"{URL}/{body['id']}", headers=AUTH).get_json()
    assert shown["merchant_id"] == museum


@pytest.mark.parametrize("merchant_id", [None, "absent"])
def test_a_counter_has_no_merchant(app: Flask, ids: tuple[int, int], merchant_id: Any) -> None:
    body: dict[str, Any] = {"provider_id": ids[0], "kind": "counter", "name": "Desk"}
    if merchant_id != "absent":
        body["merchant_id"] = merchant_id  # JSON null: the same as absent
    status, made = post(app, body)
    assert status == 201, made
    assert made["merchant_id"] is None


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"kind": "merchant"}, "merchant_required"),
        ({"kind": "merchant", "merchant_id": None}, "merchant_required"),
        ({"kind": "counter", "merchant_id": "MUSEUM"}, "merchant_not_allowed"),
        ({"kind": "kiosk", "merchant_id": "MUSEUM"}, "merchant_not_allowed"),
        ({"kind": "merchant", "merchant_id": 999_999}, "unknown_merchant"),
        ({"kind": "merchant", "merchant_id": "1"}, "invalid_request"),
        ({"kind": "merchant", "merchant_id": 1.0}, "invalid_request"),
        ({"kind": "merchant", "merchant_id": True}, "invalid_request"),
        ({"kind": "merchant", "merchant_id": [1]}, "invalid_request"),
        ({"kind": "counter", "merchant_id": "x"}, "invalid_request"),
    ],
)
def test_a_bad_merchant_is_refused_and_writes_nothing(
    app: Flask, ids: tuple[int, int], body: dict[str, Any], code: str
) -> None:
    provider, museum = ids
    if body.get("merchant_id") == "MUSEUM":
        body = {**body, "merchant_id": museum}
    status, answer = post(app, {"provider_id": provider, "name": "Till", **body})
    assert status == 400
    assert answer["error"]["code"] == code
    assert answer["error"]["message"]
    assert count(app) == 0


def test_the_live_platform_makes_a_till(tmp_path: Path) -> None:
    with LivePlatform(tmp_path) as platform:
        with platform.app.app_context(), db.new_session() as s:
            museum = build_city(s).museum.id
            s.commit()
        till = platform.terminal("Till", kind="merchant", merchant_id=museum)
        status, body = platform.admin("GET", f"{URL}/{till}")
        assert status == 200 and body["merchant_id"] == museum
        counter = platform.terminal()
        assert platform.admin("GET", f"{URL}/{counter}")[1]["merchant_id"] is None
