"""Taking in J-LIS's certificate linkage: by command, and when an unknown card shows up.

`import_linkage(app, location)` fetches one linkage document, checks it and moves the
bindings it names (webapp/identity/renewal.py), all of it or nothing of it.

`LinkageCatchUp` is the schedule: with JPKI_LINKAGE_SOURCES set, a card whose key is
bound to no MyKey ID (a renewed card, before anyone ran the import) makes this worker
import the configured sources first, at most once per JPKI_LINKAGE_INTERVAL_SECONDS; a
card already bound costs one primary-key read, and without sources nothing at all. A
failed fetch or a refused document is logged and the tap goes on (the card then opens a
new, empty MyKey ID, which the next good import folds back: identity/renewal.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import db
from ..identity.models import CardBinding
from ..identity.renewal import RebindReport, rebind
from ..jpki import linkage

log = logging.getLogger(__name__)
ATTEMPTS = 3  # a tap binding a new card meanwhile rolls the file back: read it again
DEFAULT_INTERVAL_S = 900.0


def import_linkage(app: Any, location: str) -> RebindReport:
    """Fetch, check and apply one linkage document (all of it, or nothing of it)."""
    from . import verifier_for

    signers = linkage.signers_from_settings(app.config)
    pairs = linkage.parse(linkage.fetch(location), signers)
    key_of = verifier_for(app).card_key_of
    moves = [pair.move(key_of) for pair in pairs]
    for attempt in range(1, ATTEMPTS + 1):
        with db.new_session() as s:
            try:
                report = rebind(s, moves)
            except IntegrityError:
                if attempt == ATTEMPTS:
                    raise
                continue
        log.info(
            "linkage imported: %d pairs, %d moved, %d already, %d unknown, %d conflicts",
            len(moves), report.moved, report.already, report.unknown, len(report.conflicts),
        )  # fmt: skip
        return report
    raise AssertionError("unreachable")


class LinkageCatchUp:
    """Import the configured linkage when an unbound card shows up (rate-limited)."""

    def __init__(
        self,
        app: Any,
        sources: list[str],
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.sources = list(sources)
        self.interval_s = interval_s
        self.clock = clock
        self._lock = threading.Lock()
        self._next = 0.0

    def __call__(self, s: Session, card_key: bytes) -> None:
        if not self.sources or s.get(CardBinding, card_key) is not None:
            return
        if not self._lock.acquire(blocking=False):
            return  # another tap is importing: this one goes on
        try:
            if self.clock() < self._next:
                return
            self._next = self.clock() + self.interval_s
            for location in self.sources:
                try:
                    import_linkage(self.app, location)
                except (linkage.LinkageError, IntegrityError, OSError) as exc:
                    log.warning("linkage not imported from %s: %s", location, exc)
        finally:
            self._lock.release()
        s.expire_all()  # the binding may have moved under this session
