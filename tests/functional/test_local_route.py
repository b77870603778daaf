"""A command or status for a terminal whose bridge this process holds is answered by the
holding connection directly (webapp.terminals.registry.local_connection), not sent round
the bus to come back: the same answers, no bus traffic. A bridge held elsewhere, or none, is still
asked through the bus (BRIDGE_OFFLINE when nobody serves it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.errors import Code, TransportError
from tests.fixtures.sip2 import NoReaders
from webapp.terminals import registry
from webapp.terminals.remote import BusTerminalLink, Sip2Failed
from webapp.terminals.testing import BridgeThread, LivePlatform


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[LivePlatform]:
    with LivePlatform(tmp_path) as live:
        yield live


@pytest.fixture
def asked(platform: LivePlatform, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The channels the bus was asked on (requests only)."""
    channels: list[str] = []
    real = platform.bus.request

    def request(channel: str, message: Any, timeout: float) -> Any:
        channels.append(channel)
        return real(channel, message, timeout)

    monkeypatch.setattr(platform.bus, "request", request)
    return channels


def test_a_bridge_held_here_is_asked_without_the_bus(
    platform: LivePlatform, tmp_path: Path, asked: list[str]
) -> None:
    terminal = platform.terminal("Connector", "counter")
    identity = platform.pair_bridge(tmp_path / "bridge", terminal)
    link = BusTerminalLink(platform.bus)
    with BridgeThread(identity, NoReaders(), backoff_base=0.05, backoff_cap=0.2) as running:
        platform.wait_ready(terminal)
        asked.clear()
        assert registry.local_connection(platform.bus, terminal) is not None
        status = link.status(terminal)
        assert status.ready and status.bridge_id == identity.bridge_id
        # A command reaches the bridge and its answer comes back: this bridge has no SIP2
        # settings yet, and says so itself.
        with pytest.raises(Sip2Failed) as refused:
            link.sip2_exchange(terminal, "9900302.00")
        assert refused.value.wire_code == "sip2_not_configured"
        assert asked == []  # neither went round the bus
        running.session.sip2.close()
    # Gone from this process: the bus is asked, and nobody serves the terminal.
    platform.wait_gone(terminal)
    asked.clear()
    assert registry.local_connection(platform.bus, terminal) is None
    with pytest.raises(TransportError) as offline:
        link.status(terminal)
    assert offline.value.code is Code.BRIDGE_OFFLINE
    assert asked and asked[-1] == registry.command_channel(terminal)


def test_another_process_s_registry_is_never_used(platform: LivePlatform) -> None:
    """The route is per bus: another bus (another deployment in this process, a test's)
    finds no connection of this registry."""
    from webapp.bus.memory import InProcessBus

    with InProcessBus() as other:
        assert registry.local_connection(other, 1) is None
