"""After sign-in, `next` leads only to a path on this site; anything else goes home.

`next` arrives percent-decoded: `next=/%09/evil.com` is "/<TAB>/evil.com", which a
browser reads as //evil.com (it drops TAB and line breaks from URLs, and takes a
backslash for a slash); `next=/%0a/evil.com` once made the Location header a 500.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from webapp.staff.auth import safe_next

HOME = "/staff/"  # a counter clerk's start page

BAD = [
    "/\t/evil.com",  # next=/%09/evil.com
    "/\n/evil.com",  # next=/%0a/evil.com
    "/\r/evil.com",
    "//evil.com",
    "/\\evil.com",
    "https://evil.com",
    "http:/evil.com",
    "evil.com",
    "/%2F/evil.com",  # next=/%252F/evil.com: "//evil.com" once decoded again
    "/%5Cevil.com",
    "/%09/evil.com",  # next=/%2509/evil.com
    "",
]
GOOD = ["/", "/staff/password", "/admin/terminals/?provider_id=2", "/points/grants#csv", "/a%20b"]


@pytest.mark.parametrize("target", BAD)
def test_a_foreign_or_odd_next_goes_home(
    client: FlaskClient, make_staff: Any, sign_in: Any, target: str
) -> None:
    make_staff("clerk")
    answer = sign_in(client, "clerk", query_string={"next": target})
    assert answer.status_code == 302
    assert answer.headers["Location"] == HOME


@pytest.mark.parametrize("target", GOOD)
def test_a_path_on_this_site_is_followed(
    client: FlaskClient, make_staff: Any, sign_in: Any, target: str
) -> None:
    make_staff("clerk")
    answer = sign_in(client, "clerk", query_string={"next": target})
    assert answer.status_code == 302
    assert answer.headers["Location"] == target


@pytest.mark.parametrize("target", [*BAD, None])
def test_safe_next_refuses(target: str | None) -> None:
    assert safe_next(target) is None


@pytest.mark.parametrize("target", GOOD)
def test_safe_next_keeps(target: str) -> None:
    assert safe_next(target) == target
