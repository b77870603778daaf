"""Every kind of response carries the security headers (webapp/headers.py): pages, error
pages, redirects, JSON APIs, static files, refusals of bounded input; HSTS only over
HTTPS, and plain HTTP is never redirected (the embedded demo and the tests use it)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from webapp import create_app, db

POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self'",
    "font-src": "'self'",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    made = create_app(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'test.db'}",
            "SECRET_KEY": "t",
            "TESTING": True,
            "BUS_URL": "memory://",
            "PROXY_HOPS": 1,
        }
    )
    db.create_all(made)
    yield made


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def policy(response: TestResponse) -> dict[str, str]:
    """The Content-Security-Policy header as {directive: sources}."""
    header = response.headers.get("Content-Security-Policy", "")
    parts = (p.strip().split(" ", 1) for p in header.split(";") if p.strip())
    return {name: rest for name, rest in parts}


def assert_headers(response: TestResponse) -> None:
    assert policy(response) == POLICY
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"


REQUESTS = [
    ("GET", "/staff/login", 200),  # a page
    ("GET", "/home/", 200),  # the citizen's page, no sign-in
    ("GET", "/staff/", 302),  # a redirect to sign in
    ("GET", "/no/such/page", 404),  # an error page
    ("GET", "/api/v1/partners/municipalities", 401),  # a JSON API refusal
    ("GET", "/healthz", 200),  # JSON
    ("GET", "/static/css/app.css", 200),  # a static file
    ("GET", "/staff/login?next=%00", 400),  # bounded input refused (page)
    ("POST", "/api/v1/bridges/pair", 413),  # bounded input refused (too large)
]


@pytest.mark.parametrize(("method", "path", "status"), REQUESTS)
def test_every_kind_of_response_carries_the_headers(
    client: FlaskClient, method: str, path: str, status: int
) -> None:
    data = b"x" * (2 * 1024 * 1024) if method == "POST" else None
    response = client.open(path, method=method, data=data, content_type="application/json")
    response.close()
    assert response.status_code == status
    assert_headers(response)
    assert "Strict-Transport-Security" not in response.headers  # plain HTTP


@pytest.mark.parametrize(("method", "path", "status"), REQUESTS[:4])
def test_https_adds_hsts(client: FlaskClient, method: str, path: str, status: int) -> None:
    response = client.open(path, method=method, base_url="https://platform.example.jp")
    response.close()
    assert response.status_code == status
    assert_headers(response)
    assert response.headers["Strict-Transport-Security"] == "max-age=31556926"


def test_https_behind_the_proxy_adds_hsts(client: FlaskClient) -> None:
    response = client.get("/staff/login", headers={"X-Forwarded-Proto": "https"})
    assert response.headers["Strict-Transport-Security"] == "max-age=31556926"


def test_plain_http_is_never_redirected(client: FlaskClient) -> None:
    response = client.get("/staff/login")
    assert response.status_code == 200  # no redirect to https://


# A style attribute, an on* handler, a <script> that is neither a file nor a JSON block.
INLINE = (r'\sstyle="', r"\son[a-z]+=", r'<script(?![^>]*\b(src=|type="application/json"))')


def test_no_template_has_inline_script_style_or_handlers() -> None:
    """What the policy refuses never ships: a data block (type=application/json) is
    allowed, as it is never run."""

    root = Path(__file__).resolve().parents[3] / "templates"
    found = []
    for path in root.rglob("*.html"):
        text = path.read_text()
        for pattern in (
            r'\sstyle="',
            r"\son[a-z]+=",
            r"<script(?![^>]*\b(src|type=\"application/json\"))",
        ):
            found += [f"{path.relative_to(root)}: {m.group()}" for m in re.finditer(pattern, text)]
    assert not found
