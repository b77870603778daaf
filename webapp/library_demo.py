"""A demo library system that speaks SIP2: for tests, benches and demos of verified links.

Built on pysip2's SIP2Server (AnyIO). Its patrons hold numbers of the demo library's
own rule (webapp/demo_data.py: 10 digits, the last a 7DR check digit) and Japanese
names; replies carry everything a real system sends (name, fees, address, e-mail,
phone, screen messages), so tests can show none of it leaves the bridge.

| number | password | name | what it shows |
|---|---|---|---|
| 0000000011 | hanako-0011 | 山田 花子 | a valid patron (the demo's linked number) |
| 0000000022 | paul-0022 | 佐藤 ポール | valid; "ポ" is 0x83 0x7C in Shift_JIS ("|" as a byte) |
| 0000000033 | ichiro-0033 | 鈴木 一郎 | blocked: BL=N |
| 0000000044 | misaki-0044 | 高橋 美咲 | expired: charge, renewal, recall, hold privileges denied |
| 0000000055 | kenta-0055 | 田中 健太 | card reported lost (and charge privileges denied) |
| 0000000066 | 図書館パス66 | 伊藤 さくら | a Japanese password |

Login: user `ichimai-bridge`, password `demo-sip2-login`, location `JP-1000001`;
institution `JP-1000001`; terminal password `demo-terminal` (AC), checked when set.

    python -m webapp.library_demo --port 6001 [--host 127.0.0.1] [--charset shift_jis]
        [--checksums] [--tls CERT KEY] [--no-23] [--terminal-password PW]

In tests: `with DemoLibrary(charset="shift_jis", checksums=True) as lib: lib.port`;
`lib.received` is every frame that arrived, raw (`lib.commands()` their codes), whether
or not pysip2 could decode it; `lib.drop_connections()` hangs up on every client, as a
system restarting or closing idle sessions does.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import ssl
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import ByteStream, SocketStream
from anyio.from_thread import BlockingPortal, start_blocking_portal
from anyio.streams.tls import TLSListener
from pysip2 import (
    BLOCK_PATRON,
    CHECKIN,
    CHECKOUT,
    END_PATRON_SESSION,
    FEE_PAID,
    HOLD,
    ITEM_INFORMATION,
    LOGIN,
    PATRON_INFORMATION,
    PATRON_STATUS,
    RENEW,
    EndPatronSessionRequest,
    EndSessionResponse,
    LoginRequest,
    LoginResponse,
    PatronInformationRequest,
    PatronInformationResponse,
    PatronStatusRequest,
    PatronStatusResponse,
    SIP2Server,
    SIP2UnsupportedOperation,
)

from .demo_data import LIBRARY_CODE, library_number

log = logging.getLogger(__name__)

LOGIN_USER = "ichimai-bridge"
LOGIN_PASSWORD = "demo-sip2-login"  # noqa: S105 - the demo system's own
TERMINAL_PASSWORD = "demo-terminal"  # noqa: S105 - the demo system's own
INSTITUTION = LIBRARY_CODE
LOCATION = LIBRARY_CODE
LIBRARY_NAME = "いちまい市立中央図書館"
LIBRARY_NAME_LATIN = "Ichimai City Central Library"
HOME = "いちまい市本町1-2-3"
HOME_LATIN = "1-2-3 Honcho, Ichimai"
CHARSETS = {"utf-8": "utf-8", "shift_jis": "cp932", "cp850": "cp850"}


def _flags(*positions: int) -> str:
    return "".join("Y" if i in positions else " " for i in range(14))


@dataclass(frozen=True)
class DemoPatron:
    """A patron of the demo library system."""

    number: str
    password: str
    name: str
    valid: bool = True
    status: str = " " * 14  # the 14 patron-status flags
    note: str = ""
    latin: str = ""  # the name where the character set has no kanji (cp850)


PATRONS: tuple[DemoPatron, ...] = (
    DemoPatron(library_number(1), "hanako-0011", "山田 花子", note="valid", latin="YAMADA Hanako"),
    DemoPatron(
        library_number(2),
        "paul-0022",
        "佐藤 ポール",
        note="valid; 0x7C in Shift_JIS",
        latin="SATO Paul",
    ),
    DemoPatron(
        library_number(3),
        "ichiro-0033",
        "鈴木 一郎",
        valid=False,
        note="blocked",
        latin="SUZUKI Ichiro",
    ),
    DemoPatron(
        library_number(4),
        "misaki-0044",
        "高橋 美咲",
        status=_flags(0, 1, 2, 3),
        note="expired",
        latin="TAKAHASHI Misaki",
    ),
    DemoPatron(
        library_number(5),
        "kenta-0055",
        "田中 健太",
        status=_flags(0, 4),
        note="lost",
        latin="TANAKA Kenta",
    ),
    DemoPatron(
        library_number(6),
        "図書館パス66",
        "伊藤 さくら",
        note="Japanese password",
        latin="ITO Sakura",
    ),
)
BY_NUMBER: Mapping[str, DemoPatron] = {p.number: p for p in PATRONS}


@dataclass(frozen=True)
class Received:
    """One frame as it arrived (CR included), whatever it was."""

    connection: int
    raw: bytes

    @property
    def command(self) -> str:
        """Its first two characters: the command code if it is SIP2 at all."""
        return self.raw[:2].decode("ascii", "replace")


class _Recording(ByteStream):
    """A client's stream, recording every byte it receives, frame by frame."""

    def __init__(self, stream: ByteStream, number: int, library: DemoLibrary) -> None:
        self.stream = stream
        self.number = number
        self.library = library
        self._partial = bytearray()

    async def receive(self, max_bytes: int = 65536) -> bytes:
        data = await self.stream.receive(max_bytes)
        self._partial += data
        while (end := self._partial.find(b"\r")) != -1:
            self.library._record(Received(self.number, bytes(self._partial[: end + 1])))
            del self._partial[: end + 1]
        return data

    async def send(self, item: bytes) -> None:
        await self.stream.send(item)

    async def send_eof(self) -> None:
        await self.stream.send_eof()

    async def aclose(self) -> None:
        await self.stream.aclose()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return self.stream.extra_attributes


class DemoLibrary:
    """The demo library system on 127.0.0.1:<port> (0 = a free port), in a thread."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        charset: str = "utf-8",
        checksums: bool = False,
        tls: tuple[Path, Path] | None = None,
        patron_status: bool = True,
        login_user: str = LOGIN_USER,
        login_password: str = LOGIN_PASSWORD,
        terminal_password: str | None = TERMINAL_PASSWORD,
        patrons: tuple[DemoPatron, ...] = PATRONS,
    ) -> None:
        self.host, self.port = host, port
        self.charset, self.checksums, self.tls = charset, checksums, tls
        self.login_user, self.login_password = login_user, login_password
        self.terminal_password = terminal_password
        self.patrons = {p.number: p for p in patrons}
        self.kanji = charset != "cp850"
        self.received: list[Received] = []
        self.logins: list[tuple[str, bool]] = []  # (user, accepted); never the password
        self._lock = threading.Lock()
        self._streams: set[_Recording] = set()
        self._connections = 0
        self._portal: BlockingPortal | None = None
        self._portal_cm: Any = None
        self._serving: Any = None
        self._listener: Any = None
        self.server = self._make_server(patron_status)

    # -- what arrived ---------------------------------------------------------------

    def _record(self, frame: Received) -> None:
        with self._lock:
            self.received.append(frame)

    def commands(self) -> Counter[str]:
        """How many frames of each command code arrived."""
        with self._lock:
            return Counter(r.command for r in self.received)

    def raw(self) -> bytes:
        """Every byte that arrived, in order."""
        with self._lock:
            return b"".join(r.raw for r in self.received)

    def clear(self) -> None:
        """Forget what arrived so far."""
        with self._lock:
            self.received.clear()
            self.logins.clear()

    # -- the SIP2 server ------------------------------------------------------------

    def _make_server(self, patron_status: bool) -> SIP2Server:
        server = SIP2Server(
            error_detection="required" if self.checksums else "auto",
            encoding=CHARSETS[self.charset],
            institution_id=INSTITUTION,
            library_name=LIBRARY_NAME if self.kanji else LIBRARY_NAME_LATIN,
            login_required=True,
        )

        @server.route(LOGIN)
        def login(req: LoginRequest, ctx: Any) -> LoginResponse:
            ok = req.login_user_id == self.login_user and req.login_password == self.login_password
            with self._lock:
                self.logins.append((req.login_user_id, ok))
            return LoginResponse(ok="1" if ok else "0")

        @server.route(PATRON_INFORMATION)
        def patron_information(
            req: PatronInformationRequest, ctx: Any
        ) -> PatronInformationResponse:
            patron, valid, password_ok = self._check(req)
            return PatronInformationResponse(
                patron_status=patron.status if patron else " " * 14,
                language=req.language,
                transaction_date=ctx.now_18(),
                hold_items_count="0001",
                overdue_items_count="0002",
                charged_items_count="0003",
                fine_items_count="0001",
                recall_items_count="0000",
                unavailable_holds_count="0000",
                institution_id=req.institution_id,
                patron_identifier=req.patron_identifier,
                personal_name=self._name(patron),
                valid_patron="Y" if valid else "N",
                valid_patron_password=password_ok,
                currency_type="JPY",
                fee_amount="300",
                fee_limit="1000",
                home_address=(HOME if self.kanji else HOME_LATIN) if patron else None,
                email_address="patron@example.jp" if patron else None,
                home_phone_number="012-345-6789" if patron else None,
                screen_message=(f"{self._name(patron)}: 2 overdue",) if patron else (),
            )

        if patron_status:

            @server.route(PATRON_STATUS)
            def patron_status_(req: PatronStatusRequest, ctx: Any) -> PatronStatusResponse:
                patron, valid, password_ok = self._check(req)
                return PatronStatusResponse(
                    patron_status=patron.status if patron else " " * 14,
                    language=req.language,
                    transaction_date=ctx.now_18(),
                    institution_id=req.institution_id,
                    patron_identifier=req.patron_identifier,
                    personal_name=self._name(patron),
                    valid_patron="Y" if valid else "N",
                    valid_patron_password=password_ok,
                    currency_type="JPY",
                    fee_amount="300",
                    screen_message=(f"{self._name(patron)}: 2 overdue",) if patron else (),
                )

        @server.route(END_PATRON_SESSION)
        def end_session(req: EndPatronSessionRequest, ctx: Any) -> EndSessionResponse:
            return EndSessionResponse(
                end_session="Y",
                transaction_date=ctx.now_18(),
                institution_id=req.institution_id,
                patron_identifier=req.patron_identifier,
                screen_message=("Thank you",),
            )

        # What a real system also offers (and BX shows): refused here, and the bridge
        # never lets any of it through (tests assert it never arrives).
        def decline(req: Any, ctx: Any) -> Any:
            raise SIP2UnsupportedOperation("demo")

        for route in (CHECKOUT, CHECKIN, RENEW, FEE_PAID, BLOCK_PATRON, HOLD, ITEM_INFORMATION):
            server.route(route)(decline)
        return server

    def _name(self, patron: DemoPatron | None) -> str:
        if patron is None:
            return ""
        return patron.name if self.kanji else patron.latin

    def _check(
        self, req: PatronInformationRequest | PatronStatusRequest
    ) -> tuple[DemoPatron | None, bool, str | None]:
        """(the patron, valid patron, CQ) for a request; CQ None when no AD was sent."""
        patron = self.patrons.get(req.patron_identifier)
        terminal_ok = self.terminal_password is None or (
            req.terminal_password == self.terminal_password
        )
        valid = patron is not None and patron.valid and terminal_ok
        if req.patron_password is None:
            return patron, valid, None
        right = patron is not None and terminal_ok and req.patron_password == patron.password
        return patron, valid, "Y" if right else "N"

    # -- serving --------------------------------------------------------------------

    async def _listen(self) -> tuple[Any, int]:
        listener: Any = await self.server.listen(self.host, self.port)
        port = int(listener.extra(anyio.abc.SocketAttribute.local_port))  # noqa: S610
        if self.tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(self.tls[0]), str(self.tls[1]))
            listener = TLSListener(listener, context, standard_compatible=False)
        return listener, port

    async def _handle(self, stream: SocketStream) -> None:
        with self._lock:
            self._connections += 1
            recording = _Recording(stream, self._connections, self)
            self._streams.add(recording)
        try:
            # pysip2's per-connection loop (a private method of the pinned version): the
            # listener is our own, to add TLS and the recording.
            await self.server._handle_connection(recording)  # type: ignore[arg-type]
        finally:
            with self._lock:
                self._streams.discard(recording)

    def start(self) -> DemoLibrary:
        """Serve in a thread of its own; `port` is then the bound port."""
        self._portal_cm = start_blocking_portal()
        self._portal = self._portal_cm.__enter__()
        listener, self.port = self._portal.call(self._listen)
        self._listener = listener
        self._serving = self._portal.start_task_soon(listener.serve, self._handle)
        return self

    def stop(self) -> None:
        """Stop serving and hang up on every client."""
        if self._portal is None:
            return
        self._serving.cancel()
        with contextlib.suppress(Exception):
            self._portal.call(self._close_all)
        with contextlib.suppress(Exception):
            self._portal.call(self._listener.aclose)
        self._portal_cm.__exit__(None, None, None)
        self._portal = None

    async def _close_all(self) -> None:
        with self._lock:
            streams = list(self._streams)
        for stream in streams:
            with contextlib.suppress(Exception):
                await stream.aclose()

    def drop_connections(self) -> int:
        """Hang up on every connected client now; how many there were."""
        assert self._portal is not None  # noqa: S101 - started
        with self._lock:
            count = len(self._streams)
        self._portal.call(self._close_all)
        return count

    def connected(self) -> int:
        """Clients connected now."""
        with self._lock:
            return len(self._streams)

    def __enter__(self) -> DemoLibrary:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    """Serve the demo library system until interrupted."""
    parser = argparse.ArgumentParser(description="a demo library system speaking SIP2")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6001)
    parser.add_argument("--charset", choices=sorted(CHARSETS), default="utf-8")
    parser.add_argument("--checksums", action="store_true", help="require AY/AZ")
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"), help="serve TLS")
    parser.add_argument("--no-23", action="store_true", help="no Patron Status (like FOLIO)")
    parser.add_argument("--terminal-password", default=TERMINAL_PASSWORD)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    library = DemoLibrary(
        host=args.host,
        port=args.port,
        charset=args.charset,
        checksums=args.checksums,
        tls=(Path(args.tls[0]), Path(args.tls[1])) if args.tls else None,
        patron_status=not args.no_23,
        terminal_password=args.terminal_password or None,
    )
    with library:
        scheme = "tls" if args.tls else "tcp"
        print(f"demo library system on {scheme}://{args.host}:{library.port} ({args.charset})")
        print(f"login {LOGIN_USER} / {LOGIN_PASSWORD}, institution {INSTITUTION}")
        for p in PATRONS:
            print(f"  {p.number}  {p.password:<14} {p.name}  ({p.note})")
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
