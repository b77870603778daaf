"""The pushed number through the real PC/SC path, and cards pulled in the middle of it.

The platform reads a counter's card as soon as the bridge reports it. A card taken off
the reader in the middle of that read is what real counters see all day (a card slid
across the reader); with pcscd and vpcd it can also leave a transfer hanging until the
reader gives up. The bridge must survive it: the next tap is read and its number pushed
as usual, and nothing stale is pushed for a card that left.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.readers import PcscReaders
from bridge.vcard.cardfile import CardFile, card_data_from_issued
from bridge.vcard.jlis import DemoJLIS
from bridge.vcard.pcscd_harness import Pcscd
from tests.fixtures.cardflow import platform_config
from tests.fixtures.counter import STAFF_LOGIN, STAFF_PASSWORD
from webapp import db
from webapp.cardflow import verifier_for
from webapp.identity import services as identity
from webapp.providers.models import Provider
from webapp.staff.models import Role
from webapp.staff.services import create_staff
from webapp.terminals.testing import BridgeThread, LivePlatform

NUMBER = "20240042"


@pytest.fixture
def counter(pcscd: Pcscd, private_jlis: DemoJLIS, tmp_path: Path) -> Iterator[dict[str, Any]]:
    with LivePlatform(tmp_path, extra=platform_config(private_jlis)) as platform:
        terminal = platform.terminal("Counter 1", kind="counter")
        issued = private_jlis.issue()
        card = tmp_path / "card.json"
        # A real card's pace (~12 ms per APDU): there is time to pull it mid-read.
        data = card_data_from_issued(issued, pin="1234", sign_password="ABC123", apdu_delay_s=0.012)
        CardFile.create(card, data)
        with platform.app.app_context(), db.new_session() as s:
            provider = s.get(Provider, platform.provider())
            assert provider is not None
            provider.number_rule = {"min_length": 4, "max_length": 16}
            provider.counter_settings = {"mode": "A", "pin_required": False}
            s.commit()
            create_staff(s, STAFF_LOGIN, STAFF_PASSWORD, Role.COUNTER_STAFF, provider.id)
            key = verifier_for(platform.app).identify(issued.auth_cert_der).card_key
            from datetime import UTC, datetime

            mykey, _ = identity.open_or_create(s, key, datetime(2035, 1, 1, tzinfo=UTC))
            identity.link(s, mykey.id, provider, NUMBER, provider.terms_version, "staff")
        reader = pcscd.readers[1]
        bridge = BridgeThread(
            platform.pair_bridge(tmp_path / "bridge-home", terminal),
            PcscReaders(only=reader.name),
            backoff_base=0.05,
            backoff_cap=0.2,
        ).start()
        platform.wait_ready(terminal)
        client = platform.app.test_client()
        client.post("/staff/login", data={"login": STAFF_LOGIN, "password": STAFF_PASSWORD})
        assert client.post(f"/counter/open/{terminal}").status_code == 302
        try:
            yield {"platform": platform, "client": client, "card": card, "reader": reader}
        finally:
            bridge.stop()


def status(client: Any) -> dict[str, Any]:
    body: dict[str, Any] = client.get("/terminal/status").get_json()
    return body


def test_pulled_mid_read_then_tapped_properly(counter: dict[str, Any], pcscd: Pcscd) -> None:
    client, card, reader = counter["client"], counter["card"], counter["reader"]
    assert status(client)["bridge_online"]  # the tab is here (its poll keeps a presence)
    for pause in (0.0, 0.01, 0.03, 0.05, 0.08):
        attached = pcscd.attach(card, reader)
        time.sleep(pause)  # somewhere in the platform's read (7 APDUs at 12 ms)
        attached.remove()
    # Everything pulled: no card, and nothing pushed for a card that is gone.
    deadline = time.monotonic() + 20
    while status(client)["card"] is not None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    attached = pcscd.attach(card, reader)
    try:
        deadline = time.monotonic() + 20
        while True:
            now = status(client)
            pushed = now.get("number")
            if pushed and "result" in pushed:
                break
            assert time.monotonic() < deadline, f"the tap after the pulls was not read: {now}"
            time.sleep(0.05)
        assert pushed["result"]["number"] == NUMBER
        assert pushed["epoch"] == now["card"]["epoch"]
    finally:
        attached.remove()
