"""Wrong patron passwords, counted on the bridge: not a password oracle, even for the platform.

The platform holds the bridge's public sealing key (pages need it to seal), so a
compromised platform could seal its own guesses at a patron's password and ask the
library system through the bridge as often as it likes. The bridge counts the answers
CQ=N per patron id: after `limit` (5) wrong within `window` (15 minutes) it refuses
further password checks for that patron, without asking the library system, until the
oldest wrong one leaves the moving window (`sip2_throttled`). A right password counts
nothing and clears nothing.

Also, across all patrons, `overall` (60) wrong within the window: one guess at each of
many patrons (password spraying) is stopped too. Checks in flight count as wrong until
they are answered, so concurrent guesses cannot overshoot. Records are bounded
(`capacity` patrons); when full of live records, new patrons are refused (fail closed)
rather than an old record being dropped to make room.

Patron ids are compared after NFKC, trimming and case folding (`key`), so "ａｂｃ１" and
"ABC1" are one patron; a library system that also ignores leading zeros would need
more. In memory: a bridge restart forgets the counts.
"""

from __future__ import annotations

import threading
import time
import unicodedata
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from bridge.sip2_wire import Sip2Code

from . import Sip2Error

LIMIT = 5
WINDOW = 15 * 60.0
OVERALL = 60
CAPACITY = 10_000


def key(patron_id: str) -> str:
    """The patron as the throttle counts them."""
    return unicodedata.normalize("NFKC", patron_id).strip().casefold()


@dataclass
class _Record:
    wrong: deque[float] = field(default_factory=deque)
    pending: int = 0


@dataclass(frozen=True, slots=True)
class Ticket:
    """One password check in flight."""

    key: str


class PasswordThrottle:
    """Per-patron (and overall) moving windows of wrong passwords."""

    def __init__(
        self,
        *,
        limit: int = LIMIT,
        window: float = WINDOW,
        overall: int = OVERALL,
        capacity: int = CAPACITY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit, self.window, self.overall, self.capacity = limit, window, overall, capacity
        self._clock = clock
        self._lock = threading.Lock()
        self._records: dict[str, _Record] = {}
        self._all = _Record()

    def _expire(self, record: _Record, now: float) -> None:
        while record.wrong and record.wrong[0] <= now - self.window:
            record.wrong.popleft()

    def begin(self, patron_id: str) -> Ticket:
        """Start a password check; Sip2Error `sip2_throttled` when it may not happen."""
        k = key(patron_id)
        now = self._clock()
        with self._lock:
            self._expire(self._all, now)
            if len(self._all.wrong) + self._all.pending >= self.overall:
                raise Sip2Error(Sip2Code.THROTTLED, "too many wrong passwords lately")
            record = self._records.get(k)
            if record is None:
                if len(self._records) >= self.capacity:
                    self._sweep(now)
                if len(self._records) >= self.capacity:
                    raise Sip2Error(Sip2Code.THROTTLED, "too many patrons with wrong passwords")
                record = self._records[k] = _Record()
            self._expire(record, now)
            if len(record.wrong) + record.pending >= self.limit:
                raise Sip2Error(Sip2Code.THROTTLED, "too many wrong passwords for this patron")
            record.pending += 1
            self._all.pending += 1
        return Ticket(k)

    def end(self, ticket: Ticket, *, wrong: bool) -> None:
        """The check was answered (`wrong`: CQ=N), or failed before an answer."""
        now = self._clock()
        with self._lock:
            record = self._records.get(ticket.key)
            self._all.pending -= 1
            if wrong:
                self._all.wrong.append(now)
            if record is None:  # pragma: no cover - records with checks in flight stay
                return
            record.pending -= 1
            if wrong:
                record.wrong.append(now)
            if not record.wrong and not record.pending:
                del self._records[ticket.key]

    def _sweep(self, now: float) -> None:
        for k, record in list(self._records.items()):
            self._expire(record, now)
            if not record.wrong and not record.pending:
                del self._records[k]

    def wrong_count(self, patron_id: str) -> int:
        """Wrong passwords of this patron within the window (for tests and operators)."""
        with self._lock:
            record = self._records.get(key(patron_id))
            if record is None:
                return 0
            self._expire(record, self._clock())
            return len(record.wrong)
