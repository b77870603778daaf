"""/ws/terminal pushes the bound terminal's card and bridge events at once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import websocket

from bridge.vcard.cardfile import CardFile, card_data_from_issued
from bridge.vcard.jlis import DemoJLIS
from tests.fixtures.cardflow import Kiosk, db_session, kiosk
from webapp.terminals.models import TerminalKind

__all__ = ["db_session", "kiosk"]


def receive(ws: Any, wanted: str) -> dict[str, Any]:
    """The next event of type `wanted` (others, e.g. snapshots, are skipped)."""
    for _ in range(20):
        event = json.loads(ws.recv())
        if event["type"] == wanted:
            return event  # type: ignore[no-any-return]
    raise AssertionError(f"no {wanted} event")


def test_card_and_bridge_events_reach_the_tab(
    kiosk: Kiosk, demo_jlis: DemoJLIS, tmp_path: Path
) -> None:
    path = tmp_path / "c.json"
    CardFile.create(
        path, card_data_from_issued(demo_jlis.issue(), pin="1234", sign_password="ABC123")
    )
    client = kiosk.platform.app.test_client()
    with client.session_transaction() as sess:
        sess["terminal_id"] = kiosk.terminal_id
        sess["terminal_kind"] = TerminalKind.KIOSK
    cookie = client.get_cookie("session")
    assert cookie is not None
    url = kiosk.platform.url.replace("http://", "ws://") + "/ws/terminal"
    ws = websocket.create_connection(url, cookie=f"session={cookie.value}", timeout=10)
    try:
        first = json.loads(ws.recv())
        assert first == {
            "type": "status",
            "terminal_id": kiosk.terminal_id,
            "bridge_online": False,
            "bridge_paired": True,  # paired, not connected yet: offline, not unpaired
            "card": None,
        }
        reader = kiosk.insert(path)  # the card is on the reader as the bridge connects
        assert receive(ws, "bridge_online")
        (present,) = [r for r in receive(ws, "snapshot")["readers"] if "epoch" in r]
        reader.remove()
        assert receive(ws, "card_removed")["epoch"] == present["epoch"]
        reader.insert()
        assert receive(ws, "card_inserted")["epoch"] > present["epoch"]
        kiosk.stop()
        assert receive(ws, "bridge_offline")["paired"] is True
    finally:
        ws.close()


def test_an_unbound_tab_is_refused(kiosk: Kiosk) -> None:
    url = kiosk.platform.url.replace("http://", "ws://") + "/ws/terminal"
    ws = websocket.create_connection(url, timeout=10)
    try:
        assert json.loads(ws.recv()) == {"type": "error", "code": "no_terminal"}
    finally:
        ws.close()
