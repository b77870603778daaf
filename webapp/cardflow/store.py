"""Where card flows live between requests: on the server, behind one interface.

A browser holds nothing of a flow: its state (the card session, the prompt's nonce and
command id, the tries left, the MyKey ID once known, an amount) is kept here, under a
key made from the server-side session's key and the terminal, so a tab names it only by
its opaque session cookie. `InProcessFlowStore` is the embedded default (one process);
`RedisFlowStore` (redis_store.py) is the same contract for several workers, picked in
`create_app` from BUS_URL like the nonce store beside it.

The contract (every implementation keeps it; tests/unit/webapp/cardflow/test_store.py
runs the same cases on both):

- `get(key) -> Record(version, value) | None`: a live record or nothing.
- `put(key, value, ttl, expect=...)`: compare-and-set. `expect=None` writes whatever
  is there, `expect=0` only if nothing is, `expect=N` only if the record is at version
  N; the new version is returned, and a failed expectation raises `FlowConflict`. Two
  requests of one tab in parallel (a double click, a script) therefore cannot both move
  a flow on from the same state: one wins, the other is told BUSY.
- `delete(key)`; records also vanish `ttl` seconds after their last put.
- Presence: `touch_presence(group, member, ttl)`, `drop_presence`, `present(group)`:
  whether any member of a group was seen within its ttl (a counter tab listening to a
  terminal, so that a pushed lookup has somebody to show it to).

Bounds, and why: a value is at most MAX_VALUE_BYTES of JSON (a flow is well under 1 KiB;
a cached certificate read is the largest, ~2.5 KiB in base64); the in-process store holds
at most MAX_ENTRIES records (each a live card flow: a busy platform has hundreds) and
refuses more with FlowStoreFull rather than grow without end.
"""

from __future__ import annotations

import heapq
import json
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

MAX_VALUE_BYTES = 12 * 1024
MAX_ENTRIES = 50_000
MAX_PRESENCE = 64  # tabs watching one terminal


class FlowStoreError(Exception):
    """Base of flow store failures."""


class FlowConflict(FlowStoreError):
    """The record is not at the version the caller expected (another request moved it)."""


class FlowStoreFull(FlowStoreError):
    """The store is at its bound."""


class FlowStoreUnavailable(FlowStoreError):
    """The store cannot be reached (Redis down): no flow can move on."""


class Record(NamedTuple):
    """A stored value and its version (1 for the first put, then +1 each put)."""

    version: int
    value: dict[str, Any]


class FlowStore(Protocol):
    """Server-side flow records with compare-and-set and a time to live."""

    def get(self, key: str) -> Record | None:
        """The live record under `key`, or None."""
        ...

    def put(self, key: str, value: dict[str, Any], ttl: float, *, expect: int | None = None) -> int:
        """Store `value` for `ttl` seconds if the expectation holds; its new version.

        Raises FlowConflict (expectation failed), FlowStoreFull, FlowStoreUnavailable,
        or ValueError when `value` is larger than MAX_VALUE_BYTES once encoded.
        """
        ...

    def delete(self, key: str) -> None:
        """Forget the record (no-op when there is none)."""
        ...

    def touch_presence(self, group: str, member: str, ttl: float) -> None:
        """Note that `member` of `group` is here for the next `ttl` seconds."""
        ...

    def drop_presence(self, group: str, member: str) -> None:
        """`member` left `group`."""
        ...

    def present(self, group: str) -> bool:
        """Whether any member of `group` is here now."""
        ...

    def close(self) -> None:
        """Release connections (idempotent)."""
        ...


def encode(value: dict[str, Any]) -> str:
    """The value as compact JSON text; ValueError beyond MAX_VALUE_BYTES."""
    text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    if len(text) > MAX_VALUE_BYTES:
        raise ValueError(f"a flow record of {len(text)} bytes exceeds {MAX_VALUE_BYTES}")
    return text


class InProcessFlowStore:
    """`FlowStore` in this process's memory (the embedded default: one process)."""

    def __init__(
        self, *, max_entries: int = MAX_ENTRIES, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._records: dict[str, tuple[int, str, float]] = {}
        self._deadlines: list[tuple[float, str]] = []
        self._presence: dict[str, dict[str, float]] = {}

    def get(self, key: str) -> Record | None:
        """The live record under `key`, or None."""
        with self._lock:
            found = self._live(key)
        if found is None:
            return None
        return Record(found[0], json.loads(found[1]))

    def put(self, key: str, value: dict[str, Any], ttl: float, *, expect: int | None = None) -> int:
        """Compare-and-set `value` under `key` for `ttl` seconds; the new version."""
        text = encode(value)
        with self._lock:
            now = self._clock()
            current = self._live(key)
            version = 0 if current is None else current[0]
            if expect is not None and expect != version:
                raise FlowConflict(f"expected version {expect}, found {version}")
            if current is None:
                self._purge(now)
                if len(self._records) >= self.max_entries:
                    raise FlowStoreFull(f"{self.max_entries} flows in progress")
            deadline = now + ttl
            self._records[key] = (version + 1, text, deadline)
            heapq.heappush(self._deadlines, (deadline, key))
            return version + 1

    def delete(self, key: str) -> None:
        """Forget the record."""
        with self._lock:
            self._records.pop(key, None)

    def touch_presence(self, group: str, member: str, ttl: float) -> None:
        """`member` of `group` is here for `ttl` seconds."""
        with self._lock:
            members = self._presence.setdefault(group, {})
            now = self._clock()
            for name in [m for m, until in members.items() if until <= now]:
                del members[name]
            if member in members or len(members) < MAX_PRESENCE:
                members[member] = now + ttl

    def drop_presence(self, group: str, member: str) -> None:
        """`member` left `group`."""
        with self._lock:
            members = self._presence.get(group)
            if members is not None:
                members.pop(member, None)
                if not members:
                    del self._presence[group]

    def present(self, group: str) -> bool:
        """Whether any member of `group` is here now."""
        with self._lock:
            now = self._clock()
            return any(until > now for until in self._presence.get(group, {}).values())

    def close(self) -> None:
        """Nothing to release."""

    def __len__(self) -> int:
        with self._lock:
            self._purge(self._clock())
            return len(self._records)

    def _live(self, key: str) -> tuple[int, str, float] | None:
        found = self._records.get(key)
        if found is not None and found[2] <= self._clock():
            del self._records[key]
            return None
        return found

    def _purge(self, now: float) -> None:
        """Drop expired records (a heap of deadlines: each put is O(log n))."""
        while self._deadlines and self._deadlines[0][0] <= now:
            _, key = heapq.heappop(self._deadlines)
            found = self._records.get(key)
            if found is not None and found[2] <= now:
                del self._records[key]
        # Stale heap entries (a key put again later) are bounded by the puts made.
        if len(self._deadlines) > 4 * max(len(self._records), 1024):
            self._deadlines = [(d, k) for k, (_, _, d) in self._records.items()]
            heapq.heapify(self._deadlines)


def make_flow_store(bus_url: str, prefix: str | None = None) -> FlowStore:
    """Redis when the bus is Redis (any worker may serve a flow's next step), else memory.

    `prefix` (the bus's, BUS_PREFIX) keeps one platform's flows apart on a shared Redis.
    """
    from urllib.parse import urlsplit

    if urlsplit(bus_url).scheme in ("redis", "rediss", "unix"):
        from .redis_store import DEFAULT_PREFIX, RedisFlowStore  # redis only if configured

        return RedisFlowStore.from_url(
            bus_url, prefix=f"{prefix}flow:" if prefix else DEFAULT_PREFIX
        )
    return InProcessFlowStore()
