"""The bridge in PC/SC mode (`python -m bridge run`) against our pcscd with vpcd readers.

The card files are inserted into vpcd readers by card processes (tests/fixtures/pcsc.py);
the bridge process watches every reader with pyscard's monitors.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge import jpki
from bridge.apdu import Command
from bridge.errors import Code, CommandRefused, PINGuardRefused, TransportError
from bridge.pairing import load
from bridge.seal import SealContext, seal_pin
from bridge.transport import Step, drive
from bridge.transports.pcsc import PcscTransport
from bridge.wire import new_id
from tests.functional.test_bridge_platform import sealed_verify_and_sign
from webapp.terminals.registry import events_channel
from webapp.terminals.remote import RemoteTransport
from webapp.terminals.testing import LivePlatform

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[LivePlatform]:
    with LivePlatform(tmp_path) as live:
        yield live


@pytest.fixture
def pcsc_bridge(
    pcscd: Any, platform: LivePlatform, tmp_path: Path
) -> Iterator[tuple[int, queue.Queue[dict[str, Any]]]]:
    """A paired bridge process watching the harness's pcscd; (terminal id, its events)."""
    terminal = platform.terminal()
    home = tmp_path / "home"
    platform.pair_bridge(home, terminal)
    events: queue.Queue[dict[str, Any]] = queue.Queue()
    sub = platform.bus.subscribe(events_channel(terminal), events.put)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PCSCLITE_CSOCK_NAME": str(pcscd.socket_path),
        "DISPLAY": "",
    }
    with open(tmp_path / "bridge.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bridge", "run", "--home", str(home), "--keyboard", "none"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        platform.wait_ready(terminal, timeout=30)
        yield terminal, events
    finally:
        sub.unsubscribe()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def next_event(
    q: queue.Queue[dict[str, Any]], kind: str, reader: str, timeout: float = 15.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        event = q.get(timeout=max(0.01, deadline - time.monotonic()))
        if event["type"] == kind and event.get("reader") == reader:
            return event


def test_every_reader_and_a_card_inserted_later(
    platform: LivePlatform, pcsc_bridge: Any, attach_card: Any, card_file: Any, pcscd: Any
) -> None:
    terminal, events = pcsc_bridge
    status = platform.remote(terminal).status()
    names = {r.name for r in status.readers}
    assert {r.name for r in pcscd.readers} <= names
    card = attach_card(card_file.path)
    inserted = next_event(events, "card_inserted", card.reader.name)
    assert inserted["atr"] == "3BE000FF8131FE4514"
    remote = platform.remote(terminal, reader=card.reader.name)
    assert drive(jpki.read_certificate(), remote) == card_file.issued.auth_cert_der
    assert remote.epoch == inserted["epoch"]
    with pytest.raises(CommandRefused):
        remote.transmit(
            [Step(Command(0x00, 0xA4, 0x04, 0x0C, bytes.fromhex("D3921000310001010408")))]
        )
    # Out and back in: a new epoch, and the old one is refused.
    card.remove()
    next_event(events, "card_removed", card.reader.name)
    with pytest.raises(TransportError) as empty:
        drive(jpki.read_certificate(), platform.remote(terminal, reader=card.reader.name))
    assert empty.value.code == Code.NO_CARD
    again = attach_card(card_file.path, card.reader)
    reinserted = next_event(events, "card_inserted", again.reader.name)
    assert reinserted["epoch"] > inserted["epoch"]
    with pytest.raises(TransportError) as stale:
        drive(jpki.read_pin_tries(), remote)
    assert stale.value.code == Code.CARD_REMOVED
    assert drive(jpki.read_pin_tries(), platform.remote(terminal, reader=again.reader.name)) == 3


def test_card_pulled_out_mid_command(
    platform: LivePlatform, pcsc_bridge: Any, attach_card: Any, card_file: Any, tmp_path: Path
) -> None:
    terminal, events = pcsc_bridge
    doc = json.loads(card_file.path.read_text())
    doc["pace"]["apdu_delay_s"] = 0.25  # ten APDUs: 2.5 s for a certificate read
    card_file.path.write_text(json.dumps(doc))
    card = attach_card(card_file.path)
    next_event(events, "card_inserted", card.reader.name)
    threading.Timer(0.6, card.yank).start()
    # What is checked is the answer's code, not how fast a loaded machine's pcscd notices
    # the card gone: the command may take longer than the default 10 s to fail here (a
    # CI run under load answered TIMEOUT).
    remote = platform.remote(terminal, reader=card.reader.name, timeout=30.0)
    with pytest.raises(TransportError) as pulled:
        drive(jpki.read_certificate(), remote)
    log = (tmp_path / "bridge.log").read_text(errors="replace")[-3000:]
    assert pulled.value.code in (Code.CARD_REMOVED, Code.NO_CARD), log
    next_event(events, "card_removed", card.reader.name)


def _sign_with_pin(platform: LivePlatform, home: Path, remote: RemoteTransport, pin: str) -> bytes:
    """The sealed-PIN command, the last try confirmed, PIN sealed as the page seals it."""
    bridge_id = load(home).bridge_id
    status, view = platform.admin("GET", f"/api/v1/admin/bridges/{bridge_id}")
    assert status == 200
    command_id = new_id()
    sealed = seal_pin(view["seal_public_key"], pin, SealContext(bridge_id, command_id))
    digest_info = jpki.sha256_digest_info(b"last try")
    return sealed_verify_and_sign(remote, sealed, command_id, digest_info, confirm_last_try=True)


def test_a_reset_is_no_retap_and_taking_the_card_off_is(
    platform: LivePlatform,
    pcsc_bridge: Any,
    attach_card: Any,
    make_card_file: Any,
    tmp_path: Path,
) -> None:
    """Through pcscd and pyscard's card monitor: the reset that ends every sealed-PIN
    command, and another application's reset, bring no card event and no new epoch, so
    the last try stays refused; the card taken out of the reader and put back arms it."""
    terminal, events = pcsc_bridge
    home = tmp_path / "home"
    card_file = make_card_file(tmp_path / "one-left.json", auth_tries_left=1)
    card = attach_card(card_file.path)
    reader = card.reader.name
    epoch = next_event(events, "card_inserted", reader)["epoch"]
    remote = platform.remote(terminal, reader=reader, epoch=epoch)
    for _ in range(2):  # each command's transaction ends with a reset of the card
        with pytest.raises(PINGuardRefused) as retap:
            _sign_with_pin(platform, home, remote, card_file.pin)
        assert (retap.value.code, retap.value.tries_left) == (Code.PIN_RETAP, 1)
    with PcscTransport(reader, reset_on_close=True) as other:  # another application
        assert drive(jpki.read_pin_tries(), other) == 1
    with pytest.raises(PINGuardRefused) as still:
        _sign_with_pin(platform, home, remote, card_file.pin)  # the same epoch: no event
    assert still.value.code == Code.PIN_RETAP
    time.sleep(0.5)  # room for the card monitor to report anything it saw
    seen = []
    while not events.empty():
        seen.append(events.get_nowait())
    assert not [e for e in seen if e.get("reader") == reader and "card" in e["type"]], seen
    card.remove()
    next_event(events, "card_removed", reader)
    again = attach_card(card_file.path, card.reader)
    epoch = next_event(events, "card_inserted", again.reader.name)["epoch"]
    remote = platform.remote(terminal, reader=reader, epoch=epoch)
    assert len(_sign_with_pin(platform, home, remote, card_file.pin)) == 256
    assert drive(jpki.read_pin_tries(), remote) == 3
