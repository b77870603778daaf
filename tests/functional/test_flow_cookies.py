"""A browser holds nothing of a card flow but an opaque id (architecture rule 7).

Every cookie the till and the kiosk flows set, all the way through (sign-in, amount,
card, PIN, balance, payment, refund; card, PIN, MyKey ID, links), is decoded every way a
curious shop or kiosk browser could (as text, base64, base64url, Flask's signed-cookie
format, zlib) and searched for the paying citizen's MyKey ID, the challenge nonce, the
tries left, the amount and the balance: none is there. Signing out leaves nothing
usable either.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import zlib
from collections.abc import Iterator
from typing import Any

from flask.testing import FlaskClient

from tests.fixtures.cardflow import Kiosk, db_session, kiosk
from tests.functional.test_kiosk_api import client, make_card
from tests.functional.test_points_terminal import Till, till
from tests.support.flows import begin, complete

__all__ = ["client", "db_session", "kiosk", "till"]

AMOUNT = 4711  # distinctive: a number this long does not turn up in a random token by chance


class RecordingClient:
    """The test client, keeping every Set-Cookie header the platform sends."""

    def __init__(self, inner: FlaskClient) -> None:
        self.inner = inner
        self.cookies: list[str] = []

    def __getattr__(self, name: str) -> Any:
        call = getattr(self.inner, name)
        if name not in ("get", "post", "open"):
            return call

        def recorded(*args: Any, **kwargs: Any) -> Any:
            response = call(*args, **kwargs)
            self.cookies += response.headers.getlist("Set-Cookie")
            return response

        return recorded


def readings(value: str) -> Iterator[str]:
    """Every way to read a cookie value as text."""
    yield value
    parts = value.split(".")
    for part in [value, *parts]:
        padded = part + "=" * (-len(part) % 4)
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                raw = decode(padded)
            except (binascii.Error, ValueError):
                continue
            yield raw.decode("latin-1")
            with contextlib.suppress(zlib.error):
                yield zlib.decompress(raw).decode("latin-1")


def assert_opaque(cookies: list[str], secrets: dict[str, str]) -> None:
    assert cookies, "the flow set no cookie at all"
    for header in cookies:
        value = header.split(";", 1)[0].split("=", 1)[1]
        for text in readings(value):
            for what, secret in secrets.items():
                assert secret not in text, f"the {what} is readable in a cookie: {header}"
            for key in ('"mykey', '"nonce', '"tries', '"points', '"balance', '"prompt', "flow"):
                assert key not in text, f"{key} in a cookie: {header}"


def test_the_till_sets_no_cookie_with_the_payer_or_the_amount(till: Till) -> None:
    path, key = till.card()
    mykey = till.citizen(key, grants=20)
    till.kiosk.insert(path)
    shop = RecordingClient(till.client)
    shop.get("/points/terminal/")
    started = begin(shop, "pay", points=AMOUNT)
    assert started.status_code == 200, started.get_json()
    store = till.kiosk.platform.app.extensions["flow_store"]
    nonces = [
        record.value["prompt"]["nonce"]
        for name in list(getattr(store, "_records", {}))
        if (record := store.get(name)) is not None and record.value.get("prompt")
    ]
    shown = complete(shop, started.get_json()["pin"])
    assert shown.status_code == 200, shown.get_json()
    balance = str(shown.get_json()["result"]["balance"])
    assert shop.post("/flow/do/confirm").status_code == 200
    assert shop.post("/flow/do/refund").status_code == 200
    shop.post("/flow/cancel")
    shop.post("/staff/logout")
    secrets = {"MyKey ID": mykey, "amount": str(AMOUNT), "balance": balance}
    secrets.update({f"nonce {i}": n for i, n in enumerate(nonces)})
    assert nonces, "the flow store held the prompt's nonce"
    assert_opaque(shop.cookies, secrets)


def test_the_kiosk_sets_no_cookie_with_the_citizen(
    kiosk: Kiosk, demo_jlis: Any, tmp_path: Any, client: FlaskClient
) -> None:
    kiosk.insert(make_card(demo_jlis, tmp_path / "c.json", tries=3))
    browser = RecordingClient(client)
    browser.get("/kiosk/")
    started = begin(browser, "kiosk")
    pin = started.get_json()["pin"]
    signed = complete(browser, pin)
    mykey = signed.get_json()["result"]["mykey_id"]
    browser.get("/flow/do/me")
    browser.post("/flow/cancel")
    # The kiosk binding itself was set up by the fixture: the cookie the browser holds
    # now is read as well.
    held = client.get_cookie(client.application.config["SESSION_COOKIE_NAME"])
    assert held is not None
    cookies = [*browser.cookies, f"session={held.value}"]
    assert_opaque(cookies, {"MyKey ID": mykey, "command id": pin["command_id"]})
