"""PC/SC transport over pyscard: a card in a real reader, or in a vpcd virtual reader.

Talks to pcscd (or WinSCard) through pyscard's thin `smartcard.scard` layer, so every
failure arrives as a PC/SC return code and maps to one `bridge.errors.Code`. A batch
runs inside one PC/SC transaction, and `hold()` keeps one transaction over commands
decided one after another (the bridge's sealed-PIN command: tries read, guard, VERIFY,
signature), so no other application's APDUs can slip in between a VERIFY and the
signature it unlocks; `hold(reset_after=True)` ends it with a reset of the card, and so
does closing: a verified PIN must not outlive our command for whichever application
comes next. A reset of the card (ours or another application's) is acknowledged at the
next transaction with SCardReconnect.

Never logs APDU data: a VERIFY carries the PIN.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType

from smartcard import scard

from ..apdu import Command, Response, parse_response
from ..errors import Code, TransportError
from ..transport import Batch, run_batch

log = logging.getLogger(__name__)

# No card in the reader (at connect), or taken out (later).
_CARD_GONE = frozenset({scard.SCARD_E_NO_SMARTCARD, scard.SCARD_W_REMOVED_CARD})
# The reader is gone or was never there. Windows stops the smart-card service when the
# last reader is unplugged, so "no service" is "no reader" there.
_READER_GONE = frozenset(
    {
        scard.SCARD_E_UNKNOWN_READER,
        scard.SCARD_E_READER_UNAVAILABLE,
        scard.SCARD_E_NO_READERS_AVAILABLE,
        scard.SCARD_E_NO_SERVICE,
        scard.SCARD_E_SERVICE_STOPPED,
    }
)
# ISO 7816-3 T=0 procedure bytes a transport must handle itself (12.2.4, 12.2.5).
_SW1_MORE_DATA = 0x61
_SW1_WRONG_LE = 0x6C
# Bound on GET RESPONSE rounds: 64 x 256 bytes covers any JPKI answer many times over.
_MAX_GET_RESPONSE = 64
# How long a failed transfer waits for the reader to report the card gone (pcscd polls
# vpcd's presence every 400 ms; a CCID reader reports at once). Generous: taking a gone
# card for present resets it, and vpcd then stalls the reader for good (`_drop`). At
# 0.6 s a loaded machine's pcscd noticed too late: a pull mid-read hung the command and
# the removal was never reported (CI failures of the PC/SC pull tests). The wait ends as
# soon as the removal is seen, so only a card truly still present waits it out.
REMOVAL_NOTICE_S = 2.0


def _error(hresult: int, doing: str, *, gone: Code = Code.NO_CARD) -> TransportError:
    """A TransportError for a PC/SC return code; `gone` is the code for card-absent."""
    message = f"{doing}: {scard.SCardGetErrorMessage(hresult)} (0x{hresult & 0xFFFFFFFF:08X})"
    if hresult in _CARD_GONE:
        return TransportError(message, code=gone)
    if hresult in _READER_GONE:
        return TransportError(message, code=Code.READER_MISSING)
    if hresult == scard.SCARD_E_TIMEOUT:
        return TransportError(message, code=Code.TIMEOUT)
    return TransportError(message, code=Code.TRANSPORT)


def _pci(protocol: int) -> int:
    """The protocol control information for the protocol the card was connected with."""
    pci: int = scard.SCARD_PCI_T0 if protocol == scard.SCARD_PROTOCOL_T0 else scard.SCARD_PCI_T1
    return pci


class PcscContext:
    """A PC/SC resource-manager context (SCardEstablishContext); a context manager."""

    def __init__(self) -> None:
        hresult, self.handle = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        if hresult != scard.SCARD_S_SUCCESS:
            raise _error(hresult, "connecting to the PC/SC service")

    def __enter__(self) -> PcscContext:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        """Release the context (idempotent)."""
        if self.handle is not None:
            scard.SCardReleaseContext(self.handle)
            self.handle = None

    def readers(self) -> list[str]:
        """Names of the connected readers; empty when there are none."""
        hresult, names = scard.SCardListReaders(self.handle, [])
        if hresult == scard.SCARD_E_NO_READERS_AVAILABLE:
            return []
        if hresult != scard.SCARD_S_SUCCESS:
            raise _error(hresult, "listing readers")
        return list(names)

    def card_present(self, reader: str) -> bool:
        """Is there a card in `reader`? (READER_MISSING if no such reader.)"""
        if self.handle is None:
            raise TransportError("the PC/SC context was released", code=Code.TRANSPORT)
        hresult, states = scard.SCardGetStatusChange(
            self.handle, 0, [(reader, scard.SCARD_STATE_UNAWARE)]
        )
        if hresult != scard.SCARD_S_SUCCESS:
            raise _error(hresult, f"reading the state of {reader!r}")
        return bool(states[0][1] & scard.SCARD_STATE_PRESENT)


def list_readers() -> list[str]:
    """Names of the readers PC/SC knows; empty when there are none or no service."""
    try:
        with PcscContext() as ctx:
            return ctx.readers()
    except TransportError as exc:
        if exc.code == Code.READER_MISSING:
            return []
        raise


def pick_reader(ctx: PcscContext, wanted: str | None) -> str:
    """The first reader whose name contains `wanted`, else the first one holding a card."""
    names = ctx.readers()
    if not names:
        raise TransportError("no card reader connected", code=Code.READER_MISSING)
    if wanted is not None:
        for name in names:
            if wanted in name:
                return name
        raise TransportError(f"no reader matching {wanted!r}", code=Code.READER_MISSING)
    for name in names:
        if ctx.card_present(name):
            return name
    raise TransportError("no card in any reader", code=Code.NO_CARD)


class PcscTransport:
    """`bridge.transport.Transport` over PC/SC; connects lazily, one card at a time."""

    def __init__(self, reader: str | None = None, *, reset_on_close: bool = True) -> None:
        self.wanted = reader
        self.reset_on_close = reset_on_close
        self.reader: str | None = None
        self._ctx: PcscContext | None = None
        self._card: int | None = None
        self._pci = scard.SCARD_PCI_T1

    def __enter__(self) -> PcscTransport:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def connected(self) -> bool:
        """True while a card handle is open."""
        return self._card is not None

    def connect(self) -> None:
        """Open the reader and the card (T=1 preferred, else T=0 or T=1); idempotent."""
        if self._card is not None:
            return
        if self._ctx is None:
            self._ctx = PcscContext()
        try:
            self.reader = pick_reader(self._ctx, self.wanted)
            self._card, self._pci = self._connect_card(self.reader)
        except TransportError:
            self.close()
            raise
        log.debug("connected to a card in %r", self.reader)

    def _connect_card(self, reader: str) -> tuple[int, int]:
        assert self._ctx is not None  # noqa: S101 - set by connect()
        hresult, card, protocol = 0, 0, 0
        for wanted in (scard.SCARD_PROTOCOL_T1, scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1):
            hresult, card, protocol = scard.SCardConnect(
                self._ctx.handle, reader, scard.SCARD_SHARE_SHARED, wanted
            )
            if hresult != scard.SCARD_E_PROTO_MISMATCH:
                break
        if hresult != scard.SCARD_S_SUCCESS:
            raise _error(hresult, f"connecting to the card in {reader!r}")
        return card, _pci(protocol)

    def close(self, *, reset: bool | None = None) -> None:
        """Disconnect (resetting the card unless told not to) and release the context."""
        card, self._card = self._card, None
        if card is not None:
            reset = self.reset_on_close if reset is None else reset
            how = scard.SCARD_RESET_CARD if reset else scard.SCARD_LEAVE_CARD
            scard.SCardDisconnect(card, how)
        if self._ctx is not None:
            self._ctx.release()
            self._ctx = None

    def vanished(self) -> None:
        """The card left the reader: release the handle and the context, never resetting
        (nothing is left to reset, and a reset sent while the reader may still count the
        card as present cannot reach it: vpcd then stalls the reader for good, `_drop`)."""
        self.close(reset=False)

    def transmit(self, batch: Batch) -> list[Response]:
        """Send a batch inside one PC/SC transaction (see `bridge.transport.Transport`)."""
        with self.hold() as send:
            return run_batch(send, batch)

    @contextmanager
    def hold(self, *, reset_after: bool = False) -> Iterator[Callable[[Command], Response]]:
        """One PC/SC transaction for as long as the block runs; yields a one-APDU send.

        Other applications sharing the card wait until it ends, so commands the caller
        decides one after another (read the tries, then VERIFY or not) meet the card in
        the state the caller left it. Do not call `transmit` inside the block.

        `reset_after` ends the transaction by resetting the card: a PIN verified inside
        the block is then no longer verified for whichever application comes next.
        """
        self.connect()
        assert self._card is not None  # noqa: S101 - set by connect()
        hresult = scard.SCardBeginTransaction(self._card)
        if hresult == scard.SCARD_W_RESET_CARD:
            # The card was reset since our last transaction (by us, or by another
            # application): take the new card session and go on.
            self._reconnect()
            hresult = scard.SCardBeginTransaction(self._card)
        if hresult != scard.SCARD_S_SUCCESS:
            raise self._lost(hresult, "starting a transaction")
        how = scard.SCARD_RESET_CARD if reset_after else scard.SCARD_LEAVE_CARD
        try:
            yield self._send_one
        finally:
            if self._card is not None:  # None when a failure closed the handle
                scard.SCardEndTransaction(self._card, how)

    def _reconnect(self) -> None:
        """Acknowledge a reset of the card on our handle (SCardReconnect, card left as is)."""
        assert self._card is not None  # noqa: S101 - only with an open handle
        hresult, protocol = scard.SCardReconnect(
            self._card,
            scard.SCARD_SHARE_SHARED,
            scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1,
            scard.SCARD_LEAVE_CARD,
        )
        if hresult != scard.SCARD_S_SUCCESS:
            raise self._lost(hresult, "reconnecting after a reset of the card")
        self._pci = _pci(protocol)

    def _send_one(self, command: Command) -> Response:
        """One command, with the T=0 procedure: 6Cxx re-send once, 61xx GET RESPONSE."""
        response = parse_response(self._transmit_raw(command))
        if response.sw >> 8 == _SW1_WRONG_LE and (command.le is not None or not command.data):
            le = response.sw & 0xFF or 256
            retry = Command(command.cla, command.ins, command.p1, command.p2, command.data, le)
            response = parse_response(self._transmit_raw(retry))
        data = bytearray(response.data)
        rounds = 0
        while response.sw >> 8 == _SW1_MORE_DATA and rounds < _MAX_GET_RESPONSE:
            rounds += 1
            get = Command(0x00, 0xC0, 0x00, 0x00, le=response.sw & 0xFF or 256)
            response = parse_response(self._transmit_raw(get))
            data += response.data
        return Response(bytes(data), response.sw)

    def _transmit_raw(self, command: Command) -> bytes:
        assert self._card is not None  # noqa: S101 - set by connect()
        hresult, raw = scard.SCardTransmit(self._card, self._pci, list(command.encode()))
        if hresult != scard.SCARD_S_SUCCESS:
            # Command's repr shows the header and lengths only, never the data.
            raise self._lost(hresult, f"sending {command!r}")
        if len(raw) < 2:
            self._drop(self._card_absent())
            raise TransportError(f"no status word in the answer to {command!r}")
        return bytes(raw)

    def _lost(self, hresult: int, doing: str) -> TransportError:
        """Map a failure on an open card; drop the handle so the next batch reconnects."""
        error = _error(hresult, doing, gone=Code.CARD_REMOVED)
        gone = error.code in (Code.CARD_REMOVED, Code.NO_CARD)
        if error.code == Code.TRANSPORT and self._card_absent():
            # vpcd and some drivers report a vanished card as a failed transfer first.
            error = TransportError(str(error), code=Code.CARD_REMOVED)
            gone = True
        self._drop(gone)
        return error

    def _drop(self, gone: bool) -> None:
        """Close after a failed transfer: reset a card that is still there (whatever
        the failed command left, a verified PIN included, must not outlive it), but
        never one that has gone. A reset sent while the reader still counts a vanished
        card as present cannot reach it, and vpcd then stalls the reader for good (the
        next card is never seen): pulling the card mid-read is what counters do all day.
        """
        self.close(reset=self.reset_on_close and not gone)

    def _card_absent(self) -> bool:
        """After a failed transfer: is the card gone from the reader? The reader may
        report the removal a little after the transfer failed (pcscd polls vpcd every
        ~400 ms): wait that long for it before taking the card for present."""
        # The bridge closes this transport from another thread when the removal is
        # reported: keep our own references, and a closed one means the card is gone.
        ctx, reader = self._ctx, self.reader
        if ctx is None or reader is None:
            return ctx is None
        deadline = time.monotonic() + REMOVAL_NOTICE_S
        try:
            while ctx.card_present(reader):
                if time.monotonic() >= deadline:
                    return False
                if self._ctx is None:
                    return True
                time.sleep(0.02)
        except TransportError:
            return True
        return True
