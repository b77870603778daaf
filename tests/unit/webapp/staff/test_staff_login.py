"""Staff sign-in: passwords, unknown users, rate limit, CSRF, sessions."""

from __future__ import annotations

from typing import Any, Literal

import pytest
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from webapp.staff import services
from webapp.staff.models import Role
from webapp.throttle import storage_uri

PASSWORD = "correct horse battery"


def test_right_password_signs_in(client: FlaskClient, make_staff: Any, sign_in: Any) -> None:
    make_staff("clerk")
    r = sign_in(client, "Clerk ")
    assert r.status_code == 302 and r.headers["Location"] == "/staff/"
    assert "clerk" in client.get("/staff/").get_data(as_text=True)


def test_admin_lands_on_the_staff_home(client: FlaskClient, make_staff: Any, sign_in: Any) -> None:
    make_staff("root", Role.PLATFORM_ADMIN, None)
    r = sign_in(client, "root")
    assert r.headers["Location"] == "/staff/"  # every role's work, one click away


@pytest.mark.parametrize(
    ("login", "password"), [("clerk", "wrong password!"), ("nobody", PASSWORD)]
)
def test_wrong_password_and_unknown_user_look_the_same(
    client: FlaskClient, make_staff: Any, login: str, password: str, sign_in: Any
) -> None:
    make_staff("clerk")
    r = sign_in(client, login, password, headers={"Accept-Language": "en"})
    assert r.status_code == 200
    assert "The login or password is not correct." in r.get_data(as_text=True)
    assert client.get("/staff/").status_code == 302


def test_disabled_account_cannot_sign_in(
    client: FlaskClient, make_staff: Any, s: Session, sign_in: Any
) -> None:
    user = make_staff("clerk")
    services.set_active(s, user, False)
    assert sign_in(client, "clerk").status_code == 200


def test_unknown_login_still_verifies_a_hash(s: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    class Spy(PasswordHasher):
        def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
            calls.append(str(hash))
            return super().verify(hash, password)

    monkeypatch.setattr(services, "_hasher", Spy())
    with pytest.raises(services.InvalidCredentials):
        services.authenticate(s, "ghost", "whatever")
    assert calls == [services._dummy_hash()]


def test_password_is_stored_as_argon2id(make_staff: Any) -> None:
    user = make_staff("clerk")
    assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash


def test_rate_limit_per_login_then_429(
    app: Flask, client: FlaskClient, make_staff: Any, sign_in: Any
) -> None:
    make_staff("clerk")
    for _ in range(5):
        assert sign_in(client, "clerk", "wrong password!").status_code == 200
    r = sign_in(client, "clerk", headers={"Accept-Language": "en"})  # right password, too late
    assert r.status_code == 429
    assert 0 < int(r.headers["Retry-After"]) <= 15 * 60
    assert "Too many failed sign-in attempts. Please try again in 15 minutes." in r.text
    assert client.get("/staff/").status_code == 302
    japanese = sign_in(client, "clerk")
    assert japanese.status_code == 429 and "15分後にもう一度" in japanese.text
    # The person it belongs to, elsewhere, still signs in.
    elsewhere = sign_in(app.test_client(), "clerk", environ_base={"REMOTE_ADDR": "192.0.2.44"})
    assert elsewhere.status_code == 302
    # Another login from the same IP is still allowed (the IP limit is higher).
    make_staff("other")
    assert sign_in(client, "other").status_code == 302


def test_rate_limit_per_ip(
    app: Flask, client: FlaskClient, make_staff: Any, sign_in: Any, csrf_token: Any
) -> None:
    make_staff("clerk")
    for i in range(20):
        sign_in(client, f"spray{i}", "wrong password!")
    assert sign_in(client, "clerk").status_code == 429
    other_ip = {"REMOTE_ADDR": "192.0.2.7"}
    page = client.get("/staff/login")
    token = csrf_token(page.get_data(as_text=True))
    r = client.post(
        "/staff/login",
        data={"login": "clerk", "password": PASSWORD, "csrf_token": token},
        environ_base=other_ip,
    )
    assert r.status_code == 302


def test_success_clears_the_login_count(
    client: FlaskClient, make_staff: Any, sign_in: Any, csrf_token: Any
) -> None:
    make_staff("clerk")
    for _ in range(4):
        sign_in(client, "clerk", "wrong password!")
    assert sign_in(client, "clerk").status_code == 302
    client.post(
        "/staff/logout",
        data={"csrf_token": csrf_token(client.get("/staff/").get_data(as_text=True))},
    )
    for _ in range(4):
        assert sign_in(client, "clerk", "wrong password!").status_code == 200


def test_throttle_storage_follows_the_bus() -> None:
    assert storage_uri("redis://bus:6379/0") == "redis://bus:6379/0"
    assert storage_uri("memory://") == "memory://"
    assert storage_uri(None) == "memory://"


def test_post_without_csrf_token_is_refused(client: FlaskClient, make_staff: Any) -> None:
    make_staff("clerk")
    r = client.post("/staff/login", data={"login": "clerk", "password": PASSWORD})
    assert r.status_code == 400
    body = r.get_data(as_text=True)
    assert "画面の有効期限が切れました" in body and "This page has expired" in body
    assert client.get("/staff/").status_code == 302


def test_logout_needs_post_and_token(
    client: FlaskClient, make_staff: Any, sign_in: Any, csrf_token: Any
) -> None:
    make_staff("clerk")
    sign_in(client, "clerk")
    assert client.get("/staff/logout").status_code == 405
    assert client.post("/staff/logout").status_code == 400
    token = csrf_token(client.get("/staff/").get_data(as_text=True))
    assert client.post("/staff/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/staff/").status_code == 302


def test_session_cookie_flags(
    app: Flask, client: FlaskClient, make_staff: Any, sign_in: Any
) -> None:
    make_staff("clerk")
    r = sign_in(client, "clerk")
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # loopback origin in tests
    assert app.config["SESSION_COOKIE_SECURE"] is False


def test_secure_cookie_off_loopback(tmp_path: Any) -> None:
    from webapp import create_app, staff

    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
            "SECRET_KEY": "t",
            "PLATFORM_ORIGIN": "https://ichimai.example.jp",
        }
    )
    if "staff" not in app.blueprints:  # until create_app wires it
        staff.init_app(app)
    assert app.config["SESSION_COOKIE_SECURE"] is True


def test_next_parameter_only_local(client: FlaskClient, make_staff: Any, csrf_token: Any) -> None:
    make_staff("clerk")
    page = client.get("/staff/login?next=//evil.example/")
    token = csrf_token(page.get_data(as_text=True))
    r = client.post(
        "/staff/login?next=//evil.example/",
        data={"login": "clerk", "password": PASSWORD, "csrf_token": token},
    )
    assert r.headers["Location"] == "/staff/"


def test_password_change_ends_other_sessions(
    app: Flask, make_staff: Any, sign_in: Any, csrf_token: Any
) -> None:
    make_staff("clerk")
    first, second = app.test_client(), app.test_client()
    sign_in(first, "clerk")
    sign_in(second, "clerk")
    token = csrf_token(first.get("/staff/password").get_data(as_text=True))
    r = first.post(
        "/staff/password",
        data={
            "current": PASSWORD,
            "new": "a brand new passphrase",
            "confirm": "a brand new passphrase",
            "csrf_token": token,
        },
    )
    assert r.status_code == 302
    assert first.get("/staff/").status_code == 200
    assert second.get("/staff/").status_code == 302


def test_create_staff_rules(s: Session, make_staff: Any) -> None:
    with pytest.raises(services.StaffError):
        services.create_staff(s, "x", PASSWORD, Role.COUNTER_STAFF, None)
    with pytest.raises(services.StaffError):
        services.create_staff(s, "nopass", "short", Role.PLATFORM_ADMIN)
    with pytest.raises(services.StaffError):
        services.create_staff(s, "orphan", PASSWORD, Role.COUNTER_STAFF, None)
    make_staff("dup")
    with pytest.raises(services.StaffError) as info:
        services.create_staff(s, "DUP", PASSWORD, Role.PLATFORM_ADMIN)
    assert info.value.field == "login"
    admin = services.create_staff(s, "boss", PASSWORD, Role.PLATFORM_ADMIN, 12345)
    assert admin.provider_id is None


def test_cli_create_admin(app: Flask, monkeypatch: pytest.MonkeyPatch, s: Session) -> None:
    monkeypatch.setenv("ICHIMAI_ADMIN_PASSWORD", PASSWORD)
    result = app.test_cli_runner().invoke(args=["staff", "create-admin", "Root"])
    assert result.exit_code == 0, result.output
    assert "created platform admin root" in result.output
    assert services.authenticate(s, "root", PASSWORD).role == Role.PLATFORM_ADMIN
    again = app.test_cli_runner().invoke(args=["staff", "create-admin", "root"])
    assert again.exit_code != 0 and "already in use" in again.output
