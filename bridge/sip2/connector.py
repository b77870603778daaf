"""One SIP2 connection to the library system: TCP or TLS, logged in, kept open, re-made.

`Sip2Connection.exchange(request)` sends one request and returns the system's reply, one
exchange at a time (a lock: SIP2 has no request ids, a reply is simply the next frame).
The first exchange connects, logs in with 93 (the sealed login password, opened by the
service) and checks 99. A system that dropped the connection meanwhile (most close idle
ones) shows as end-of-file or a reset on the next exchange: the connection is made
again, logged in again, and the request retried once; a second drop is
`sip2_unreachable`.

Error detection (settings `checksums`): every request carries AY (0-9, in turn) and AZ;
a reply must carry both, with our sequence number. A 96 (the system read our frame
garbled) gets the same frame once more; a reply whose checksum is wrong gets a 97 (send
it again) once; a second failure is `sip2_checksum`.

Timeouts: `connect_timeout` for TCP and the TLS handshake (`sip2_connect_timeout`),
`reply_timeout` for each reply (`sip2_timeout`). After a timeout the connection is
closed, so a late reply can never be read as the answer to the next request. TLS
verifies the system's certificate and host name against the system's CAs or the
configured CA bundle (`sip2_tls`).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
from collections.abc import Iterator

from pysip2 import (
    ACSStatusResponse,
    DecodedMessage,
    LoginRequest,
    LoginResponse,
    RequestACSResend,
    RequestSCResend,
    SCStatusRequest,
    SIP2ChecksumError,
    SIP2Error,
    SIPMessage,
)

from bridge.sip2_wire import Sip2Code, Sip2Config, Sip2Status

from . import Sip2Error as Sip2Failure
from .codec import Sip2Codec
from .projection import EXPECTED, project

log = logging.getLogger(__name__)

# A reply is at most a few hundred bytes (no item lists are ever asked for): 16 KiB caps
# what a confused system can make the bridge buffer.
MAX_REPLY = 16 * 1024
SC_STATUS = SCStatusRequest(status_code="0", max_print_width="000", protocol_version="2.00")


class _Dropped(Exception):
    """The system closed or reset the connection."""


class Sip2Connection:
    """The bridge's one connection to its library system."""

    def __init__(self, config: Sip2Config, *, login_password: str, terminal_password: str) -> None:
        self.config = config
        self.terminal_password = terminal_password
        self._login_password = login_password
        self.codec = Sip2Codec(config.charset, checksums=config.checksums)
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._buffer = bytearray()
        self._sequence = -1
        self.status: Sip2Status | None = None
        self.logins = 0  # successful 93s, for tests and logs
        self.closed = False

    def __repr__(self) -> str:
        return f"Sip2Connection({self.config.target()!r})"

    # -- public ----------------------------------------------------------------------

    def open(self) -> Sip2Status:
        """Connect and log in now (a fresh connection); the 98 projected."""
        with self._exclusive():
            self._close()
            self._login()
            assert self.status is not None  # noqa: S101 - set by _login
            return self.status

    def exchange(self, request: SIPMessage) -> SIPMessage:
        """Send one request, return the reply (of the type the request expects)."""
        with self._exclusive():
            for attempt in (0, 1):
                if self._sock is None:
                    self._login()
                try:
                    return self._round_trip(request)
                except _Dropped:
                    self._close()
                    if attempt:
                        raise Sip2Failure(
                            Sip2Code.UNREACHABLE, "the library system dropped the connection"
                        ) from None
                    log.info("the library system dropped the SIP2 connection; logging in again")
            raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        """Close the connection for good (new settings replace it)."""
        self.closed = True
        with self._lock:
            self._close()

    # -- inside the lock -------------------------------------------------------------

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        # One exchange at a time; a queue longer than a few exchanges' worth of timeouts
        # means the system is not answering: give up rather than pile up.
        wait = self.config.connect_timeout + 4 * self.config.reply_timeout
        if not self._lock.acquire(timeout=wait):
            raise Sip2Failure(Sip2Code.TIMEOUT, "the SIP2 connection is busy")
        try:
            if self.closed:
                raise Sip2Failure(Sip2Code.NOT_CONFIGURED, "these SIP2 settings were replaced")
            yield
        finally:
            self._lock.release()

    def _close(self) -> None:
        sock, self._sock = self._sock, None
        self._buffer.clear()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    def _connect(self) -> socket.socket:
        c = self.config
        try:
            sock = socket.create_connection((c.host, c.port), timeout=c.connect_timeout)
        except TimeoutError:
            raise Sip2Failure(Sip2Code.CONNECT_TIMEOUT, "no connection in time") from None
        except OSError as exc:
            raise Sip2Failure(Sip2Code.UNREACHABLE, _describe(exc)) from None
        # Each request is one whole frame, answered before the next: never hold it back
        # waiting for an ACK (Nagle).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if not c.tls:
            sock.settimeout(c.reply_timeout)
            return sock
        try:
            context = (
                ssl.create_default_context(cadata=c.ca_pem)
                if c.ca_pem
                else ssl.create_default_context()
            )
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            tls = context.wrap_socket(sock, server_hostname=c.host)
        except TimeoutError:
            sock.close()
            raise Sip2Failure(Sip2Code.CONNECT_TIMEOUT, "no TLS handshake in time") from None
        except (ssl.SSLError, ssl.CertificateError, ValueError) as exc:
            sock.close()
            raise Sip2Failure(Sip2Code.TLS, _describe(exc)) from None
        except OSError as exc:
            sock.close()
            raise Sip2Failure(Sip2Code.UNREACHABLE, _describe(exc)) from None
        tls.settimeout(c.reply_timeout)
        return tls

    def _login(self) -> None:
        self._sock = self._connect()
        c = self.config
        login = LoginRequest(
            uid_algorithm="0",
            pwd_algorithm="0",  # noqa: S106 - "0": the password is not encrypted
            login_user_id=c.login_user,
            login_password=self._login_password,
            location_code=c.location_code or None,
        )
        try:
            reply = self._round_trip(login)
        except _Dropped:
            self._close()
            raise Sip2Failure(Sip2Code.LOGIN_REFUSED, "the system hung up on the login") from None
        except Sip2Failure:
            self._close()
            raise
        assert isinstance(reply, LoginResponse)  # noqa: S101 - checked by _round_trip
        if reply.ok != "1":
            self._close()
            raise Sip2Failure(Sip2Code.LOGIN_REFUSED, "the library system refused the login")
        self.logins += 1
        try:
            status = self._round_trip(SC_STATUS)
        except _Dropped:
            self._close()
            raise Sip2Failure(Sip2Code.UNREACHABLE, "the system hung up after the login") from None
        except Sip2Failure:
            self._close()
            raise
        assert isinstance(status, ACSStatusResponse)  # noqa: S101 - checked by _round_trip
        projected = project(status)
        assert isinstance(projected, Sip2Status)  # noqa: S101 - a 98 projects to a status
        self.status = projected

    def _round_trip(self, request: SIPMessage) -> SIPMessage:
        """Send, read the reply, apply the resend rules; raise _Dropped on a drop."""
        self._sequence = (self._sequence + 1) % 10
        sequence = self._sequence
        frame = self.codec.encode(request, sequence)
        self._send(frame)
        resent = asked_again = False
        while True:
            try:
                decoded = self._receive()
            except SIP2ChecksumError:
                if asked_again:
                    self._close()
                    raise Sip2Failure(
                        Sip2Code.CHECKSUM, "replies keep failing their checksum"
                    ) from None
                asked_again = True
                self._send(self.codec.encode(RequestACSResend()))
                continue
            message = decoded.message
            if isinstance(message, RequestSCResend):
                if resent:
                    self._close()
                    raise Sip2Failure(Sip2Code.CHECKSUM, "the system keeps asking for a resend")
                resent = True
                self._send(frame)
                continue
            if self.codec.checksums and (
                decoded.checksum is None or decoded.sequence_number != sequence
            ):
                self._close()
                raise Sip2Failure(Sip2Code.CHECKSUM, "a reply without our sequence and checksum")
            if type(message) is not EXPECTED.get(type(request)):
                self._close()
                raise Sip2Failure(Sip2Code.BAD_REPLY, f"a {type(message).__name__} in reply")
            return message

    def _send(self, frame: bytes) -> None:
        assert self._sock is not None  # noqa: S101 - connected by the caller
        try:
            self._sock.sendall(frame)
        except TimeoutError:
            self._close()
            raise Sip2Failure(Sip2Code.TIMEOUT, "the library system is not reading") from None
        except OSError:
            raise _Dropped from None

    def _receive(self) -> DecodedMessage[SIPMessage]:
        """The next reply frame, decoded (SIP2ChecksumError passes through)."""
        while True:
            # Some systems end frames with CR LF: a LF before a frame is not part of it.
            while self._buffer[:1] == b"\n":
                del self._buffer[:1]
            end = self._buffer.find(b"\r")
            if end != -1:
                frame = bytes(self._buffer[: end + 1])
                del self._buffer[: end + 1]
                break
            if len(self._buffer) > MAX_REPLY:
                self._close()
                raise Sip2Failure(Sip2Code.BAD_REPLY, "a reply longer than any reply should be")
            assert self._sock is not None  # noqa: S101 - connected by the caller
            try:
                data = self._sock.recv(4096)
            except TimeoutError:
                self._close()
                raise Sip2Failure(
                    Sip2Code.TIMEOUT, "no reply from the library system in time"
                ) from None
            except OSError:
                raise _Dropped from None
            if not data:
                raise _Dropped
            self._buffer += data
        try:
            return self.codec.decode(frame)
        except SIP2ChecksumError:
            raise
        except (SIP2Error, UnicodeDecodeError, ValueError):
            self._close()
            raise Sip2Failure(Sip2Code.BAD_REPLY, "a malformed reply") from None


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]
