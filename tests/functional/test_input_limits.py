"""Bounded input (webapp/inputs): the request size limit, JSON depth, text lengths and
control characters, through the real app on SQLite and on PostgreSQL (where a NUL in a
text column is an error: once a 500 from the unauthenticated sign-in field).

Each refusal is a 4xx with words saying why, and nothing is written.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, text

from tests.support.postgres import PG_URL, server_engine
from webapp import create_app, db
from webapp.inputs import MAX_CONTENT_LENGTH, MAX_JSON_DEPTH, TERMS_LENGTH
from webapp.providers import services as provider_services
from webapp.providers.models import Provider, ProviderKind
from webapp.sessions.models import WebSession
from webapp.staff import services as staff_services
from webapp.staff.models import Role
from webapp.terminals import services as terminal_services
from webapp.terminals.models import Terminal, TerminalKind

PASSWORD = "correct horse battery"
ADMIN_TOKEN = "admin-token-for-tests"
EN = {"Accept-Language": "en"}
CONTROL_MESSAGE = "The input contains a control character"
DEEP = "[" * 50_000 + "]" * 50_000  # 100 KB: over the JSON size bound as well
DEEP_SMALL = "[" * 30_000 + "]" * 30_000  # 60 KB: within 64 KiB, refused for its depth


def _config(url: str) -> dict[str, Any]:
    return {
        "DATABASE_URL": url,
        "SECRET_KEY": "t",
        "TESTING": True,
        "BUS_URL": "memory://",
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "WTF_CSRF_ENABLED": False,
    }


def _seed(app: Flask) -> int:
    with app.app_context(), db.new_session() as s:
        staff_services.create_staff(s, "root", PASSWORD, Role.PLATFORM_ADMIN)
        provider = provider_services.create_provider(
            s,
            code="JP-1000001",
            kind=ProviderKind.LIBRARY,
            name_ja="中央図書館",
            name_en="Central Library",
            terms_ja="利用規約",
        )
        return provider.id


@pytest.fixture(params=["sqlite", "postgresql"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    """The whole app on a fresh SQLite file, or in a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        made = create_app(_config(f"sqlite:///{tmp_path / 'test.db'}"))
        db.create_all(made)
        made.config["TEST_PROVIDER_ID"] = _seed(made)
        yield made
        return
    with server_engine() as server:
        schema = f"inputs_t_{uuid.uuid4().hex[:12]}"
        with server.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        sep = "&" if "?" in PG_URL else "?"
        made = create_app(_config(f"{PG_URL}{sep}options=-csearch_path%3D{schema}"))
        try:
            db.create_all(made)
            made.config["TEST_PROVIDER_ID"] = _seed(made)
            yield made
        finally:
            made.extensions["db_engine"].dispose()
            with server.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def _count(app: Flask, what: Any) -> int:
    with app.app_context(), db.new_session() as s:
        return int(s.scalar(select(func.count()).select_from(what)) or 0)


def _provider(app: Flask) -> Provider:
    with app.app_context(), db.new_session() as s:
        found = s.get(Provider, app.config["TEST_PROVIDER_ID"])
        assert found is not None
        s.expunge(found)
        return found


def _sign_in(client: FlaskClient) -> None:
    answer = client.post("/staff/login", data={"login": "root", "password": PASSWORD})
    assert answer.status_code == 302, answer.get_data(as_text=True)


class Endless(io.RawIOBase):
    """A request body that never ends; counts what the server reads of it."""

    def __init__(self) -> None:
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0  # the test client rewinds a body it has not read

    def readinto(self, buffer: Any) -> int:
        self.read_bytes += len(buffer)
        buffer[:] = b" " * len(buffer)
        return len(buffer)


# -- size ------------------------------------------------------------------------------


@pytest.mark.parametrize("app", ["sqlite"], indirect=True)
def test_a_200_mb_body_to_pairing_is_refused_without_reading_it(client: FlaskClient) -> None:
    body = Endless()
    answer = client.post(
        "/api/v1/bridges/pair",
        input_stream=body,
        content_type="application/json",
        environ_overrides={"CONTENT_LENGTH": str(200 * 1024 * 1024)},
    )
    assert answer.status_code == 413
    assert answer.get_json()["error"]["code"] == "request_entity_too_large"
    assert body.read_bytes == 0


@pytest.mark.parametrize("app", ["sqlite"], indirect=True)
def test_the_grant_csv_upload_may_be_larger_than_other_requests(client: FlaskClient) -> None:
    size = MAX_CONTENT_LENGTH + 512 * 1024
    body = b"x" * size
    # Any other form: 413 before the view.
    assert client.post("/staff/login", data=body, content_type="text/plain").status_code == 413
    # The grant upload: past the size check (to the sign-in the view asks for).
    answer = client.post("/points/grants/csv", data=body, content_type="text/plain")
    assert answer.status_code == 302 and "/staff/login" in answer.headers["Location"]


# -- JSON depth ------------------------------------------------------------------------


@pytest.mark.parametrize("app", ["sqlite"], indirect=True)
@pytest.mark.parametrize("body", [DEEP, DEEP_SMALL, "[" * (MAX_JSON_DEPTH + 1)])
def test_deep_json_to_pairing_is_a_400_not_a_500(client: FlaskClient, body: str) -> None:
    answer = client.post("/api/v1/bridges/pair", data=body, content_type="application/json")
    assert answer.status_code in (400, 413), answer.get_data(as_text=True)
    error = answer.get_json()["error"]
    assert error["code"] == "input_refused" and error["message"]


@pytest.mark.parametrize("app", ["sqlite"], indirect=True)
def test_deep_json_to_the_admin_api_is_a_400(app: Flask, client: FlaskClient) -> None:
    answer = client.post(
        "/api/v1/admin/terminals",
        data=DEEP_SMALL,
        content_type="application/json",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}", **EN},
    )
    assert answer.status_code == 400
    assert answer.get_json()["error"]["message"] == "The request is nested too deeply."
    assert _count(app, Terminal) == 0


@pytest.mark.parametrize("app", ["sqlite"], indirect=True)
def test_deep_json_to_a_card_flow_is_a_400(app: Flask, client: FlaskClient) -> None:
    with app.app_context(), db.new_session() as s:
        kiosk = terminal_services.create_terminal(
            s, app.config["TEST_PROVIDER_ID"], TerminalKind.KIOSK, "キオスク"
        ).id
    with client.session_transaction() as session:
        session["terminal_id"] = kiosk
        session["terminal_kind"] = TerminalKind.KIOSK
    answer = client.post("/flow/begin", data=DEEP_SMALL, content_type="application/json")
    assert answer.status_code == 400
    assert answer.get_json()["error"]["code"] == "input_refused"
    # The pages name every request's body JSON, a GET's absent one too: no body, no refusal.
    empty = client.post("/flow/begin", data=b"", content_type="application/json")
    assert empty.get_json()["error"]["code"] == "unknown_purpose"


# -- text: NUL and other control characters, lengths ------------------------------------


def test_a_nul_in_the_sign_in_field_is_refused(app: Flask, client: FlaskClient) -> None:
    before = _count(app, WebSession)
    answer = client.post(
        "/staff/login", data={"login": "ro\x00ot", "password": PASSWORD}, headers=EN
    )
    assert answer.status_code == 400
    assert CONTROL_MESSAGE in answer.get_data(as_text=True)
    assert _count(app, WebSession) == before  # nobody signed in, no session made


def test_a_nul_in_a_provider_name_is_refused(app: Flask, client: FlaskClient) -> None:
    _sign_in(client)
    provider = _provider(app)
    answer = client.post(
        f"/admin/providers/{provider.id}",
        data={"name_ja": "中央\x00図書館", "name_en": "Central"},
        headers=EN,
    )
    assert answer.status_code == 400
    assert CONTROL_MESSAGE in answer.get_data(as_text=True)
    assert _provider(app).name_ja == "中央図書館"


@pytest.mark.parametrize("character", ["\x00", "\x1b", "\x7f", "\x85"])
def test_a_control_character_in_the_terms_is_refused(
    app: Flask, client: FlaskClient, character: str
) -> None:
    _sign_in(client)
    provider = _provider(app)
    answer = client.post(
        f"/admin/providers/{provider.id}/terms",
        data={"terms_ja": f"第1条{character}", "terms_en": ""},
        headers=EN,
    )
    assert answer.status_code == 400
    assert CONTROL_MESSAGE in answer.get_data(as_text=True)
    after = _provider(app)
    assert (after.terms_ja, after.terms_version) == (provider.terms_ja, provider.terms_version)


def test_terms_longer_than_the_limit_are_refused(app: Flask, client: FlaskClient) -> None:
    _sign_in(client)
    provider = _provider(app)
    answer = client.post(
        f"/admin/providers/{provider.id}/terms",
        data={"terms_ja": "規" * (TERMS_LENGTH + 1), "terms_en": ""},
        headers=EN,
    )
    assert f"At most {TERMS_LENGTH} characters." in answer.get_data(as_text=True)
    after = _provider(app)
    assert (after.terms_ja, after.terms_version) == (provider.terms_ja, provider.terms_version)


def test_terms_at_the_limit_with_line_breaks_are_saved(app: Flask, client: FlaskClient) -> None:
    _sign_in(client)
    provider = _provider(app)
    terms = ("第1条\n\t本規約は" * TERMS_LENGTH)[:TERMS_LENGTH]
    answer = client.post(
        f"/admin/providers/{provider.id}/terms", data={"terms_ja": terms, "terms_en": ""}
    )
    assert answer.status_code == 302
    assert _provider(app).terms_ja == terms


def test_a_nul_in_a_terminal_name_from_the_api_is_refused(app: Flask, client: FlaskClient) -> None:
    answer = client.post(
        "/api/v1/admin/terminals",
        json={
            "provider_id": app.config["TEST_PROVIDER_ID"],
            "kind": "counter",
            "name": "カウンター\x00",
        },
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}", **EN},
    )
    assert answer.status_code == 400
    error = answer.get_json()["error"]
    assert error["reason"] == "control_character" and CONTROL_MESSAGE in error["message"]
    assert _count(app, Terminal) == 0


def test_a_nul_in_the_query_string_is_refused(client: FlaskClient) -> None:
    answer = client.get("/staff/login?lang=en&next=/staff/%00", headers=EN)
    assert answer.status_code == 400
    assert CONTROL_MESSAGE in answer.get_data(as_text=True)
