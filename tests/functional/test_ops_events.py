"""The operator's log lines from a real card flow (test client -> /flow -> bus -> bridge ->
card): one line per refused card and refused link, with its code, terminal and provider,
and nothing of the person (webapp/ops/events.py)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from flask.testing import FlaskClient

from bridge.vcard.cardfile import CardFile, card_data_from_issued
from bridge.vcard.jlis import DemoJLIS
from tests.fixtures.cardflow import Kiosk, db_session, kiosk
from tests.support.flows import begin, complete, error_code
from webapp import db
from webapp.demo_data import ensure_providers, library_number
from webapp.ops.logs import JsonLineFormatter
from webapp.terminals.models import TerminalKind

__all__ = ["db_session", "kiosk"]

PIN = "1234"


def make_card(jlis: DemoJLIS, path: Path) -> tuple[Path, Any]:
    issued = jlis.issue()
    CardFile.create(path, card_data_from_issued(issued, pin=PIN, sign_password="ABC123"))
    return path, issued


@pytest.fixture
def client(kiosk: Kiosk) -> FlaskClient:
    client = kiosk.platform.app.test_client()
    with client.session_transaction() as sess:
        sess["terminal_id"] = kiosk.terminal_id
        sess["terminal_kind"] = TerminalKind.KIOSK
    return client


def event_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    formatter = JsonLineFormatter()
    return [formatter.format(r) for r in caplog.records if r.name == "ichimai.events"]


def events_named(caplog: pytest.LogCaptureFixture, name: str) -> list[dict[str, Any]]:
    return [e for e in map(json.loads, event_lines(caplog)) if e["event"] == name]


def test_refused_links_and_a_wrong_pin_are_one_line_each_without_the_person(
    kiosk: Kiosk,
    demo_jlis: DemoJLIS,
    tmp_path: Path,
    client: FlaskClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ichimai.events")
    with kiosk.platform.app.app_context(), db.new_session() as s:
        library = ensure_providers(s).library.id
    path, issued = make_card(demo_jlis, tmp_path / "c.json")
    kiosk.insert(path)
    prompt = begin(client, "kiosk").get_json()["pin"]
    wrong = complete(client, prompt, "0000")
    assert error_code(wrong) == "wrong_pin"
    me = complete(client, wrong.get_json()["error"]["pin"]).get_json()["result"]
    body = {"provider_id": library, "accepted": True, "terms_version": 1}
    bad = client.post("/flow/do/link", json={**body, "customer_number": "0000000012"})
    assert error_code(bad) == "number_invalid"
    good = client.post("/flow/do/link", json={**body, "customer_number": library_number(7)})
    assert good.status_code == 200
    again = client.post("/flow/do/link", json={**body, "customer_number": library_number(8)})
    assert error_code(again) == "already_linked"

    refused_cards = events_named(caplog, "card_refused")
    assert [(e["code"], e["terminal"]) for e in refused_cards] == [("wrong_pin", kiosk.terminal_id)]
    links = events_named(caplog, "link_refused")
    assert [e["code"] for e in links] == ["number_invalid", "already_linked"]
    assert all(e["terminal"] == kiosk.terminal_id for e in links)
    text = "\n".join(event_lines(caplog))
    serial = x509.load_der_x509_certificate(issued.auth_cert_der).serial_number
    person = [me["mykey_id"], library_number(7), library_number(8), "0000000012"]
    names = [v for v in issued.holder.values() if len(v) >= 4]  # not the one-digit sex code
    person += [issued.my_number, str(serial), format(serial, "x"), *names]
    for value in person:
        assert value and value not in text, value


def test_a_revoked_card_is_one_line_with_its_code(
    kiosk: Kiosk,
    demo_jlis: DemoJLIS,
    tmp_path: Path,
    client: FlaskClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ichimai.events")
    path, issued = make_card(demo_jlis, tmp_path / "lost.json")
    demo_jlis.revoke(issued.auth_cert_der)
    kiosk.verifier.revocation.refresh_all()
    kiosk.insert(path)
    assert error_code(begin(client, "kiosk")) == "revoked"
    (line,) = events_named(caplog, "card_refused")
    assert (line["code"], line["reason"], line["purpose"]) == ("revoked", "revoked", "kiosk")
