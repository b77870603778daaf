"""Renewed cards to check (/admin/identity/conflicts): platform admins only, counts only,
a pair leaves the list when marked as dealt with (and only through the form's POST)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from webapp.identity import services as identity
from webapp.identity.models import RebindConflict
from webapp.providers.models import Provider
from webapp.staff.models import Role

END = datetime(2031, 3, 31, tzinfo=UTC)


def conflict(s: Session, provider: Provider) -> RebindConflict:
    old, _ = identity.open_or_create(s, bytes(range(32)), END)
    new, _ = identity.open_or_create(s, bytes(range(1, 33)), END)
    identity.link(s, old.id, provider, "12345678", provider.terms_version)
    identity.link(s, new.id, provider, "87654321", provider.terms_version)
    row = RebindConflict(old_mykey_id=old.id, new_mykey_id=new.id)
    s.add(row)
    s.commit()
    return row


def test_a_platform_admin_sees_the_pair_and_marks_it_dealt_with(
    client: FlaskClient, s: Session, provider: Provider, make_staff: Any, sign_in: Any,
    csrf_token: Any,
) -> None:  # fmt: skip
    row = conflict(s, provider)
    make_staff("root", Role.PLATFORM_ADMIN, None)
    sign_in(client, "root")
    page = client.get("/admin/identity/conflicts")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert row.old_mykey_id in html and row.new_mykey_id in html
    assert "12345678" not in html  # counts only, never a number
    assert html.count("登録1件、0ポイント、カード1枚") == 2  # each side of the pair
    assert client.get("/staff/").get_data(as_text=True).count("/admin/identity/conflicts")
    no_token = client.post(f"/admin/identity/conflicts/{row.id}/done")
    assert no_token.status_code == 400
    done = client.post(
        f"/admin/identity/conflicts/{row.id}/done", data={"csrf_token": csrf_token(html)}
    )
    assert done.status_code == 302
    assert s.scalar(select(func.count()).select_from(RebindConflict)) == 0
    again = client.post(
        f"/admin/identity/conflicts/{row.id}/done", data={"csrf_token": csrf_token(html)}
    )
    assert again.status_code == 404


def test_other_roles_cannot_see_or_change_it(
    client: FlaskClient, s: Session, provider: Provider, make_staff: Any, sign_in: Any
) -> None:
    row = conflict(s, provider)
    make_staff("lib-admin", Role.PROVIDER_ADMIN)
    sign_in(client, "lib-admin")
    assert client.get("/admin/identity/conflicts").status_code == 403
    assert client.post(f"/admin/identity/conflicts/{row.id}/done").status_code in (400, 403)
    assert s.scalar(select(func.count()).select_from(RebindConflict)) == 1
