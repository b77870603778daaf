"""A renewed or replaced card keeps its MyKey ID through J-LIS's linkage, end to end in
process: fake J-LIS renew/reissue -> `flask jpki import-linkage` (or the catch-up at the
new card's first tap) -> kiosk flow through the bus, the bridge and the virtual card."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from bridge.vcard.cardfile import CardFile, card_data_from_issued
from bridge.vcard.jlis import DemoJLIS
from tests.fixtures.cardflow import Kiosk, kiosk
from tests.fixtures.privacy import scan
from tests.support.flows import begin, card_and_pin, error_code
from webapp import db
from webapp.cardflow import verifier_for
from webapp.cardflow.renewals import LinkageCatchUp
from webapp.demo_data import ensure_providers, library_number
from webapp.identity.models import CardBinding, MyKeyID
from webapp.terminals.models import TerminalKind

__all__ = ["kiosk"]

PIN = "1234"


def new_card(jlis: DemoJLIS, path: Path) -> Path:
    CardFile.create(path, card_data_from_issued(jlis.issue(), pin=PIN, sign_password="ABC123"))
    return path


def successor(jlis: DemoJLIS, old: Path, new: Path, *, lost: bool = False) -> Path:
    data = CardFile.load(old).data
    issued = (jlis.reissue if lost else jlis.renew)(data)
    CardFile.create(new, card_data_from_issued(issued, pin=PIN, sign_password="ABC123"))
    return new


@pytest.fixture
def client(kiosk: Kiosk) -> FlaskClient:
    client = kiosk.platform.app.test_client()
    with client.session_transaction() as sess:
        sess["terminal_id"] = kiosk.terminal_id
        sess["terminal_kind"] = TerminalKind.KIOSK
    return client


def sign_in(kiosk: Kiosk, client: FlaskClient, card: Path) -> Any:
    kiosk.insert(card)
    client.post("/flow/cancel")
    return card_and_pin(client, "kiosk", PIN)


def import_linkage(kiosk: Kiosk, *locations: str) -> Any:
    runner = kiosk.platform.app.test_cli_runner()
    return runner.invoke(args=["jpki", "import-linkage", *locations])


def refresh_crls(kiosk: Kiosk) -> None:
    verifier_for(kiosk.platform.app).revocation.refresh_all()


def bindings(kiosk: Kiosk) -> tuple[int, int]:
    with kiosk.platform.app.app_context(), db.new_session() as s:
        return (
            s.scalar(select(func.count()).select_from(CardBinding)) or 0,
            s.scalar(select(func.count()).select_from(MyKeyID)) or 0,
        )


def test_a_renewed_card_opens_the_same_id_with_its_links_and_the_old_one_is_refused(
    kiosk: Kiosk, demo_jlis: DemoJLIS, tmp_path: Path, client: FlaskClient
) -> None:
    old = new_card(demo_jlis, tmp_path / "old.json")
    me = sign_in(kiosk, client, old).get_json()["result"]
    with kiosk.platform.app.app_context(), db.new_session() as s:
        library = ensure_providers(s).library.id
    body = {"provider_id": library, "customer_number": library_number(41), "accepted": True}
    assert client.post("/flow/do/link", json={**body, "terms_version": 1}).status_code == 200
    new = successor(demo_jlis, old, tmp_path / "new.json")

    result = import_linkage(kiosk, str(demo_jlis.directory / "linkage.json"))
    assert result.exit_code == 0, result.output
    assert "moved 1" in result.output
    again = import_linkage(kiosk, str(demo_jlis.directory / "linkage.json"))
    assert again.exit_code == 0 and "moved 0, already moved 1" in again.output
    refresh_crls(kiosk)

    renewed = sign_in(kiosk, client, new).get_json()["result"]
    assert renewed["mykey_id"] == me["mykey_id"] and not renewed["created"]
    assert [row["number"] for row in renewed["links"]] == [library_number(41)]
    kiosk.insert(old)
    client.post("/flow/cancel")
    assert error_code(begin(client, "kiosk")) == "revoked"
    # nothing of the renewal (either serial, either certificate) is kept at rest
    cards = [CardFile.load(old).data, CardFile.load(new).data]
    assert scan(kiosk.platform.app.extensions["db_engine"], cards) == []  # type: ignore[arg-type]


def test_the_first_tap_of_a_renewed_card_takes_in_the_linkage_itself(
    kiosk: Kiosk, demo_jlis: DemoJLIS, tmp_path: Path, client: FlaskClient
) -> None:
    old = new_card(demo_jlis, tmp_path / "old.json")
    me = sign_in(kiosk, client, old).get_json()["result"]
    service = kiosk.platform.app.extensions["cardflow"]
    source = str(demo_jlis.directory / "linkage.json")
    service.renewals = LinkageCatchUp(kiosk.platform.app, [source], interval_s=3600)
    try:
        new = successor(demo_jlis, old, tmp_path / "new.json", lost=True)
        renewed = sign_in(kiosk, client, new).get_json()["result"]
        assert renewed["mykey_id"] == me["mykey_id"] and not renewed["created"]
        assert bindings(kiosk) == (1, 1)
    finally:
        service.renewals = None


def _tampered(path: Path, tmp_path: Path, change: Any) -> str:
    document = json.loads(path.read_text("utf-8"))
    change(document)
    out = tmp_path / "tampered.json"
    out.write_text(json.dumps(document), "utf-8")
    return str(out)


def _other_serial(document: dict[str, Any]) -> None:
    document["body"]["entries"][-1]["new"]["serial"] = "01"


def _no_signature(document: dict[str, Any]) -> None:
    del document["signature"]


def _garbled_signature(document: dict[str, Any]) -> None:
    document["signature"] = base64.b64encode(b"\x00" * 256).decode()


@pytest.mark.parametrize("change", [_other_serial, _no_signature, _garbled_signature])
def test_a_linkage_that_is_not_j_lis_s_changes_nothing(
    kiosk: Kiosk, demo_jlis: DemoJLIS, tmp_path: Path, client: FlaskClient, change: Any
) -> None:
    old = new_card(demo_jlis, tmp_path / "old.json")
    sign_in(kiosk, client, old)
    successor(demo_jlis, old, tmp_path / "new.json")
    before = bindings(kiosk)
    bad = _tampered(demo_jlis.directory / "linkage.json", tmp_path, change)
    result = import_linkage(kiosk, bad)
    assert result.exit_code == 1 and "refused, nothing changed" in result.output
    assert bindings(kiosk) == before
    missing = import_linkage(kiosk, str(tmp_path / "nowhere.json"))
    assert missing.exit_code == 1 and "could not read" in missing.output


def test_an_unreachable_linkage_never_stops_a_tap_and_is_tried_once_per_interval(
    kiosk: Kiosk,
    demo_jlis: DemoJLIS,
    tmp_path: Path,
    client: FlaskClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    service = kiosk.platform.app.extensions["cardflow"]
    missing = str(tmp_path / "not-published-yet.json")
    service.renewals = LinkageCatchUp(kiosk.platform.app, [missing], interval_s=3600)
    try:
        for n in (1, 2):
            card = new_card(demo_jlis, tmp_path / f"c{n}.json")
            assert sign_in(kiosk, client, card).get_json()["result"]["created"]
    finally:
        service.renewals = None
    tries = [r for r in caplog.records if "linkage not imported" in r.getMessage()]
    assert len(tries) == 1 and "could not read" in tries[0].getMessage()
