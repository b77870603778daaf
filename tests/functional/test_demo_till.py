"""The demo (`make demo`) comes up with a shop till bound to the museum merchant in the
database: its staff open it, tap the registered card, pay with the PIN; other staff can't."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from tests.support.flows import begin, complete
from webapp import db
from webapp.demo import DEMO_PIN, LOGINS, OFFICER_LOGIN, TILL_LOGIN, DemoStack
from webapp.points.models import Merchant
from webapp.terminals.models import Terminal, TerminalKind


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[DemoStack]:
    demo = DemoStack(tmp_path / "demo", use_pcsc=False)
    demo.start()
    try:
        yield demo
    finally:
        demo.stop()


def sign_in(client: FlaskClient, login: str, password: str) -> None:
    signed = client.post("/staff/login", data={"login": login, "password": password})
    assert signed.status_code == 302


def test_the_demo_till_takes_points_for_the_museum(stack: DemoStack) -> None:
    assert stack.app is not None and stack.readers is not None
    stack.app.config["WTF_CSRF_ENABLED"] = False  # the forms' tokens are tested elsewhere
    till = stack.terminals[TerminalKind.MERCHANT]
    with stack.app.app_context(), db.new_session() as s:
        terminal = s.get(Terminal, till)
        assert terminal is not None and terminal.kind == TerminalKind.MERCHANT
        merchant = s.get(Merchant, terminal.merchant_id)
        assert merchant is not None and merchant.code == "MUSEUM1"
    assert stack.readers.terminals[till].name == "美術館レジ1"
    assert TILL_LOGIN[0] in stack.banner()

    counter = stack.app.test_client()
    sign_in(counter, "counter", LOGINS["counter"][0])
    assert counter.post(f"/points/terminal/open/{till}").status_code == 403

    client = stack.app.test_client()
    sign_in(client, *TILL_LOGIN)
    assert client.post(f"/points/terminal/open/{till}").status_code == 302
    assert client.get("/points/terminal/").status_code == 200
    stack.readers.tap(till, "registered")
    started = begin(client, "pay", points=200)
    assert started.status_code == 200, started.get_data(as_text=True)
    shown = complete(client, started.get_json()["pin"], DEMO_PIN)
    assert shown.get_json()["result"] == {"points": 200, "balance": 500, "enough": True}
    paid = client.post("/flow/do/confirm").get_json()["result"]
    assert paid == {"points": 200, "balance": 300, "replayed": False}


def test_the_demo_points_officer_sees_the_city(stack: DemoStack) -> None:
    assert stack.app is not None
    stack.app.config["WTF_CSRF_ENABLED"] = False  # the forms' tokens are tested elsewhere
    assert OFFICER_LOGIN[0] in stack.banner()
    client = stack.app.test_client()
    sign_in(client, *OFFICER_LOGIN)
    page = client.get("/points/municipality")
    assert page.status_code == 200
    assert "いちまい市" in page.get_data(as_text=True)
    # The officer is the city's, not a till's: the shop till stays closed to them.
    till = stack.terminals[TerminalKind.MERCHANT]
    assert client.post(f"/points/terminal/open/{till}").status_code == 403
