"""One deployment, one namespace: two platforms on one Redis never see each other.

On the landed code the bus prefix was fixed (`ichimai:bus:`) and Redis pub/sub ignores
the database number: a second platform (its own database, Redis db 5 instead of 0, no
bridge paired) showed "card reader connected" on its counter tab and read a card through
the first platform's bridge. Here each platform's namespace (ICHIMAI_NAMESPACE) is in
every channel and key, and every bus frame names it.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from bridge.errors import TransportError
from bridge.readers import SimReader
from tests.support.services import REDIS_URL, require_redis
from webapp.bus.interfaces import BusError
from webapp.bus.redis_bus import RedisBus, _wire
from webapp.config import namespace_settings
from webapp.terminals.testing import BridgeThread, LivePlatform

REDIS_DB5 = REDIS_URL.rsplit("/", 1)[0] + "/5"


@pytest.fixture(autouse=True)
def _redis() -> None:
    require_redis()


def namespaced(tmp: Path, name: str, namespace: str, bus_url: str) -> LivePlatform:
    return LivePlatform(tmp / name, bus_url=bus_url, extra=namespace_settings(namespace))


@pytest.fixture
def first(tmp_path: Path, card_file: Any) -> Iterator[tuple[LivePlatform, int]]:
    """A platform on Redis db 0 whose terminal has a bridge with a card on it."""
    (tmp_path / "a").mkdir()
    with namespaced(tmp_path, "a", f"t-a-{secrets.token_hex(3)}", REDIS_URL) as a:
        terminal = a.terminal()
        identity = a.pair_bridge(tmp_path / "home", terminal)
        with BridgeThread(identity, SimReader(card_file.path), backoff_base=0.05, backoff_cap=0.5):
            # a loaded machine may miss the first connection: the bridge retries quickly
            assert a.wait_ready(terminal, timeout=30).ready
            yield a, terminal


def test_a_second_platform_on_the_same_redis_sees_no_bridge_of_the_first(
    tmp_path: Path, first: tuple[LivePlatform, int]
) -> None:
    a, terminal = first
    (tmp_path / "b").mkdir()
    with namespaced(tmp_path, "b", f"t-b-{secrets.token_hex(3)}", REDIS_DB5) as b:
        mine = b.terminal()
        assert mine == terminal  # the same terminal id in its own database
        with pytest.raises(TransportError):
            b.remote(mine, timeout=1.0).status()
    # The first platform still reads its card.
    assert a.remote(terminal).status().ready


def test_the_same_namespace_on_another_database_number_is_the_same_deployment(
    tmp_path: Path, first: tuple[LivePlatform, int]
) -> None:
    """The control: what the namespace prevents does happen without it (the test can fail)."""
    a, terminal = first
    (tmp_path / "c").mkdir()
    with namespaced(tmp_path, "c", a.app.config["NAMESPACE"], REDIS_DB5) as c:
        assert c.remote(terminal).status().ready


def test_a_frame_of_another_namespace_on_our_channel_is_never_taken() -> None:
    ours = f"ichimai:t-ours-{secrets.token_hex(3)}:"
    got: list[Any] = []
    arrived = threading.Event()

    def on_message(message: Any) -> None:
        got.append(message)
        arrived.set()

    with RedisBus(REDIS_URL, prefix=ours) as bus:
        bus.subscribe("terminals.1.events", on_message)
        client = redis.Redis.from_url(REDIS_URL)
        try:
            # Someone else's frame, published on our channel (a shared Redis, a prefix typed
            # twice): dropped and counted.
            foreign = _wire({"w": "elsewhere", "ns": "ichimai:other:"}, b'{"type":"card"}')
            assert client.publish(f"{ours}pub:terminals.1.events", foreign) == 1
            # A frame without a namespace at all (the landed code's frames) is foreign too.
            bare = _wire({"w": "elsewhere"}, b'{"type":"card"}')
            assert client.publish(f"{ours}pub:terminals.1.events", bare) == 1
            # Then one of ours, from another worker of our deployment.
            with RedisBus(REDIS_URL, prefix=ours) as sibling:
                sibling.publish("terminals.1.events", {"type": "ours"})
                assert arrived.wait(5)
        finally:
            client.close()
        assert got == [{"type": "ours"}]
        assert bus.foreign_frames == 2


def test_a_request_to_another_namespace_finds_no_server() -> None:
    with (
        RedisBus(REDIS_URL, prefix=f"ichimai:t-x-{secrets.token_hex(3)}:") as x,
        RedisBus(REDIS_URL, prefix=f"ichimai:t-y-{secrets.token_hex(3)}:") as y,
    ):
        x.serve("terminals.1.bridge", lambda message: {"ok": True})
        assert x.request("terminals.1.bridge", {}, 2.0) == {"ok": True}
        with pytest.raises(BusError):
            y.request("terminals.1.bridge", {}, 1.0)
