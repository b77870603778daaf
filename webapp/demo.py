"""`python -m webapp.demo` (`make demo`): the whole product on this machine, with virtual cards.

Builds var/demo/ afresh: a demo J-LIS (bridge.vcard.jlis), four cards (registered, new,
revoked, locked PIN; PIN 1234), a SQLite database with a demo library (ISIL JP-1000001,
NW-7 patron numbers) and a museum, staff logins, a counter and a kiosk terminal, and a
points city whose museum (a merchant) has a shop till bound to it in the database, with
a merchant staff login and 500 points on the registered card. Then it
serves the platform (threaded werkzeug, in-process bus, ICHIMAI_DEMO mode), starts a pcscd
of its own with one vpcd reader per terminal, and pairs and runs one bridge process per
terminal, each on its own reader (`python -m bridge run --reader ...`). The virtual
reader panel (/demo/reader) taps cards into those readers. Where pcscd cannot run, the
bridges fall back to `--sim` (the panel then restarts a bridge with the tapped card).

`DemoStack` is also the end-to-end tests' stack (tests/e2e).
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy.orm import Session
from werkzeug.serving import BaseWSGIServer

from bridge.vcard.cardfile import CardFile, card_data_from_issued
from bridge.vcard.jlis import DemoJLIS

from . import create_app, db, library_demo
from .bus import get_bus
from .cardflow import verifier_for
from .cardflow.cli import CRL_CHANNEL
from .demo_data import (
    CITY_ADMIN_LOGIN,
    LOGINS,
    OFFICER_LOGIN,
    TILL_LOGIN,
    ensure_providers,
    library_number,
)
from .demo_reader import DemoCardInfo, DemoReaders, DemoTerminal
from .demo_shop import create_shop
from .devserver import local_server, serve_app
from .identity import services as identity
from .identity.models import Verification
from .points import programs as points_programs
from .points.checkout import start_delivery_loop
from .points.checkout.demo import DemoShopAccount, build_shop
from .points.demo import build_city
from .providers.models import Provider
from .scaled import ScaledPlatform, free_port, scaled_settings, scratch_database
from .sip2.demo import connect_demo_library
from .staff import services as staff_services
from .staff.models import Role
from .terminals import get_registry
from .terminals import services as terminal_services
from .terminals.models import TerminalKind

ROOT = Path(__file__).resolve().parents[1]
DEMO_PIN = "1234"
SIGN_PASSWORD = "ABC123"  # noqa: S105 - the demo cards' published signing password
# (local government code, name): 131997 has a valid check digit, but no municipality has
# the number 13199 (Tokyo's wards and cities end at 13421), so it is no real city's code.
DEMO_CITY = ("131997", "いちまい市")
TERMINAL_NAMES = {
    TerminalKind.COUNTER: "カウンター1",
    TerminalKind.KIOSK: "キオスク1",
    TerminalKind.MERCHANT: "美術館レジ1",
}
# The demo CRLs are valid a day; a demo left running republishes them every hour.
CRL_REPUBLISH_SECONDS = 3600.0
CARDS = (
    ("registered", "登録済みのカード", "Registered card"),
    ("new", "新しいカード", "New card"),
    ("revoked", "失効したカード", "Revoked card"),
    ("locked", "暗証番号ロック中のカード", "Card with a locked PIN"),
)


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "DISPLAY": "", **(extra or {})}


class PcscSlot:
    """A terminal's vpcd reader: a tap runs a card process attached to it."""

    def __init__(self, harness: Any, reader: Any) -> None:
        self.harness = harness
        self.reader = reader
        self.card: Any = None

    def put(self, card: Path) -> None:
        """Insert the card file into this reader."""
        self.take()
        self.card = self.harness.attach(card, self.reader)

    def take(self) -> None:
        """Take the card out (and wait until pcscd sees the reader empty)."""
        if self.card is not None:
            self.card.remove()
            self.card = None


class BridgeProcess:
    """A paired bridge (`python -m bridge run`) in a subprocess, restartable."""

    def __init__(self, home: Path, log: Path, args: list[str], env: dict[str, str]) -> None:
        self.home, self.log, self.args, self.env = home, log, args, env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, extra: list[str] | None = None) -> None:
        """Start `python -m bridge run` with this bridge's home."""
        self.stop()
        cmd = [sys.executable, "-m", "bridge", "run", "--home", str(self.home), *self.args]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(  # noqa: S603 - fixed argv
                [*cmd, *(extra or [])], stdout=out, stderr=subprocess.STDOUT, env=self.env, cwd=ROOT
            )

    def stop(self) -> None:
        """Stop it (SIGTERM, then SIGKILL)."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class SimSlot:
    """Fallback without pcscd: the bridge runs `--sim CARD`; a tap restarts it."""

    def __init__(self, bridge: BridgeProcess, wait_ready: Callable[[], None]) -> None:
        self.bridge = bridge
        self.wait_ready = wait_ready

    def put(self, card: Path) -> None:
        """Restart the bridge with this card on its simulated reader."""
        self.bridge.start(["--sim", str(card)])
        self.wait_ready()

    def take(self) -> None:
        """Stop the bridge: the card is gone (so is the reader, until the next tap)."""
        self.bridge.stop()


def _reader_for(kind: str, readers: list[Any]) -> Any:
    """The counter on the first reader, the kiosk on the last, the till on the one before
    the last: with a test session's four readers, the second stays free for its tests."""
    if len(readers) < len(TERMINAL_NAMES):
        raise RuntimeError(f"the demo needs {len(TERMINAL_NAMES)} readers, not {len(readers)}")
    if kind == TerminalKind.COUNTER:
        return readers[0]
    if kind == TerminalKind.KIOSK:
        return readers[-1]
    return readers[-2]


class DemoStack:
    """Platform + demo data + pcscd + paired bridges, under `home` (made afresh)."""

    def __init__(
        self,
        home: Path,
        *,
        port: int = 0,
        harness: Any = None,
        idle_seconds: float = 60,
        use_pcsc: bool = True,
        extra_config: dict[str, Any] | None = None,
        deployment: str = "embedded",
        pg_server: str | None = None,
        redis_url: str | None = None,
    ) -> None:
        self.home = Path(home)
        # The scaled deployment's servers (default: the test PostgreSQL and Redis).
        self.pg_server = pg_server
        self.redis_url = redis_url
        self.deployment = deployment  # "embedded", or "scaled" (gunicorn, PostgreSQL, Redis)
        self.scaled: ScaledPlatform | None = None
        self._database: Any = None
        self._settings: list[str] = []
        self.port = port
        self.harness = harness
        self._own_harness = harness is None
        self.idle_seconds = idle_seconds
        self.use_pcsc = use_pcsc
        self.extra_config = extra_config or {}
        self.mode = ""
        self.bridges: dict[int, BridgeProcess] = {}
        self.terminals: dict[str, int] = {}
        self.cards: dict[str, DemoCardInfo] = {}
        self.app: Flask | None = None
        self.server: BaseWSGIServer | None = None
        self.readers: DemoReaders | None = None
        self.library_id = 0
        self.library_system: library_demo.DemoLibrary | None = None
        self.url = ""
        # The demo online shop (webapp/demo_shop.py), on a port of its own.
        self.shop_server: BaseWSGIServer | None = None
        self.shop_url = ""
        self.shop_app: Flask | None = None
        self.shop_account: DemoShopAccount | None = None
        self._webhook_loop: threading.Event | None = None

    # -- building --------------------------------------------------------------------

    def _issue_cards(self) -> None:
        self.jlis = DemoJLIS.init(self.home / "jlis")
        cards_dir = self.home / "cards"
        cards_dir.mkdir()
        self.issued = {}
        for name, ja, en in CARDS:
            issued = self.jlis.issue()
            data = card_data_from_issued(
                issued, pin=DEMO_PIN, sign_password=SIGN_PASSWORD, locked=name == "locked"
            )
            path = cards_dir / f"{name}.json"
            CardFile.create(path, data)
            self.issued[name] = issued
            self.cards[name] = DemoCardInfo(name, ja, en, path)
        self.jlis.revoke(self.issued["revoked"].auth_cert_der)

    def _build_app(self) -> Flask:
        config: dict[str, Any] = {
            "DATABASE_URL": f"sqlite:///{self.home / 'ichimai.db'}",
            "BUS_URL": "memory://",
            "PLATFORM_ORIGIN": self.url,
            "DEMO_MODE": True,
            "DEMO_JLIS_DIR": str(self.jlis.directory),
            "JPKI_CRL_SOURCES": [str(self.jlis.directory / "auth.crl")],
            "KIOSK_IDLE_SECONDS": self.idle_seconds,
            "BRIDGE_PING_INTERVAL": 5.0,
            "BRIDGE_FLUSH_INTERVAL": 2.0,
            **self.extra_config,
        }
        if self.deployment == "scaled":
            self._database = (
                scratch_database(self.pg_server) if self.pg_server else scratch_database()
            )
            config.update(scaled_settings(self._database.__enter__(), redis_url=self.redis_url))
        self._settings = sorted(config)
        app = create_app(config)
        db.create_all(app)
        return app

    def _seed(self, app: Flask) -> None:
        verifier = verifier_for(app)
        with app.app_context(), db.new_session() as s:
            demo = ensure_providers(s)
            for login, (password, role) in LOGINS.items():
                provider = None if role == Role.PLATFORM_ADMIN else demo.library.id
                staff_services.create_staff(s, login, password, role, provider)
            for kind in (TerminalKind.COUNTER, TerminalKind.KIOSK):
                terminal = terminal_services.create_terminal(
                    s, demo.library.id, kind, TERMINAL_NAMES[kind]
                )
                self.terminals[kind] = terminal.id
            card = verifier.identify(self.issued["registered"].auth_cert_der)
            mykey, _ = identity.open_or_create(s, card.card_key, card.not_after)
            # Linked earlier at the counter, the library card checked by staff.
            identity.link(
                s,
                mykey.id,
                demo.library,
                library_number(1),
                demo.library.terms_version,
                Verification.STAFF,
            )
            self.registered_mykey = mykey.id
            self.library_id = demo.library.id
            self._seed_till(app, s, demo.museum.id, mykey.id)

    def _seed_till(self, app: Flask, s: Session, provider_id: int, mykey_id: str) -> None:
        """The points city, the museum's till bound to the museum merchant, its staff,
        and one grant (500 points) to the registered card's MyKey ID."""
        code, name = DEMO_CITY
        city = build_city(s, code, name=name)
        till = terminal_services.create_terminal(
            s,
            provider_id,
            TerminalKind.MERCHANT,
            TERMINAL_NAMES[TerminalKind.MERCHANT],
            merchant_id=city.museum.id,
        )
        self.terminals[TerminalKind.MERCHANT] = till.id
        self.shop_account = build_shop(s, city.muni.id, self.shop_url)
        login, password = TILL_LOGIN
        staff_services.create_staff(
            s, login, password, Role.MERCHANT_STAFF, merchant_id=city.museum.id
        )
        login, password = OFFICER_LOGIN
        staff_services.create_staff(
            s, login, password, Role.POINTS_OFFICER, municipality_id=city.muni.id
        )
        login, password = CITY_ADMIN_LOGIN
        staff_services.create_staff(
            s, login, password, Role.MUNICIPAL_ADMIN, municipality_id=city.muni.id
        )
        points_programs.grant(
            s,
            city.volunteering.id,
            mykey_id,
            key="demo-registered-card",
            directory=app.extensions["points_directory"],
        )
        s.commit()

    def _listen(self) -> None:
        """Take the port first: the platform's origin (signed by every card) names it."""
        if self.deployment == "scaled":
            self.port = self.port or free_port()
        else:
            self.server = local_server(None, self.port)
            self.port = self.server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self.shop_server = local_server(None, 0)
        self.shop_url = f"http://127.0.0.1:{self.shop_server.server_port}"

    def _serve(self, app: Flask) -> None:
        if self.deployment == "scaled":
            settings = {k: app.config[k] for k in self._settings}
            self.scaled = ScaledPlatform(settings, port=self.port, log=self.home / "gunicorn.log")
            self.scaled.start()
            return
        assert self.server is not None  # noqa: S101 - _listen first
        serve_app(self.server, app)
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()

    def _start_harness(self) -> None:
        from bridge.vcard.pcscd_harness import HarnessUnavailable, Pcscd

        if not self.use_pcsc:
            self.mode = "sim"
            return
        try:
            if self.harness is None:
                self.harness = Pcscd(readers=len(TERMINAL_NAMES), base_dir=None)
                self.harness.start()
            self.mode = f"pcsc ({self.harness.isolation})"
        except (HarnessUnavailable, OSError) as exc:
            print(f"pcscd unavailable ({exc}); falling back to --sim bridges", file=sys.stderr)
            self.harness = None
            self.mode = "sim"

    def _pair(self, terminal_id: int, kind: str) -> BridgeProcess:
        assert self.app is not None  # noqa: S101 - built first
        with self.app.app_context(), db.new_session() as s:
            code = terminal_services.create_pairing_code(s, terminal_id).code
        home = self.home / f"bridge-{kind}"
        env = _env({"ICHIMAI_BRIDGE_HOME": str(home)})
        subprocess.run(  # noqa: S603 - fixed argv
            [
                sys.executable,
                "-m",
                "bridge",
                "pair",
                self.url,
                code,
                "--home",
                str(home),
                "--name",
                f"demo {kind} bridge",
            ],
            check=True,
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        args = ["--keyboard", "none"]
        if self.harness is not None:
            env["PCSCLITE_CSOCK_NAME"] = str(self.harness.socket_path)
        return BridgeProcess(home, self.home / f"bridge-{kind}.log", args, env)

    def wait_ready(self, terminal_id: int, timeout: float = 20.0) -> None:
        """Wait until the terminal's bridge is connected and has reported its readers."""
        from .terminals.remote import RemoteTransport

        assert self.app is not None  # noqa: S101
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if RemoteTransport(get_bus(self.app), terminal_id, timeout=2).status().ready:
                    return
            except Exception:  # noqa: S110 - not connected yet
                pass
            time.sleep(0.05)
        raise TimeoutError(f"the bridge of terminal {terminal_id} did not come up")

    def _revoke(self, card: str) -> None:
        assert self.app is not None  # noqa: S101
        self.jlis.revoke(self.issued[card].auth_cert_der)
        verifier_for(self.app).revocation.refresh_all()
        get_bus(self.app).publish(CRL_CHANNEL, {"refresh": True})  # every worker

    def refresh_crls(self) -> None:
        """Publish fresh demo CRLs (they live a day) and have the verifier load them."""
        assert self.app is not None  # noqa: S101
        self.jlis.publish_crls()
        verifier_for(self.app).revocation.refresh_all()

    def start(self) -> DemoStack:
        """Build everything and start serving; returns self."""
        if self.home.exists():
            shutil.rmtree(self.home)
        self.home.mkdir(parents=True, mode=0o700)
        self._issue_cards()
        self._listen()
        self.app = self._build_app()
        self._serve(self.app)
        self._seed(self.app)
        self._start_harness()
        slots: list[DemoTerminal] = []
        readers = list(self.harness.readers) if self.harness is not None else []
        for kind, terminal_id in self.terminals.items():
            bridge = self._pair(terminal_id, kind)
            self.bridges[terminal_id] = bridge
            slot: Any
            if self.harness is not None:
                reader = _reader_for(kind, readers)
                bridge.args += ["--reader", reader.name]
                bridge.start()
                self.wait_ready(terminal_id)
                slot = PcscSlot(self.harness, reader)
            else:
                slot = SimSlot(bridge, functools.partial(self.wait_ready, terminal_id))
            slots.append(DemoTerminal(terminal_id, kind, TERMINAL_NAMES[kind], slot))
        self.readers = DemoReaders(
            list(self.cards.values()), slots, mode=self.mode, revoke=self._revoke
        )
        self.readers.revoked.add("revoked")  # revoked at issue, above
        self._connect_library_system()
        self._start_shop()
        if self.scaled is not None:
            self._served = self.readers.serve(get_bus(self.app))  # the workers' panels
        else:
            self.app.extensions["demo_readers"] = self.readers
        return self

    def _start_shop(self) -> None:
        """The demo online shop on its own port, and the webhook deliveries to it (a
        deployment runs `flask points deliver-webhooks --loop` instead)."""
        assert self.shop_server is not None and self.shop_account is not None  # noqa: S101
        self.shop_app = create_shop(
            self.url, self.shop_account.api_key, self.shop_account.signing_secret, self.shop_url
        )
        serve_app(self.shop_server, self.shop_app)
        threading.Thread(target=self.shop_server.serve_forever, daemon=True).start()
        assert self.app is not None  # noqa: S101
        self._webhook_loop = start_delivery_loop(self.app, interval=1.0)

    def _connect_library_system(self) -> None:
        """The demo library's own system (SIP2, webapp/library_demo.py), reached through
        the counter's bridge: citizens verify their library number with its password."""
        self.library_system = library_demo.DemoLibrary().start()
        with self.app.app_context(), db.new_session() as s:
            library = s.get(Provider, self.library_id)
            assert library is not None  # noqa: S101 - seeded above
            connect_demo_library(
                s,
                library,
                self.terminals[TerminalKind.COUNTER],
                host=self.library_system.host,
                port=self.library_system.port,
            )

    def stop(self) -> None:
        """Take the cards out, stop the bridges, the server and (if ours) pcscd."""
        if self.readers is not None:
            self.readers.close()
        if self.library_system is not None:
            self.library_system.stop()
            self.library_system = None
        if self._webhook_loop is not None:
            self._webhook_loop.set()
            self._webhook_loop = None
        if self.shop_server is not None:
            if self.shop_app is not None:
                self.shop_server.shutdown()
            self.shop_server.server_close()
            self.shop_server = None
        for bridge in self.bridges.values():
            bridge.stop()
        if self.app is not None:
            get_registry(self.app).close()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        if self.scaled is not None:
            self.scaled.stop()
            self.scaled = None
        if self._database is not None and self.app is not None:
            get_bus(self.app).close()
            self.app.extensions["db_engine"].dispose()
            self._database.__exit__(None, None, None)
            self._database = None
        if self._own_harness and self.harness is not None:
            self.harness.stop()

    def banner(self) -> str:
        """What `make demo` prints: URLs, logins, cards."""
        lines = [
            "",
            f"Ichimai demo (一枚): SQLite + in-process bus, demo J-LIS; card readers: {self.mode}",
            f"  data            {self.home}",
            f"  platform        {self.url}/",
            f"  virtual reader  {self.url}/demo/reader   (tap and remove the demo cards)",
            f"  terminals admin {self.url}/admin/terminals/",
            f"  staff sign-in   {self.url}/staff/login",
        ]
        for login, (password, role) in LOGINS.items():
            lines.append(f"    {login:<15} {password:<22} {role.value}")
        till_login, till_password = TILL_LOGIN
        lines.append(f"    {till_login:<15} {till_password:<22} {Role.MERCHANT_STAFF.value}")
        officer_login, officer_password = OFFICER_LOGIN
        lines.append(f"    {officer_login:<15} {officer_password:<22} {Role.POINTS_OFFICER.value}")
        city_login, city_password = CITY_ADMIN_LOGIN
        lines.append(f"    {city_login:<15} {city_password:<22} {Role.MUNICIPAL_ADMIN.value}")
        lines += [
            f"  kiosk           sign in as admin, Terminals, 'Open as kiosk on this device' "
            f"(or the button on {self.url}/demo/reader)",
            f"  shop till       {TERMINAL_NAMES[TerminalKind.MERCHANT]} "
            f"(terminal {self.terminals.get(TerminalKind.MERCHANT)}), bound to the museum "
            f"merchant of {DEMO_CITY[1]}: sign in as {TILL_LOGIN[0]}, then 'Tills' (レジ) "
            f"({self.url}/points/terminal/tills: the museum's only till opens at once)",
            f"  demo cards      PIN {DEMO_PIN}: "
            + ", ".join(f"{c.name} ({c.label_en})" for c in self.cards.values()),
            f"  registered card MyKey ID {self.registered_mykey}, library number "
            f"{library_number(1)}",
            f"  library system  SIP2 on {self.library_system.host}:{self.library_system.port}"
            if self.library_system
            else "  library system  (not started)",
            "    a kiosk verifies these library numbers with their passwords: "
            + ", ".join(f"{p.number} / {p.password}" for p in library_demo.PATRONS[1:] if p.valid),
            f"  online shop     {self.shop_url}/  (a separate demo shop: buy with points; "
            "pay at home on /checkout with your card reader, then refund on the order page)",
            "Ctrl-C stops everything.",
        ]
        return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the demo until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m webapp.demo", description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("ICHIMAI_DEMO_PORT", 5000)))
    parser.add_argument("--home", type=Path, default=ROOT / "var" / "demo")
    parser.add_argument("--sim", action="store_true", help="no pcscd: --sim bridges")
    args = parser.parse_args(argv)
    stack = DemoStack(args.home, port=args.port, use_pcsc=not args.sim)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        stack.start()
        print(stack.banner(), flush=True)
        while not stopped.wait(CRL_REPUBLISH_SECONDS):
            stack.refresh_crls()
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
