"""A real platform (werkzeug, WebSockets, bus, SQLite) and a real bridge with a virtual card.

The bridge runs in a thread of the test process (BridgeThread) so that tests can pull the
card, drop the connection or slow the card down; `test_bridge_cli.py` runs it as a
separate `python -m bridge` process.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websocket
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding

from bridge import jpki, wire
from bridge.apdu import Command
from bridge.client import AuthRefused, BridgeClient
from bridge.errors import Code, CommandRefused, PINGuardRefused, TransportError, WrongPIN
from bridge.pairing import BridgeIdentity, PairingFailed, pair
from bridge.readers import SimReader
from bridge.seal import SealContext, seal_pin
from bridge.session import BridgeSession
from bridge.transport import Step, drive
from bridge.vcard.card import VirtualCard
from bridge.vcard.transport import VirtualCardTransport
from bridge.wire import new_id
from webapp.terminals.registry import events_channel
from webapp.terminals.remote import BusTerminalLink, RemoteTransport, Sip2Failed
from webapp.terminals.testing import BridgeThread, LivePlatform

TEXT_HELPER_AID = bytes.fromhex("D3921000310001010408")


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[LivePlatform]:
    with LivePlatform(tmp_path) as live:
        yield live


@pytest.fixture
def terminal(platform: LivePlatform) -> int:
    return platform.terminal()


@pytest.fixture
def identity(platform: LivePlatform, terminal: int, tmp_path: Path) -> BridgeIdentity:
    return platform.pair_bridge(tmp_path / "bridge-home", terminal)


@pytest.fixture
def events(platform: LivePlatform, terminal: int) -> Iterator[queue.Queue[dict[str, Any]]]:
    q: queue.Queue[dict[str, Any]] = queue.Queue()
    sub = platform.bus.subscribe(events_channel(terminal), q.put)
    yield q
    sub.unsubscribe()


@pytest.fixture
def sim(card_file: Any) -> SimReader:
    return SimReader(card_file.path)


@pytest.fixture
def bridge(
    platform: LivePlatform, identity: BridgeIdentity, sim: SimReader
) -> Iterator[BridgeThread]:
    with BridgeThread(identity, sim, backoff_base=0.05, backoff_cap=0.2) as running:
        platform.wait_ready(identity.terminal_id)
        yield running


@contextlib.contextmanager
def run_bridge(
    platform: LivePlatform, identity: BridgeIdentity, watcher: Any, **options: Any
) -> Iterator[BridgeThread]:
    with BridgeThread(identity, watcher, **options) as running:
        platform.wait_ready(identity.terminal_id)
        yield running


def next_event(q: queue.Queue[dict[str, Any]], kind: str, timeout: float = 5.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        event = q.get(timeout=max(0.01, deadline - time.monotonic()))
        if event["type"] == kind:
            return event


def local_certificate(card_file: Any) -> bytes:
    return drive(
        jpki.read_certificate(), VirtualCardTransport(VirtualCard.from_file(card_file.path))
    )


def tries_left(card_file: Any) -> int | None:
    return drive(jpki.read_pin_tries(), VirtualCardTransport(VirtualCard.from_file(card_file.path)))


# -- pairing and authentication -----------------------------------------------------------


def test_paired_bridge_connects_and_shows_its_reader(
    platform: LivePlatform, bridge: BridgeThread, card_file: Any
) -> None:
    status, body = platform.admin("GET", f"/api/v1/admin/bridges/{bridge.identity.bridge_id}")
    assert status == 200
    assert body["online"] is True
    [reader] = body["readers"]
    assert reader["atr"] == "3BE000FF8131FE4514"
    assert reader["epoch"] > 0
    # Presence is written in batches (every flush interval): poll, with room for a loaded CI.
    deadline = time.monotonic() + 10
    while True:
        status, listing = platform.admin("GET", "/api/v1/admin/bridges")
        assert [b["id"] for b in listing["bridges"]] == [bridge.identity.bridge_id]
        if listing["bridges"][0]["online"] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert listing["bridges"][0]["online"] is True


def test_pairing_code_is_single_use(platform: LivePlatform, terminal: int, tmp_path: Path) -> None:
    code = platform.pairing_code(terminal)
    pair(platform.url, code, tmp_path / "a")
    with pytest.raises(PairingFailed, match="already used"):
        pair(platform.url, code, tmp_path / "b")


def test_wrong_pairing_code_is_refused(
    platform: LivePlatform, terminal: int, tmp_path: Path
) -> None:
    platform.pairing_code(terminal)
    with pytest.raises(PairingFailed, match="unknown pairing code"):
        pair(platform.url, "ABCDE-FGHJK", tmp_path / "a")
    assert not (tmp_path / "a" / "auth_key.pem").exists()


def test_a_bridge_with_the_wrong_key_is_refused(
    platform: LivePlatform, identity: BridgeIdentity
) -> None:
    impostor = BridgeIdentity(
        identity.platform,
        identity.bridge_id,
        identity.terminal_id,
        ed25519.Ed25519PrivateKey.generate(),
        identity.seal_key,
    )
    client = BridgeClient(impostor, BridgeSession(impostor.bridge_id, impostor.seal_key))
    with pytest.raises(AuthRefused) as refused:
        client.run_once()
    assert refused.value.code == "unauthorized"


def test_revoking_cuts_the_bridge_off_at_once(
    platform: LivePlatform, bridge: BridgeThread, terminal: int
) -> None:
    status, _ = platform.admin("POST", f"/api/v1/admin/bridges/{bridge.identity.bridge_id}/revoke")
    assert status == 200
    assert bridge.join(2.0), "the bridge kept running after revoke"
    assert isinstance(bridge.error, AuthRefused) and bridge.error.code == "revoked"
    with pytest.raises(TransportError) as offline:
        drive(jpki.read_certificate(), platform.remote(terminal))
    assert offline.value.code == Code.BRIDGE_OFFLINE
    # It cannot come back with its old key.
    client = BridgeClient(
        bridge.identity, BridgeSession(bridge.identity.bridge_id, bridge.identity.seal_key)
    )
    with pytest.raises(AuthRefused, match="revoked"):
        client.run_once()


def test_pairing_a_new_bridge_replaces_the_old_one(
    platform: LivePlatform, bridge: BridgeThread, terminal: int, tmp_path: Path
) -> None:
    platform.pair_bridge(tmp_path / "new-home", terminal)
    assert bridge.join(2.0)
    assert isinstance(bridge.error, AuthRefused)


# -- readers, cards, epochs ---------------------------------------------------------------


def test_card_events_carry_increasing_epochs(
    platform: LivePlatform, identity: BridgeIdentity, sim: SimReader, events: Any, terminal: int
) -> None:
    with run_bridge(platform, identity, sim):
        snapshot = next_event(events, "snapshot")
        first = snapshot["readers"][0]["epoch"]
        epochs = [first]
        for _ in range(3):
            sim.remove()
            removed = next_event(events, "card_removed")
            assert removed["epoch"] == epochs[-1]
            sim.insert()
            inserted = next_event(events, "card_inserted")
            assert inserted["atr"] == "3BE000FF8131FE4514"
            epochs.append(inserted["epoch"])
        assert epochs == sorted(set(epochs))
        # A command for the card of an older epoch is refused, even with a card present.
        with pytest.raises(TransportError) as stale:
            drive(jpki.read_certificate(), platform.remote(terminal, epoch=first))
        assert stale.value.code == Code.CARD_REMOVED
        drive(jpki.read_certificate(), platform.remote(terminal, epoch=epochs[-1]))


def test_a_remote_transport_pins_the_card_it_started_with(
    platform: LivePlatform, bridge: BridgeThread, sim: SimReader, terminal: int
) -> None:
    remote = platform.remote(terminal)
    drive(jpki.read_certificate(), remote)
    assert remote.epoch is not None
    sim.remove()
    sim.insert()
    with pytest.raises(TransportError) as swapped:
        drive(jpki.read_pin_tries(), remote)
    assert swapped.value.code == Code.CARD_REMOVED


# -- commands -------------------------------------------------------------------------------


def test_the_jpki_driver_runs_unchanged_over_the_remote_transport(
    platform: LivePlatform, bridge: BridgeThread, terminal: int, card_file: Any
) -> None:
    remote = platform.remote(terminal)
    sent_before = bridge.session.card(bridge.watcher.name).transport.inner.transmit_calls  # type: ignore[attr-defined]
    certificate = drive(jpki.read_certificate(), remote)
    assert certificate == card_file.issued.auth_cert_der
    assert drive(jpki.read_pin_tries(), remote) == 3
    assert certificate == local_certificate(card_file)
    slot = bridge.session.card(bridge.watcher.name)  # type: ignore[attr-defined]
    assert slot is not None and slot.transport.inner.transmit_calls > sent_before  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "steps",
    [
        pytest.param([Step(Command(0x00, 0xA4, 0x04, 0x0C, TEXT_HELPER_AID))], id="text-helper-AP"),
        pytest.param(
            [
                Step(jpki.select_jpki()),
                Step(jpki.select_ef(0x0018)),
                Step(jpki.verify_command("1234")),
            ],
            id="raw-VERIFY",
        ),
        pytest.param([Step(Command(0x00, 0xB0, 0x81, 0x00, le=256))], id="short-EF-read"),
    ],
)
def test_the_bridge_firewall_refuses_what_is_not_on_the_allowlist(
    platform: LivePlatform, bridge: BridgeThread, terminal: int, steps: list[Step], card_file: Any
) -> None:
    slot = bridge.session.card(bridge.watcher.name)  # type: ignore[attr-defined]
    assert slot is not None
    before = slot.transport.inner.apdu_count  # type: ignore[attr-defined]
    with pytest.raises(CommandRefused):
        platform.remote(terminal).transmit(steps)
    assert slot.transport.inner.apdu_count == before  # type: ignore[attr-defined]
    assert tries_left(card_file) == 3


def sealed_verify_and_sign(
    remote: RemoteTransport,
    sealed: dict[str, Any],
    command_id: str,
    digest_info: bytes,
    *,
    confirm_last_try: bool = False,
) -> bytes:
    """The sealed-PIN command then the signature, as the card flow sends it."""
    outcome = remote.verify_sealed(
        sealed,
        command_id=command_id,
        confirm_last_try=confirm_last_try,
        then=jpki.sign_after_verify_steps(digest_info),
    )
    return jpki.sealed_signature(outcome.responses)


def _seal(identity: BridgeIdentity, platform: LivePlatform, pin: str) -> tuple[str, dict[str, Any]]:
    status, view = platform.admin("GET", f"/api/v1/admin/bridges/{identity.bridge_id}")
    assert status == 200
    command_id = new_id()
    return command_id, seal_pin(
        view["seal_public_key"], pin, SealContext(identity.bridge_id, command_id)
    )


def test_sealed_pin_verify_and_sign(
    platform: LivePlatform, bridge: BridgeThread, terminal: int, card_file: Any, caplog: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    remote = platform.remote(terminal)
    certificate = x509.load_der_x509_certificate(drive(jpki.read_certificate(), remote))
    command_id, sealed = _seal(bridge.identity, platform, card_file.pin)
    message = b"login|https://ichimai.example|nonce"
    digest_info = jpki.sha256_digest_info(message)
    signature = sealed_verify_and_sign(remote, sealed, command_id, digest_info)
    certificate.public_key().verify(signature, message, padding.PKCS1v15(), hashes.SHA256())  # type: ignore[union-attr,call-arg]
    # The same sealed PIN cannot be replayed, nor used under another command id.
    with pytest.raises(CommandRefused):
        sealed_verify_and_sign(remote, sealed, command_id, digest_info)
    with pytest.raises(CommandRefused, match="does not open"):
        sealed_verify_and_sign(remote, sealed, new_id(), digest_info)
    assert card_file.pin not in caplog.text
    assert card_file.pin.encode().hex() not in caplog.text.lower()


def test_sealed_pin_wrong_then_guarded(
    platform: LivePlatform,
    identity: BridgeIdentity,
    terminal: int,
    make_card_file: Any,
    tmp_path: Path,
) -> None:
    card = make_card_file(tmp_path / "two-left.json", auth_tries_left=2)
    digest_info = jpki.sha256_digest_info(b"x")
    sim = SimReader(card.path)
    with run_bridge(platform, identity, sim):
        remote = platform.remote(terminal)
        command_id, sealed = _seal(identity, platform, "9999")
        with pytest.raises(WrongPIN) as wrong:
            sealed_verify_and_sign(remote, sealed, command_id, digest_info)
        assert wrong.value.tries_left == 1
        # One try left and the card still on the reader: refused, even confirmed (a
        # script could confirm); nothing spent.
        for confirm in (False, True):
            command_id, sealed = _seal(identity, platform, "9999")
            with pytest.raises(PINGuardRefused) as retap:
                sealed_verify_and_sign(
                    remote, sealed, command_id, digest_info, confirm_last_try=confirm
                )
            assert (retap.value.code, retap.value.tries_left) == (Code.PIN_RETAP, 1)
        assert drive(jpki.read_pin_tries(), remote) == 1
        # The citizen takes the card off and puts it back: a new card session. Then the
        # last try still needs the citizen's confirmation.
        sim.remove()
        sim.insert()
        remote = platform.remote(terminal)
        command_id, sealed = _seal(identity, platform, "9999")
        with pytest.raises(PINGuardRefused) as guarded:
            sealed_verify_and_sign(remote, sealed, command_id, digest_info)
        assert guarded.value.code == Code.PIN_LAST_TRY
        command_id, sealed = _seal(identity, platform, card.pin)
        signature = sealed_verify_and_sign(
            remote, sealed, command_id, digest_info, confirm_last_try=True
        )
        assert len(signature) == 256


def test_a_locked_card_is_never_sent_a_verify(
    platform: LivePlatform,
    identity: BridgeIdentity,
    terminal: int,
    make_card_file: Any,
    tmp_path: Path,
) -> None:
    card = make_card_file(tmp_path / "locked.json", locked=True)
    with run_bridge(platform, identity, SimReader(card.path)):
        command_id, sealed = _seal(identity, platform, card.pin)
        with pytest.raises(PINGuardRefused) as locked:
            sealed_verify_and_sign(
                platform.remote(terminal),
                sealed,
                command_id,
                jpki.sha256_digest_info(b"x"),
                confirm_last_try=True,
            )
        assert locked.value.code == Code.PIN_LOCKED


# -- errors a terminal must see -----------------------------------------------------------


def test_bridge_offline(
    platform: LivePlatform, terminal: int, identity: BridgeIdentity, sim: SimReader
) -> None:
    with pytest.raises(TransportError) as never:
        drive(jpki.read_certificate(), platform.remote(terminal))
    assert never.value.code == Code.BRIDGE_OFFLINE
    with run_bridge(platform, identity, sim):
        drive(jpki.read_certificate(), platform.remote(terminal))
    with pytest.raises(TransportError) as gone:
        drive(jpki.read_certificate(), platform.remote(terminal))
    assert gone.value.code == Code.BRIDGE_OFFLINE


def test_no_card(
    platform: LivePlatform, bridge: BridgeThread, sim: SimReader, terminal: int
) -> None:
    sim.remove()
    with pytest.raises(TransportError) as empty:
        drive(jpki.read_certificate(), platform.remote(terminal))
    assert empty.value.code == Code.NO_CARD


def test_reader_missing(platform: LivePlatform, bridge: BridgeThread, terminal: int) -> None:
    with pytest.raises(TransportError) as missing:
        drive(jpki.read_certificate(), platform.remote(terminal, reader="No Such Reader 00 00"))
    assert missing.value.code == Code.READER_MISSING


def test_card_removed_mid_command(
    platform: LivePlatform, bridge: BridgeThread, sim: SimReader, terminal: int, events: Any
) -> None:
    sim.pull_after(3)  # SELECT AP, SELECT EF, one READ BINARY, then the card is gone
    with pytest.raises(TransportError) as removed:
        drive(jpki.read_certificate(), platform.remote(terminal))
    assert removed.value.code == Code.CARD_REMOVED
    assert next_event(events, "card_removed")["reader"] == sim.name


def test_timeout(
    platform: LivePlatform, identity: BridgeIdentity, terminal: int, card_file: Any
) -> None:
    slow = SimReader(VirtualCard.from_file(card_file.path, apdu_delay_s=0.3))
    with run_bridge(platform, identity, slow):
        started = time.monotonic()
        with pytest.raises(TransportError) as late:
            drive(jpki.read_certificate(), platform.remote(terminal, timeout=0.5))
        assert late.value.code == Code.TIMEOUT
        assert time.monotonic() - started < 2.0


def test_keyboard_unavailable_is_a_clear_error(
    platform: LivePlatform, bridge: BridgeThread, terminal: int
) -> None:
    with pytest.raises(TransportError) as no_keyboard:
        platform.remote(terminal).type_text("12345678")
    assert no_keyboard.value.wire_code == "keyboard_unavailable"  # type: ignore[attr-defined]


# -- connection life ------------------------------------------------------------------------


def test_reconnect_never_replays_a_command(
    platform: LivePlatform, identity: BridgeIdentity, terminal: int, card_file: Any
) -> None:
    slow = SimReader(VirtualCard.from_file(card_file.path, apdu_delay_s=0.2))
    with run_bridge(platform, identity, slow, backoff_base=0.05, backoff_cap=0.1) as running:
        steps = [Step(jpki.select_jpki()), Step(jpki.select_ef(0x000A))] + [
            Step(jpki.read_binary(i * 256, 256)) for i in range(3)
        ]
        card = slow.link
        assert card is not None
        before = card.inner.apdu_count
        # Every command the bridge is handed, in the order it is handed them.
        handled: list[str] = []
        session_handle = running.session.handle

        def recording(command: wire.Frame) -> wire.Result | wire.Error:
            handled.append(command.id)
            return session_handle(command)

        running.session.handle = recording  # type: ignore[method-assign]
        remote = platform.remote(terminal, timeout=5)
        import threading

        # Dropped once the batch is on the card (its first APDU answered), not on a timer.
        def drop_when_started() -> None:
            deadline = time.monotonic() + 15
            while card.inner.apdu_count == before and time.monotonic() < deadline:
                time.sleep(0.01)
            running.client.drop()

        threading.Thread(target=drop_when_started, daemon=True).start()
        with pytest.raises(TransportError) as dropped:
            remote.transmit(steps)
        assert dropped.value.code == Code.BRIDGE_OFFLINE
        deadline = time.monotonic() + 15
        while running.client.connections < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert running.client.connections == 2
        # The interrupted batch runs to its end on the bridge (nothing recalls it): wait
        # for that, however slow the machine, rather than guess how long it takes.
        deadline = time.monotonic() + 15
        while card.inner.apdu_count - before < len(steps) and time.monotonic() < deadline:
            time.sleep(0.02)
        # A marker command on the new connection: a replay of the interrupted one would
        # have been handed to the bridge before it (the platform would resend at once).
        assert len(platform.remote(terminal).transmit(steps[:2])) == 2
        assert len(handled) == 2 and handled[0] != handled[1]  # the batch once, the marker
        assert card.inner.apdu_count - before == len(steps) + 2


def test_keepalive(
    platform: LivePlatform, bridge: BridgeThread, tmp_path: Path, caplog: Any
) -> None:
    """Pings keep a bridge connected; a bridge that goes silent is dropped by the platform."""
    other = platform.pair_bridge(tmp_path / "silent-home")
    silent = websocket.create_connection(platform.url.replace("http", "ws") + "/ws/bridge")
    try:
        challenge = wire.decode(silent.recv())
        assert isinstance(challenge, wire.Challenge)
        signature = other.sign_challenge(platform.url, challenge.nonce)
        silent.send(wire.encode(wire.Auth(other.bridge_id, signature)))
        assert isinstance(wire.decode(silent.recv()), wire.Welcome)
        silent.settimeout(30)
        with (
            caplog.at_level(logging.INFO, logger="webapp.terminals.bridge_socket"),
            pytest.raises(websocket.WebSocketException),
        ):
            while True:
                silent.recv()
        # Dropped for its silence (2.5 ping intervals without a frame), by the platform.
        assert f"bridge {other.bridge_id} went silent; closing" in caplog.text
    finally:
        silent.shutdown()
    # Meanwhile the pinging bridge stayed on its first connection.
    assert bridge.client.connections == 1
    view = platform.admin("GET", f"/api/v1/admin/bridges/{bridge.identity.bridge_id}")[1]
    assert view["online"] is True and view["last_seen_at"] is not None


# -- a tap between two connections ----------------------------------------------------------


@contextlib.contextmanager
def held_down(running: BridgeThread) -> Iterator[None]:
    """Drop the bridge's connection and keep it down inside the block; it comes back
    after."""
    gate = threading.Event()
    connect = running.client.run_once

    def gated() -> None:
        gate.wait(15)
        connect()

    running.client.run_once = gated  # type: ignore[method-assign]
    running.client.drop()
    deadline = time.monotonic() + 10
    while running.client.connected.is_set():
        assert time.monotonic() < deadline, "the connection did not drop"
        time.sleep(0.01)
    try:
        yield
    finally:
        gate.set()


def test_a_card_put_down_while_the_connection_is_down_is_a_tap_on_the_next(
    platform: LivePlatform,
    identity: BridgeIdentity,
    sim: SimReader,
    events: queue.Queue[dict[str, Any]],
) -> None:
    """A worker restarting (or the network) drops the connection as a citizen taps: the
    platform hears the tap after the next connection's snapshot, with its epoch."""
    with run_bridge(platform, identity, sim, backoff_base=0.05, backoff_cap=0.1) as running:
        sim.remove()
        next_event(events, "card_removed")
        with held_down(running):
            epoch = sim.insert()
        assert next_event(events, "snapshot")["readers"][0]["epoch"] == epoch
        tapped = next_event(events, "card_inserted")
        assert (tapped["epoch"], tapped["reader"]) == (epoch, sim.name)
        assert platform.wait_ready(identity.terminal_id).newest_card() is not None


def test_a_card_on_and_off_while_the_connection_is_down_is_no_tap(
    platform: LivePlatform,
    identity: BridgeIdentity,
    sim: SimReader,
    events: queue.Queue[dict[str, Any]],
) -> None:
    """Gone before the connection came back: nobody waits for it (the snapshot shows an
    empty reader). A card left on the reader since before the first connection is no tap
    either: the first snapshot shows it, as before."""
    terminal = identity.terminal_id
    with run_bridge(platform, identity, sim, backoff_base=0.05, backoff_cap=0.1) as running:
        assert platform.wait_ready(terminal).newest_card() is not None
        assert "card_inserted" not in _after_a_round_trip(platform, terminal, events)
        with held_down(running):
            sim.remove()
            sim.insert()
            sim.remove()
        assert next_event(events, "snapshot")["readers"] == [{"name": sim.name}]
        assert "card_inserted" not in _after_a_round_trip(platform, terminal, events)


def _after_a_round_trip(
    platform: LivePlatform, terminal: int, q: queue.Queue[dict[str, Any]]
) -> list[str]:
    """The kinds of event published before an answer from the bridge came back: a command
    answered after the snapshot on the same connection, so anything the bridge sent with
    the snapshot has been published by then."""
    with pytest.raises(Sip2Failed) as answered:
        BusTerminalLink(platform.bus).sip2_exchange(terminal, "9900302.00")
    assert answered.value.wire_code == "sip2_not_configured"  # the bridge itself said so
    kinds = []
    while not q.empty():
        kinds.append(q.get_nowait()["type"])
    return kinds
