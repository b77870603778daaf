"""The card side of vsmartcard's vpcd protocol: plug a virtual card into pcscd.

pcscd's vpcd driver listens on TCP (127.0.0.1:35963 by default, one port per reader
slot). A virtual card connects to it; while the connection is open the reader holds a
card, and closing it removes the card. Each message, both ways, is a 2-byte big-endian
length and a payload. A 1-byte payload from the reader is a control: 00 power off,
01 power on, 02 reset (no answer for these three), 04 "send the ATR". Any longer
payload is a command APDU, answered with the response APDU.

pcscd polls card presence by asking for the ATR (several times a second), so the ATR
is answered from a cache and never powers the card: that would reset its PIN state.

Standard library only.
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import Protocol

log = logging.getLogger(__name__)

CTRL_POWER_OFF = 0x00
CTRL_POWER_ON = 0x01
CTRL_RESET = 0x02
CTRL_ATR = 0x04

# How often a blocked recv() wakes up to look at the stop event.
POLL_SECONDS = 0.1
# Reconnect back-off while vpcd is not listening (pcscd stopped or restarting).
RETRY_MIN_SECONDS = 0.05
RETRY_MAX_SECONDS = 0.5


class Card(Protocol):
    """What vpcd needs of a card (bridge.vcard.card.VirtualCard has exactly this)."""

    def power_on(self) -> bytes:
        """Power the card up (a fresh card session) and return its ATR."""
        ...

    def power_off(self) -> None:
        """Power the card down: the card session and its PIN state end."""
        ...

    def transmit(self, raw: bytes) -> bytes:
        """Answer one command APDU with one response APDU."""
        ...


class _Stopped(Exception):
    """The stop event was set while waiting on the socket."""


class _Dropped(Exception):
    """vpcd closed the connection (pcscd stopped or restarted)."""


def attach(card: Card, host: str, port: int, stop: threading.Event | None = None) -> None:
    """Insert `card` into the vpcd reader at host:port until `stop` is set.

    Reconnects whenever the reader goes away (pcscd restarted) and keeps trying while
    it is not listening. On return the socket is closed: the card is removed.
    """
    stop = stop or threading.Event()
    delay = RETRY_MIN_SECONDS
    while not stop.is_set():
        try:
            sock = socket.create_connection((host, port), timeout=1.0)
        except OSError as exc:
            log.debug("vpcd %s:%d not reachable (%s); retrying", host, port, exc)
            stop.wait(delay)
            delay = min(delay * 2, RETRY_MAX_SECONDS)
            continue
        delay = RETRY_MIN_SECONDS
        log.info("card inserted into vpcd %s:%d", host, port)
        try:
            _serve(sock, card, stop)
        except _Dropped:
            log.info("vpcd %s:%d closed the connection; reconnecting", host, port)
        except _Stopped:
            pass
        except OSError as exc:
            log.info("vpcd %s:%d connection failed (%s); reconnecting", host, port, exc)
        finally:
            sock.close()
            card.power_off()  # removed from the reader: the card loses power
    log.info("card removed from vpcd %s:%d", host, port)


def _serve(sock: socket.socket, card: Card, stop: threading.Event) -> None:
    """Answer vpcd's messages on one connection until it drops or `stop` is set."""
    _tune(sock)
    sock.settimeout(POLL_SECONDS)
    # The reader asks for the ATR before it powers the card; a card in a reader is
    # powered anyway, so learn the ATR by powering up once per insertion.
    atr = card.power_on()
    while True:
        length = int.from_bytes(_recv_exact(sock, 2, stop), "big")
        payload = _recv_exact(sock, length, stop)
        if length == 1:
            control = payload[0]
            if control == CTRL_ATR:
                _send(sock, atr)
            elif control == CTRL_POWER_ON:
                atr = card.power_on()
            elif control == CTRL_RESET:
                card.power_off()
                atr = card.power_on()
            elif control == CTRL_POWER_OFF:
                card.power_off()
            else:
                log.warning("unknown vpcd control %02X ignored", control)
        elif length:
            # Never log the payload: a VERIFY carries the PIN.
            _send(sock, card.transmit(payload))


def _tune(sock: socket.socket) -> None:
    """Disable Nagle and delayed ACKs: each costs ~40-50 ms per APDU round trip."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    _quickack(sock)


def _quickack(sock: socket.socket) -> None:
    """Re-arm TCP_QUICKACK (Linux only); the kernel clears it after some ACKs."""
    if hasattr(socket, "TCP_QUICKACK"):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)


def _recv_exact(sock: socket.socket, n: int, stop: threading.Event) -> bytes:
    """Read exactly n bytes, waking every POLL_SECONDS to honour `stop`."""
    buf = bytearray()
    while len(buf) < n:
        if stop.is_set():
            raise _Stopped
        try:
            chunk = sock.recv(n - len(buf))
        except TimeoutError:
            continue
        if not chunk:
            raise _Dropped
        _quickack(sock)
        buf += chunk
    return bytes(buf)


def _send(sock: socket.socket, payload: bytes) -> None:
    """Send one length-prefixed message (a single send: one segment, no Nagle wait)."""
    if len(payload) > 0xFFFF:
        raise ValueError(f"vpcd message too long: {len(payload)} bytes")
    sock.sendall(len(payload).to_bytes(2, "big") + payload)
