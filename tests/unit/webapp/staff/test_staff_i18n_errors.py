"""Languages (ja default, ?lang= toggle) and friendly error pages without tracebacks."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from flask import Blueprint, Flask, abort, jsonify
from flask.testing import FlaskClient

from webapp.staff import csrf_exempt

ROOT = Path(__file__).resolve().parents[4]
CATALOG = ROOT / "webapp" / "translations" / "ja" / "LC_MESSAGES"


def test_japanese_by_default(client: FlaskClient) -> None:
    body = client.get("/staff/login").get_data(as_text=True)
    assert '<html lang="ja">' in body and "職員サインイン" in body and "本文へ移動" in body


def test_accept_language_english(client: FlaskClient) -> None:
    body = client.get("/staff/login", headers={"Accept-Language": "en-US,en;q=0.9"}).get_data(
        as_text=True
    )
    assert '<html lang="en">' in body and "Staff sign-in" in body


def test_lang_toggle_persists_in_the_session(client: FlaskClient) -> None:
    headers = {"Accept-Language": "ja"}
    assert "Staff sign-in" in client.get("/staff/login?lang=en", headers=headers).get_data(
        as_text=True
    )
    body = client.get("/staff/login", headers=headers).get_data(as_text=True)
    assert '<html lang="en">' in body and "Staff sign-in" in body
    assert 'href="/staff/login?lang=ja"' in body and 'aria-current="true">English' in body
    client.get("/staff/login?lang=ja")
    assert "職員サインイン" in client.get("/staff/login").get_data(as_text=True)


def test_unknown_lang_is_ignored(client: FlaskClient) -> None:
    assert '<html lang="ja">' in client.get("/staff/login?lang=fr").get_data(as_text=True)


def test_mo_matches_po_and_everything_is_translated() -> None:
    with open(CATALOG / "messages.po", "rb") as f:
        po = read_po(f, locale="ja")
    with open(CATALOG / "messages.mo", "rb") as f:
        mo = read_mo(f)
    po_strings = {m.id: m.string for m in po if m.id}
    mo_strings = {m.id: m.string for m in mo if m.id}
    assert mo_strings == po_strings, "run: pybabel compile -d webapp/translations"
    assert all(po_strings.values()), [k for k, v in po_strings.items() if not v]


def test_every_marked_string_is_in_the_catalog() -> None:
    with open(CATALOG / "messages.po", "rb") as f:
        known = {m.id for m in read_po(f, locale="ja") if m.id}
    method_map = [("webapp/**.py", "python"), ("templates/**.html", "jinja2")]
    keywords = {"_": None, "gettext": None, "_l": None, "lazy_gettext": None}
    found = {
        msgid
        for _file, _line, msgid, _comments, _ctx in extract_from_dir(
            str(ROOT), method_map, keywords=keywords
        )
        if isinstance(msgid, str)
    }
    assert not found - known, "run pybabel extract/update, then translate"


def _error_app(app: Flask) -> Flask:
    bp = Blueprint("boom", __name__)

    @bp.get("/boom")
    def boom() -> str:
        raise RuntimeError("secret detail in a traceback")

    @bp.get("/slow-down")
    def slow_down() -> str:
        abort(429)

    @bp.get("/maintenance")
    def maintenance() -> str:
        abort(503)

    @bp.get("/api/missing")
    def api_missing() -> str:
        abort(404)

    app.register_blueprint(bp)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    return app


def test_500_page_has_no_traceback(app: Flask) -> None:
    client = _error_app(app).test_client()
    r = client.get("/boom")
    body = r.get_data(as_text=True)
    assert r.status_code == 500
    assert "問題が発生しました" in body and "Something went wrong" in body
    assert "Traceback" not in body and "secret detail" not in body and "RuntimeError" not in body


def test_404_403_429_pages_are_bilingual(app: Flask) -> None:
    client = _error_app(app).test_client()
    r404 = client.get("/nowhere", headers={"Accept-Language": "en"})
    body = r404.get_data(as_text=True)
    assert r404.status_code == 404 and '<html lang="en">' in body
    assert body.index("Page not found") < body.index("ページが見つかりません")
    r429 = client.get("/slow-down")
    assert r429.status_code == 429 and "しばらくお待ちください" in r429.get_data(as_text=True)
    r401 = client.get("/admin/staff", headers={"Accept": "application/json"})
    assert r401.status_code == 401 and r401.get_json()["error"]["code"] == "unauthorized"


def test_other_codes_borrow_the_nearest_page(app: Flask) -> None:
    client = _error_app(app).test_client()
    r = client.get("/maintenance")
    assert r.status_code == 503 and "問題が発生しました" in r.get_data(as_text=True)
    r = client.put("/staff/login")
    assert r.status_code == 405 and "リクエストを処理できませんでした" in r.get_data(as_text=True)


def test_api_errors_are_json(app: Flask) -> None:
    client = _error_app(app).test_client()
    r = client.get("/api/missing")
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "not_found"


def test_csrf_exempt_blueprint_for_json_apis(app: Flask) -> None:
    api = Blueprint("partner_api", __name__, url_prefix="/api/partner")

    @api.post("/ping")
    def ping() -> object:
        return jsonify(ok=True)

    guarded = Blueprint("guarded", __name__)

    @guarded.post("/form")
    def form() -> str:
        return "ok"

    csrf_exempt(api)
    app.register_blueprint(api)
    app.register_blueprint(guarded)
    client = app.test_client()
    assert client.post("/api/partner/ping", json={}).get_json() == {"ok": True}
    assert client.post("/form", data={}).status_code == 400


def test_page_layout_landmarks(client: FlaskClient) -> None:
    body = client.get("/staff/login").get_data(as_text=True)
    assert 'class="skip-link" href="#main"' in body and '<main id="main"' in body
    assert "css/app.css" in body and '<meta name="csrf-token"' in body
