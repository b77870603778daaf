"""Where readers and cards come from: PC/SC (every reader, hot-plug) or a virtual card.

A watcher tells the `BridgeSession` about readers and cards as they come and go; the
session gives each inserted card its epoch and its firewall.

- `PcscReaders` uses pyscard's monitoring (`ReaderMonitor`, `CardMonitor`): it watches
  every reader PC/SC knows, including readers plugged in later, and opens a
  `PcscTransport` per inserted card (a new PC/SC connection, so a new card session).
- `SimReader` (`python -m bridge run --sim CARD`) holds one virtual card in-process; the
  card can be pulled out and put back (`remove()`, `insert()`, or SIGUSR1 when run from
  the command line), also in the middle of a command (`pull_after(n)`).
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .apdu import Command, Response
from .errors import Code, TransportError
from .session import BridgeSession
from .transport import Batch, Step, run_batch

if TYPE_CHECKING:  # the virtual card is in the checkout only, not in the bridge's wheel
    from .vcard.card import VirtualCard
    from .vcard.transport import VirtualCardTransport

log = logging.getLogger(__name__)

SIM_READER = "Ichimai Virtual Reader 00 00"


class ReaderWatcher(Protocol):
    """Feeds reader and card events into a session until stopped."""

    def start(self, session: BridgeSession) -> None:
        """Report the readers and cards present now, then every change."""
        ...

    def stop(self) -> None:
        """Stop watching (idempotent)."""
        ...


class _SimLink:
    """The virtual card's transport, which can pull the card out mid-command."""

    def __init__(self, reader: SimReader, inner: VirtualCardTransport) -> None:
        self.reader = reader
        self.inner = inner
        self.pull_after: int | None = None

    def transmit(self, batch: Batch) -> list[Response]:
        """Send to the virtual card; CARD_REMOVED once the card is pulled."""
        return run_batch(self._send_one, batch)

    def _send_one(self, command: Command) -> Response:
        if self.pull_after is not None and self.inner.apdu_count >= self.pull_after:
            self.reader.remove()
        responses = self.inner.transmit([Step(command)])
        return responses[0]

    def close(self) -> None:
        """The card left the reader: end its card session."""
        if not self.inner.removed:
            self.inner.remove()


class SimReader:
    """One virtual reader holding one virtual card (a card file), in this process."""

    def __init__(self, card: VirtualCard | Path | str, name: str = SIM_READER) -> None:
        from .vcard.card import VirtualCard

        self.card = card if isinstance(card, VirtualCard) else VirtualCard.from_file(card)
        self.name = name
        self.session: BridgeSession | None = None
        self.link: _SimLink | None = None
        self._lock = threading.Lock()

    def start(self, session: BridgeSession) -> None:
        """Plug the reader in with the card on it."""
        self.session = session
        session.add_reader(self.name)
        self.insert()

    def stop(self) -> None:
        """Unplug the reader."""
        if self.session is not None:
            self.session.remove_reader(self.name)

    @property
    def present(self) -> bool:
        """True while the card is on the reader."""
        return self.link is not None

    def insert(self) -> int:
        """Put the card on the reader (a new card session); returns the new epoch."""
        if self.session is None:
            raise RuntimeError("reader not started")
        from .vcard.transport import VirtualCardTransport

        with self._lock:
            self.link = _SimLink(self, VirtualCardTransport(self.card))
            link = self.link
        return self.session.insert_card(self.name, link.inner.atr, link)

    def remove(self) -> None:
        """Take the card off the reader."""
        with self._lock:
            self.link = None
        if self.session is not None:
            self.session.remove_card(self.name)

    def toggle(self) -> None:
        """Remove the card if present, else insert it (SIGUSR1 on the command line)."""
        if self.present:
            self.remove()
        else:
            self.insert()

    def pull_after(self, apdus: int) -> None:
        """Pull the card out once `apdus` more APDUs have reached it (tests, demos)."""
        link = self.link
        if link is None:
            raise TransportError("no card on the reader", code=Code.NO_CARD)
        link.pull_after = link.inner.apdu_count + apdus


class PcscReaders:
    """Every PC/SC reader and card, through pyscard's reader and card monitors.

    `only`: serve just the readers whose name contains this text (`--reader`), e.g. when
    two bridges on one machine each serve their own reader.
    """

    def __init__(self, only: str | None = None) -> None:
        self.only = only
        self.session: BridgeSession | None = None
        self._reader_monitor: Any = None
        self._card_monitor: Any = None
        self._observers: list[Any] = []

    def start(self, session: BridgeSession) -> None:
        """Start pyscard's monitors; they report what is present now, then changes."""
        from smartcard.CardMonitoring import CardMonitor, CardObserver
        from smartcard.ReaderMonitoring import ReaderMonitor, ReaderObserver

        self.session = session
        watcher = self

        class _Readers(ReaderObserver):  # type: ignore[misc]
            def update(self, observable: Any, handlers: Any) -> None:
                added, removed = handlers
                for reader in added:
                    if watcher.serves(str(reader)):
                        watcher._safe(session.add_reader, str(reader))
                for reader in removed:
                    if watcher.serves(str(reader)):
                        watcher._safe(session.remove_reader, str(reader))

        class _Cards(CardObserver):  # type: ignore[misc]
            def update(self, observable: Any, handlers: Any) -> None:
                added, removed = handlers
                # pyscard compares the (reader, ATR) pairs present before and after a
                # change: a reader in both lists kept a card present while its ATR
                # changed (a reset answered with another ATR). Nobody was seen taking a
                # card off, so that card session is no re-tap for the last PIN try.
                swapped = {str(c.reader) for c in added} & {str(c.reader) for c in removed}
                for card in removed:
                    if watcher.serves(str(card.reader)):
                        watcher._safe(session.remove_card, str(card.reader))
                for card in added:
                    reader = str(card.reader)
                    if watcher.serves(reader):
                        retap = reader not in swapped
                        watcher._safe(watcher._inserted, reader, bytes(card.atr), retap)

        self._reader_monitor = ReaderMonitor()
        self._card_monitor = CardMonitor()
        readers, cards = _Readers(), _Cards()
        self._observers = [(self._reader_monitor, readers), (self._card_monitor, cards)]
        self._reader_monitor.addObserver(readers)
        self._card_monitor.addObserver(cards)

    def serves(self, reader: str) -> bool:
        """Whether this watcher serves `reader` (all readers unless `only` was given)."""
        return self.only is None or self.only in reader

    def _inserted(self, reader: str, atr: bytes, retap: bool = True) -> None:
        from .transports.pcsc import PcscTransport

        assert self.session is not None  # noqa: S101 - set by start()
        self.session.insert_card(reader, atr, PcscTransport(reader), retap=retap)

    @staticmethod
    def _safe(call: Any, *args: Any) -> None:
        try:
            call(*args)
        except Exception:  # a monitor thread must survive one bad event
            log.exception("handling a reader event failed")

    def stop(self) -> None:
        """Stop observing; pyscard's monitor threads end with their last observer."""
        for monitor, observer in self._observers:
            try:
                monitor.deleteObserver(observer)
            except Exception:
                log.debug("removing a pyscard observer failed", exc_info=True)
        if self._observers:
            try:
                _stop_card_monitor()
            except Exception:
                log.debug("stopping pyscard's card monitor failed", exc_info=True)
        self._observers = []


def _stop_card_monitor(timeout: float = 5.0) -> None:
    """End pyscard's card monitoring thread once nothing observes it; release its context.

    Unlike the reader monitor, pyscard starts that thread with the first `CardMonitor` and
    never stops it (CardMonitoring._START_ON_DEMAND_ is False). Its `CardRequest` holds a
    PC/SC context until the interpreter exits, and releasing it then fails when pcscd has
    gone meanwhile ("Exception ignored in PCSCCardRequest.__del__"). SCardCancel cuts its
    60 s wait short (pyscard takes that as a timeout and looks at the stop flag).
    """
    from smartcard.CardMonitoring import CardMonitor, CardMonitoringThread
    from smartcard.scard import SCardCancel

    with CardMonitor.lock:
        monitor = CardMonitor.instance
        if monitor is None or monitor.countObservers():
            return
        CardMonitor.instance = None  # the next CardMonitor() starts a fresh thread
    with CardMonitoringThread.lock:
        thread, CardMonitoringThread.instance = CardMonitoringThread.instance, None
    if thread is None:
        return
    thread.stop()
    deadline = time.monotonic() + timeout
    while thread.is_alive() and time.monotonic() < deadline:
        request = thread.cardrequest  # None until the thread has made it
        if request is not None and request.pcsccardrequest.hcontext is not None:
            SCardCancel(request.pcsccardrequest.hcontext)
        thread.join(0.05)
    if thread.is_alive():
        log.debug("pyscard's card monitor did not stop in %.0f s", timeout)
    elif thread.cardrequest is not None:
        thread.cardrequest.pcsccardrequest.release()
