"""Limits on the bridges' WebSocket (/ws/bridge), kept by each worker process.

A socket costs a worker memory (and, on the development server, two threads) from the
moment it is upgraded; until it authenticates, anyone can open one. So, per worker:

- **unauthenticated sockets per client address** (`BRIDGE_PREAUTH_PER_ADDRESS`, 20;
  IPv6 by /64) and **in all** (`BRIDGE_PREAUTH_TOTAL`, 500). A socket counts from its
  upgrade until it has authenticated or closed; a handshake takes milliseconds, so
  these are sockets *in the middle of* authenticating at one instant. 20 from one
  address is far above what a library's NAT shows even when all its bridges reconnect
  together after a restart (each waits a random 0-0.5 s first), and caps what one
  client can hold at 20 x 5 s. 500 in all keeps a worker's pending sockets to some
  25 MB (about 45 KB each) and lets a storm of reconnects after a worker's restart
  (10,000 bridges within half a second, each handshake ~10 ms: ~200 at once, spread
  over the workers) through; what is above is shed, and comes back 15-30 s later.
- **a short authentication deadline** (`BRIDGE_AUTH_TIMEOUT`, 5 s): a bridge answers
  the challenge within one round trip and an Ed25519 signature (milliseconds); 5 s
  leaves room for a slow link and bounds how long a socket that never answers holds
  its place.
- **a frame rate per authenticated bridge** (`BRIDGE_FRAME_RATE` 10 per second,
  `BRIDGE_FRAME_BURST` 50): a token bucket over the frames a bridge sends of its own
  accord (pings every 25 s, snapshots, reader and card events; answers to the
  platform's own commands are free). A busy counter is a tap every few seconds, two
  events each; a card wiggled on the reader makes a few events a second; a bridge
  connecting sends a snapshot and maybe a few reader events. 10 a second is twenty
  times the busiest counter's pace, 50 in a burst covers any reconnect. Each card
  insertion makes the platform read the certificate through the bridge, so a bridge
  that floods events makes the platform work: above the rate it is cut off.

Each excess is answered with a wire `error` (`busy`, `auth_timeout`, `rate_limited`:
bridge/wire.py) and a close frame (1013 Try Again Later for `busy`, 1008 Policy
Violation for the others); the bridge then waits the upper half of its back-off range
(15-30 s by default) before it connects again (bridge/client.py).

The counts are per worker process, because each worker holds its own sockets: with N
workers one address may hold N x 20 unauthenticated sockets in all, and the total cap
protects each worker's memory, not the deployment's.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

from flask import Flask

AUTH_TIMEOUT = 5.0
PREAUTH_PER_ADDRESS = 20
PREAUTH_TOTAL = 500
FRAME_RATE = 10.0
FRAME_BURST = 50

CLOSE_POLICY_VIOLATION = 1008
CLOSE_TRY_AGAIN_LATER = 1013


class PreauthGate:
    """Sockets waiting to authenticate on this worker, per client address and in all.

    `per_address` and `total` may be changed while running (tests, an operator's shell).
    """

    def __init__(self, per_address: int = PREAUTH_PER_ADDRESS, total: int = PREAUTH_TOTAL):
        self.per_address = per_address
        self.total = total
        self._lock = threading.Lock()
        self._by_address: dict[str, int] = {}
        self._count = 0

    def enter(self, address: str) -> bool:
        """Take a place for a socket from `address`; False when there is none."""
        with self._lock:
            mine = self._by_address.get(address, 0)
            if mine >= self.per_address or self._count >= self.total:
                return False
            self._by_address[address] = mine + 1
            self._count += 1
            return True

    def leave(self, address: str) -> None:
        """Give back the place of a socket that authenticated or closed."""
        with self._lock:
            left = self._by_address.get(address, 0) - 1
            if left > 0:
                self._by_address[address] = left
            else:
                self._by_address.pop(address, None)
            self._count = max(0, self._count - 1)

    def __len__(self) -> int:
        return self._count


class TokenBucket:
    """`rate` tokens a second up to `burst`; one per frame (not thread-safe: one socket)."""

    def __init__(
        self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._at = clock()

    def take(self) -> bool:
        """Spend a token; False when the bucket is empty (the frame is one too many)."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


def _number(config: dict[str, Any], name: str, default: float, kind: type) -> Any:
    raw = config.setdefault(name, os.environ.get(f"ICHIMAI_{name}", default))
    try:
        value = kind(raw)
    except (TypeError, ValueError):
        value = -1
    if value < 0:
        raise ValueError(f"{name} (ICHIMAI_{name}) must be a number of 0 or more, not {raw!r}")
    config[name] = value
    return value


def init_app(app: Flask) -> None:
    """Read the settings (BRIDGE_AUTH_TIMEOUT, BRIDGE_PREAUTH_*, BRIDGE_FRAME_*) and make
    this worker's gate."""
    config = app.config
    _number(config, "BRIDGE_AUTH_TIMEOUT", AUTH_TIMEOUT, float)
    _number(config, "BRIDGE_FRAME_RATE", FRAME_RATE, float)
    _number(config, "BRIDGE_FRAME_BURST", FRAME_BURST, int)
    app.extensions["bridge_preauth_gate"] = PreauthGate(
        _number(config, "BRIDGE_PREAUTH_PER_ADDRESS", PREAUTH_PER_ADDRESS, int),
        _number(config, "BRIDGE_PREAUTH_TOTAL", PREAUTH_TOTAL, int),
    )


def get_gate(app: Flask) -> PreauthGate:
    """This worker's gate of unauthenticated bridge sockets (made by `init_app`)."""
    gate: PreauthGate = app.extensions["bridge_preauth_gate"]
    return gate


def frame_bucket(app: Flask) -> TokenBucket:
    """A fresh token bucket for one authenticated bridge's frames."""
    return TokenBucket(
        float(app.config["BRIDGE_FRAME_RATE"]), int(app.config["BRIDGE_FRAME_BURST"])
    )
