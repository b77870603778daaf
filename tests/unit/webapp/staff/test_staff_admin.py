"""Roles and the admin area: who reaches what, provider and staff management through forms."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.providers import services as provider_services
from webapp.providers.models import Provider, ProviderKind
from webapp.staff.models import Role, StaffUser

ADMIN_PAGES = [
    "/admin/",
    "/admin/providers/",
    "/admin/providers/new",
    "/admin/staff",
    "/admin/staff/new",
]


def form_post(client: FlaskClient, csrf_token: Any, url: str, data: dict[str, Any]) -> Any:
    token = csrf_token(client.get(url).get_data(as_text=True))
    return client.post(url, data={**data, "csrf_token": token})


@pytest.mark.parametrize("url", ADMIN_PAGES)
def test_counter_staff_get_403_on_admin_pages(
    client: FlaskClient, make_staff: Any, sign_in: Any, url: str
) -> None:
    make_staff("clerk", Role.COUNTER_STAFF)
    sign_in(client, "clerk")
    r = client.get(url)
    assert r.status_code == 403
    assert "表示する権限がありません" in r.get_data(as_text=True)


@pytest.mark.parametrize("url", ADMIN_PAGES)
def test_anonymous_are_sent_to_sign_in(client: FlaskClient, url: str) -> None:
    r = client.get(url)
    assert r.status_code == 302 and r.headers["Location"].startswith("/staff/login?next=")


def test_json_clients_get_401(client: FlaskClient) -> None:
    r = client.get("/admin/staff", headers={"Accept": "application/json"})
    assert r.status_code == 401 and r.get_json()["error"]["code"] == "unauthorized"


def test_platform_admin_creates_and_edits_a_provider(
    client: FlaskClient, make_staff: Any, sign_in: Any, csrf_token: Any, s: Session
) -> None:
    make_staff("root", Role.PLATFORM_ADMIN, None)
    sign_in(client, "root")
    base = {
        "kind": "library",
        "name_ja": "東図書館",
        "name_en": "East Library",
        "min_length": "8",
        "max_length": "11",
        "charset": "digits",
        "check": "7dr",
        "check_variant": "",
        "start": "A",
        "stop": "A",
        "mode": "B",
        "symbology": "nw7",
        "nw7_start": "A",
        "nw7_stop": "A",
        "barcode_check": "none",
        "barcode_check_variant": "",
        "keyboard_suffix": "enter",
        "terms_ja": "第1条",
        "terms_en": "",
    }
    bad = form_post(client, csrf_token, "/admin/providers/new", {**base, "code": "JP-12"})
    assert bad.status_code == 200 and "7桁" in bad.get_data(as_text=True)
    r = form_post(client, csrf_token, "/admin/providers/new", {**base, "code": "jp-1000002"})
    assert r.status_code == 302
    provider = s.scalar(select(Provider).where(Provider.code == "JP-1000002"))
    assert provider is not None
    assert provider.number_rule["check"] == "7dr" and provider.counter_settings["mode"] == "B"
    listing = client.get("/admin/providers/").get_data(as_text=True)
    assert "JP-1000002" in listing and "東図書館" in listing

    edit_url = f"/admin/providers/{provider.id}"
    assert "東図書館" in client.get(edit_url).get_data(as_text=True)
    r = form_post(client, csrf_token, edit_url, {**base, "mode": "C", "keyboard_suffix": "tab"})
    assert r.status_code == 302
    s.refresh(provider)
    assert provider.counter_settings["keyboard_suffix"] == "tab"

    # Where it is: a wrong check digit is refused at its field, in Japanese; nothing saved.
    place = {**base, "kind": "university_library", "name_kana": "ヒガシトショカン"}
    bad = form_post(client, csrf_token, edit_url, {**place, "municipality_code": "131017"})
    assert bad.status_code == 200 and "検査数字" in bad.get_data(as_text=True)
    assert 'aria-invalid="true"' in bad.get_data(as_text=True)
    s.refresh(provider)
    assert provider.municipality_code == "" and provider.kind == "library"
    good = {**place, "municipality_code": "131016", "municipality_name": "千代田区"}
    assert form_post(client, csrf_token, edit_url, good).status_code == 302
    s.refresh(provider)
    assert (provider.prefecture_code, provider.municipality_code) == ("130001", "131016")
    assert provider.kind == "university_library" and provider.search_name == "ひがしとしょかん"

    terms_url = f"/admin/providers/{provider.id}/terms"
    form_post(client, csrf_token, terms_url, {"terms_ja": "第1条", "terms_en": ""})
    s.refresh(provider)
    assert provider.terms_version == 1
    form_post(client, csrf_token, terms_url, {"terms_ja": "第1条\n第2条", "terms_en": "Art. 1"})
    s.refresh(provider)
    assert provider.terms_version == 2


def test_provider_admin_manages_only_their_provider(
    client: FlaskClient,
    make_staff: Any,
    sign_in: Any,
    csrf_token: Any,
    s: Session,
    provider: Provider,
) -> None:
    other = provider_services.create_provider(
        s, code="museum-9", kind=ProviderKind.MUSEUM, name_ja="市立美術館"
    )
    make_staff("libadmin", Role.PROVIDER_ADMIN)
    sign_in(client, "libadmin")
    listing = client.get("/admin/providers/").get_data(as_text=True)
    assert "JP-1000001" in listing and "museum-9" not in listing
    assert client.get(f"/admin/providers/{provider.id}").status_code == 200
    # Another's provider is out of sight: the same answer as one that does not exist.
    assert client.get(f"/admin/providers/{other.id}").status_code == 404
    assert client.get(f"/admin/providers/{other.id}/terms").status_code == 404
    assert client.get("/admin/providers/new").status_code == 403
    assert client.get("/admin/providers/999").status_code == 404
    # A provider admin edits the reading, not the kind or the place (the platform's call).
    edit = f"/admin/providers/{provider.id}"
    token = csrf_token(client.get(edit).get_data(as_text=True))
    fields = {
        "name_ja": provider.name_ja, "name_kana": "よみ", "kind": "museum",
        "municipality_code": "131016", "municipality_name": "千代田区", "min_length": "1",
        "max_length": "20", "charset": "digits", "check": "none", "mode": "A",
        "symbology": "nw7", "nw7_start": "A", "nw7_stop": "A", "start": "A", "stop": "A",
        "barcode_check": "none", "keyboard_suffix": "enter", "csrf_token": token,
        "check_variant": "", "barcode_check_variant": "",
    }  # fmt: skip
    assert client.post(edit, data=fields).status_code == 302
    s.refresh(provider)
    assert provider.name_kana == "よみ" and provider.kind == ProviderKind.LIBRARY
    assert provider.municipality_code == ""

    r = form_post(
        client,
        csrf_token,
        "/admin/staff/new",
        {
            "login": "clerk2",
            "password": "long enough password",
            "role": "counter_staff",
            "provider_code": provider.code,
        },
    )
    assert r.status_code == 302
    created = s.scalar(select(StaffUser).where(StaffUser.login == "clerk2"))
    assert created is not None and created.provider_id == provider.id
    # Not for another provider, and no admin roles.
    r = form_post(
        client,
        csrf_token,
        "/admin/staff/new",
        {
            "login": "clerk3",
            "password": "long enough password",
            "role": "counter_staff",
            "provider_code": other.code,
        },
    )
    assert r.status_code == 200  # not a valid choice for this admin
    r = form_post(
        client,
        csrf_token,
        "/admin/staff/new",
        {
            "login": "boss2",
            "password": "long enough password",
            "role": "platform_admin",
            "provider_code": provider.code,
        },
    )
    assert r.status_code == 200
    assert s.scalar(select(StaffUser).where(StaffUser.login.in_(["clerk3", "boss2"]))) is None


def test_platform_admin_disables_an_account(
    client: FlaskClient, make_staff: Any, sign_in: Any, csrf_token: Any, s: Session
) -> None:
    make_staff("root", Role.PLATFORM_ADMIN, None)
    clerk = make_staff("clerk")
    sign_in(client, "root")
    page = client.get("/admin/staff").get_data(as_text=True)
    assert "clerk" in page
    token = csrf_token(page)
    assert (
        client.post(f"/admin/staff/{clerk.id}/active", data={"csrf_token": token}).status_code
        == 302
    )
    s.refresh(clerk)
    assert not clerk.active
