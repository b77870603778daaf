"""The /ws/bridge limits' parts: the gate of unauthenticated sockets, the frame bucket,
and their settings (the sockets themselves: tests/functional/test_bridge_socket_limits.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.jlis import FakeClock
from webapp.terminals import socket_limits
from webapp.terminals.socket_limits import PreauthGate, TokenBucket
from webapp.terminals.testing import build_app


def test_the_gate_caps_each_address_and_the_total() -> None:
    gate = PreauthGate(per_address=2, total=3)
    assert gate.enter("a") and gate.enter("a")
    assert not gate.enter("a")
    assert gate.enter("b")
    assert not gate.enter("c")  # the total
    gate.leave("a")  # a: 1, b: 1
    assert gate.enter("c")
    assert not gate.enter("d")  # the total again
    gate.leave("a")
    gate.leave("b")
    assert len(gate) == 1  # c: 1
    assert gate.enter("c") and not gate.enter("c")  # c's own cap


def test_the_bucket_allows_a_burst_then_the_rate() -> None:
    clock = FakeClock(100.0)
    bucket = TokenBucket(rate=10.0, burst=50, clock=clock)
    assert all(bucket.take() for _ in range(50))
    assert not bucket.take()
    clock.advance(0.5)  # five tokens back
    assert [bucket.take() for _ in range(6)] == [True] * 5 + [False]
    clock.advance(3600)
    assert sum(bucket.take() for _ in range(100)) == 50  # never more than the burst


def test_the_settings_default_and_can_be_set(tmp_path: Path) -> None:
    default = build_app(f"sqlite:///{tmp_path / 'a.db'}")
    given = build_app(
        f"sqlite:///{tmp_path / 'b.db'}",
        extra={"BRIDGE_PREAUTH_PER_ADDRESS": "7", "BRIDGE_FRAME_RATE": 2},
    )
    try:
        gate = socket_limits.get_gate(default)
        assert (gate.per_address, gate.total) == (20, 500)
        assert default.config["BRIDGE_AUTH_TIMEOUT"] == 5.0
        assert socket_limits.get_gate(given).per_address == 7
        assert socket_limits.frame_bucket(given).rate == 2.0
    finally:
        for app in (default, given):
            app.extensions["bus"].close()


def test_a_bad_setting_stops_the_start_with_its_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="BRIDGE_PREAUTH_TOTAL"):
        build_app(f"sqlite:///{tmp_path / 'c.db'}", extra={"BRIDGE_PREAUTH_TOTAL": "many"})
