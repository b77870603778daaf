"""Revocation by CRL, failing closed: no fresh, verified CRL means no acceptance.

One `CrlSlot` per (issuing anchor, CRL location) holds the current `RevocationList` and
when to refresh it. A check is a tuple read, one float comparison and one set lookup.
Refresh happens inline, by one thread at a time: `refresh_margin_s` before nextUpdate
the first check past that point downloads and loads the next CRL while every other
thread keeps using the current one (still fresh); only once nextUpdate has passed do
checks wait for, or fail without, a new CRL. After a failed download the slot waits
`retry_after_s` before trying again, so an outage does not turn every check into a
network call.

An older CRL never replaces a newer one (thisUpdate must not go backwards), so an
attacker replaying an old but unexpired CRL over plain HTTP cannot un-revoke a card.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from .chain import CheckedCertificate
from .crl import CrlError, CrlReason, RevocationList, load_crl
from .crl_sources import CrlFetchError, CrlSource, DistributionPointCrlSource
from .errors import CertificateRevoked, CrlUnavailable
from .trust import TrustAnchor


@dataclass(eq=False)
class CrlSlot:
    """The CRL state for one anchor and one CRL location."""

    anchor: TrustAnchor
    source: CrlSource | None
    location: str | None
    # (current CRL, when to refresh it): one attribute, so readers never see half an update
    current: tuple[RevocationList, float] | None = None
    digest: bytes = b""
    failed_at: float | None = None
    last_error: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)


class RevocationChecker:
    """Keeps one verified CRL per issuing anchor and location; checks serials against it."""

    def __init__(
        self,
        *,
        default_source: CrlSource | None = None,
        sources_by_anchor: Mapping[str, CrlSource] | None = None,
        refresh_margin_s: float = 300.0,
        min_refresh_interval_s: float = 60.0,
        retry_after_s: float = 30.0,
        clock_skew_s: float = 300.0,
        max_age_s: float | None = None,
        wait_s: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._default = (
            default_source if default_source is not None else (DistributionPointCrlSource())
        )
        self._by_anchor = dict(sources_by_anchor or {})
        self.refresh_margin_s = refresh_margin_s
        self.min_refresh_interval_s = min_refresh_interval_s
        self.retry_after_s = retry_after_s
        self.clock_skew_s = clock_skew_s
        self.max_age_s = max_age_s
        self.wait_s = wait_s
        self._clock = clock
        self._slots: dict[tuple[str, str | None], CrlSlot] = {}
        self._lock = threading.Lock()

    def slot_for(self, checked: CheckedCertificate) -> CrlSlot:
        """The slot whose CRL covers `checked` (created empty on first use)."""
        anchor = checked.anchor
        source = self._by_anchor.get(anchor.fingerprint, self._default)
        return self._slot(anchor, source, source.locate(checked.crl_urls))

    def _slot(self, anchor: TrustAnchor, source: CrlSource, location: str | None) -> CrlSlot:
        key = (anchor.fingerprint, location)
        with self._lock:
            slot = self._slots.get(key)
            if slot is None:
                slot = self._slots[key] = CrlSlot(anchor, source, location)
            return slot

    def warm_up(self, anchors: Iterable[TrustAnchor]) -> dict[str, str]:
        """Load now the CRL of every anchor whose source has a fixed location (file or
        URL), so that no check pays for the first load; anchor label -> error."""
        errors: dict[str, str] = {}
        for anchor in anchors:
            source = self._by_anchor.get(anchor.fingerprint, self._default)
            location = source.locate(())
            if location is None:  # distribution points: known once a certificate is seen
                continue
            try:
                self.refresh(self._slot(anchor, source, location))
            except CrlUnavailable as exc:
                errors[anchor.label] = exc.detail
        return errors

    def check(
        self, slot: CrlSlot, serial: int, now: float, *, allow_superseded: bool = False
    ) -> bool:
        """Raise CertificateRevoked if `serial` is on the slot's fresh CRL, CrlUnavailable
        when there is no fresh CRL to ask; False when it is not revoked.

        `allow_superseded` (the two-card renewal step only): an entry whose CRLReason is
        superseded (a renewed certificate) answers True instead of raising; any other
        entry (key compromise: a lost card; no reason at all) still raises.
        """
        current = slot.current
        crl = self._refresh(slot, now) if current is None or now >= current[1] else current[0]
        if serial in crl.serials:
            reason = crl.serials[serial]
            if allow_superseded and reason == CrlReason.SUPERSEDED:
                return True
            raise CertificateRevoked("on the issuer's CRL", crl_reason=reason)
        return False

    def refresh(self, slot: CrlSlot) -> RevocationList:
        """Load the slot's CRL now (warm-up, or a scheduler ahead of nextUpdate)."""
        now = self._clock()
        with slot.lock:
            try:
                return self._load(slot, now, force=True)
            except (CrlFetchError, CrlError) as exc:
                slot.failed_at, slot.last_error = now, str(exc)
                raise CrlUnavailable(str(exc)) from exc

    def refresh_all(self) -> dict[str, str]:
        """Reload every slot's CRL now (e.g. after a demo revocation); location -> error."""
        errors: dict[str, str] = {}
        for slot in self.slots():
            try:
                self.refresh(slot)
            except CrlUnavailable as exc:
                errors[str(slot.location)] = exc.detail
        return errors

    def slots(self) -> list[CrlSlot]:
        """Every slot in use (for health pages and schedulers)."""
        with self._lock:
            return list(self._slots.values())

    # slow path

    def _usable(self, slot: CrlSlot, now: float) -> RevocationList | None:
        current = slot.current
        if current is not None and now < current[0].next_update:
            return current[0]
        return None

    def _refresh(self, slot: CrlSlot, now: float) -> RevocationList:
        usable = self._usable(slot, now)
        if usable is not None:
            # Still fresh: refresh only if nobody else is; never wait.
            if not slot.lock.acquire(blocking=False):
                return usable
        elif not slot.lock.acquire(timeout=self.wait_s):
            raise CrlUnavailable("timed out waiting for the CRL refresh")
        try:
            current = slot.current
            if current is not None and now < current[1]:
                return current[0]  # another thread refreshed meanwhile
            if slot.failed_at is not None and now - slot.failed_at < self.retry_after_s:
                return self._fallback(slot, now, slot.last_error)
            try:
                return self._load(slot, now)
            except (CrlFetchError, CrlError) as exc:
                slot.failed_at = now
                slot.last_error = str(exc)
                return self._fallback(slot, now, slot.last_error)
        finally:
            slot.lock.release()

    def _fallback(self, slot: CrlSlot, now: float, why: str) -> RevocationList:
        usable = self._usable(slot, now)
        if usable is None:
            raise CrlUnavailable(why or "no CRL")
        return usable

    def _load(self, slot: CrlSlot, now: float, *, force: bool = False) -> RevocationList:
        """Fetch, verify and install the slot's CRL (caller holds slot.lock)."""
        if slot.source is None or slot.location is None:
            raise CrlFetchError("no CRL source for this certificate (no usable distribution point)")
        data = slot.source.fetch(slot.location)
        digest = hashlib.sha256(data).digest()
        current = slot.current
        if current is not None and digest == slot.digest and not force:
            crl = current[0]  # same bytes as before: no need to parse 27 MB again
        else:
            crl = load_crl(data, slot.anchor, max_age_s=self.max_age_s)
        if crl.this_update > now + self.clock_skew_s:
            raise CrlError("CRL thisUpdate is in the future (check the clock)")
        if now >= crl.next_update:
            raise CrlError("CRL is stale: its nextUpdate has passed")
        if current is not None and crl.this_update < current[0].this_update:
            raise CrlError("CRL is older than the one in use (replay?)")
        refresh_at = max(crl.next_update - self.refresh_margin_s, now + self.min_refresh_interval_s)
        slot.current = (crl, min(refresh_at, crl.next_update))
        slot.digest = digest
        slot.failed_at = None
        slot.last_error = ""
        return crl
