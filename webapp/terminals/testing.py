"""A real platform on a loopback port, and in-process bridges: for tests, benches, demos.

`LivePlatform` serves the Flask app with werkzeug in a thread (WebSockets included), on
its own SQLite file and bus, and offers the admin steps a test needs (a provider, a
terminal, a pairing code). `BridgeThread` runs a real `BridgeClient` against it in a
thread. `python -m webapp.terminals.testing --port P --database URL --bus URL` serves
one worker process (the two-workers-on-Redis test runs two of them); `wsgi_app()` is the
factory for gunicorn (the `bridges_connected` bench).
"""

from __future__ import annotations

import argparse
import collections
import os
import threading
import time
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.serving import BaseWSGIServer

from bridge.client import BridgeClient
from bridge.errors import Code, TransportError
from bridge.keyboard import KeyboardOutput
from bridge.pairing import BridgeIdentity, pair
from bridge.readers import ReaderWatcher
from bridge.session import BridgeSession

from .. import create_app, db
from ..bus import Bus, get_bus
from ..devserver import local_server, serve_app
from ..providers.models import Provider
from ..scaled import ScaledPlatform, free_port, scaled_settings, scratch_database
from .messages import StatusReply
from .remote import RemoteTransport

ADMIN_TOKEN = "test-admin-token"  # noqa: S105 - loopback test platform only


def build_app(
    database_url: str,
    *,
    bus_url: str = "memory://",
    origin: str = "http://127.0.0.1:5000",
    ping_interval: float = 25.0,
    flush_interval: float = 15.0,
    bus_prefix: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Flask:
    """The platform app with the terminals package wired in and tables created.

    `bus_prefix` isolates a Redis bus (Redis pub/sub channels are server-wide).
    """
    config = {
        "TESTING": True,
        "DATABASE_URL": database_url,
        "BUS_URL": bus_url,
        "PLATFORM_ORIGIN": origin,
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "BRIDGE_PING_INTERVAL": ping_interval,
        "BRIDGE_FLUSH_INTERVAL": flush_interval,
        "WTF_CSRF_ENABLED": False,
        **({"BUS_PREFIX": bus_prefix} if bus_prefix is not None else {}),
        **(extra or {}),
    }
    app = create_app(config)
    app.config["ICHIMAI_GIVEN_SETTINGS"] = sorted(config)
    db.create_all(app)
    return app


class LivePlatform:
    """The platform served on 127.0.0.1:<free port>: in this process (werkzeug, SQLite and
    the in-process bus: the embedded default), or, with `deployment="scaled"`, by gunicorn
    with four gevent workers on a fresh PostgreSQL database and Redis (webapp/scaled.py).

    Either way `app` is an app of the same settings in this process, for the test's own
    reads and writes (the database, the bus); in the scaled deployment it serves nothing.
    """

    def __init__(
        self,
        tmp: Path,
        *,
        bus_url: str = "memory://",
        database_url: str | None = None,
        ping_interval: float = 2.0,
        flush_interval: float = 1.0,
        extra: dict[str, Any] | None = None,
        deployment: str = "embedded",
    ) -> None:
        self.deployment = deployment
        self.scaled: ScaledPlatform | None = None
        self._database: Any = None
        self.server: BaseWSGIServer | None = None
        if deployment == "scaled":
            self._database = scratch_database()
            database_url = self._database.__enter__()
            settings = scaled_settings(database_url)
            bus_url, self.port = settings.pop("BUS_URL"), free_port()
            extra = {**settings, **(extra or {})}
        else:
            self.server = local_server(None)
            self.port = self.server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = build_app(
            database_url or f"sqlite:///{tmp / 'platform.db'}",
            bus_url=bus_url,
            origin=self.url,
            ping_interval=ping_interval,
            flush_interval=flush_interval,
            extra=extra,
        )
        if self.server is not None:
            serve_app(self.server, self.app)
            self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        else:
            settings = {k: v for k, v in self.app.config.items() if k in self._settings_keys()}
            self.scaled = ScaledPlatform(settings, port=self.port, log=tmp / "gunicorn.log")
        self._provider_id: int | None = None

    def _settings_keys(self) -> set[str]:
        """The settings a test gave (what the workers must be built with too)."""
        return set(self.app.config["ICHIMAI_GIVEN_SETTINGS"])

    def __enter__(self) -> LivePlatform:
        if self.scaled is not None:
            self.scaled.start()
        else:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Close bridge connections, stop serving, close the bus (drop a scratch database)."""
        from . import get_registry

        get_registry(self.app).close()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        if self.scaled is not None:
            self.scaled.stop()
        get_bus(self.app).close()
        if self._database is not None:
            self.app.extensions["db_engine"].dispose()
            self._database.__exit__(None, None, None)
            self._database = None

    @property
    def bus(self) -> Bus:
        """The platform's bus."""
        return get_bus(self.app)

    def admin(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """Call the admin JSON API with the admin token; (status, JSON body)."""
        client = self.app.test_client()
        response = client.open(
            path,
            method=method,
            json=body,
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        return response.status_code, response.get_json(silent=True)

    def provider(self) -> int:
        """A library provider (made once)."""
        if self._provider_id is None:
            with self.app.app_context(), db.new_session() as s:
                p = Provider(code=f"JP-{os.getpid()}", kind="library", name_ja="テスト図書館")
                s.add(p)
                s.commit()
                self._provider_id = p.id
        return self._provider_id

    def terminal(
        self, name: str = "Counter 1", kind: str = "counter", merchant_id: int | None = None
    ) -> int:
        """A new terminal of the provider (a shop till, kind `merchant`, names its merchant)."""
        payload: dict[str, Any] = {"provider_id": self.provider(), "kind": kind, "name": name}
        if merchant_id is not None:
            payload["merchant_id"] = merchant_id
        status, body = self.admin("POST", "/api/v1/admin/terminals", payload)
        assert status == 201, body  # noqa: S101 - test helper
        return int(body["id"])

    def pairing_code(self, terminal_id: int) -> str:
        """A fresh one-time pairing code for the terminal."""
        status, body = self.admin("POST", f"/api/v1/admin/terminals/{terminal_id}/pairing-codes")
        assert status == 201, body  # noqa: S101 - test helper
        return str(body["code"])

    def pair_bridge(self, home: Path, terminal_id: int | None = None) -> BridgeIdentity:
        """Pair a new bridge (over real HTTP, as `python -m bridge pair` does)."""
        terminal_id = terminal_id if terminal_id is not None else self.terminal()
        return pair(self.url, self.pairing_code(terminal_id), home)

    def wait_ready(self, terminal_id: int, timeout: float = 10.0) -> StatusReply:
        """Wait until the terminal's bridge is connected and its snapshot is in; its status."""
        deadline = time.monotonic() + timeout
        seen: collections.Counter[str] = collections.Counter()  # what each try answered
        while True:
            try:
                status = self.remote(terminal_id).status()
                if status.ready:
                    return status
                seen[f"not ready: {status!r}"[:160]] += 1
            except TransportError as exc:
                seen[repr(exc)] += 1
            if time.monotonic() > deadline:
                raise TimeoutError(f"the bridge of terminal {terminal_id} is not ready: {seen}")
            time.sleep(0.02)

    def wait_gone(self, terminal_id: int, timeout: float = 10.0) -> None:
        """Wait until the platform sees no bridge for the terminal (BRIDGE_OFFLINE)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.remote(terminal_id).status()
            except TransportError as exc:
                if exc.code is Code.BRIDGE_OFFLINE:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the bridge of terminal {terminal_id} is still connected")
            time.sleep(0.02)

    def remote(self, terminal_id: int, **options: Any) -> RemoteTransport:
        """A RemoteTransport to the terminal's bridge over this platform's bus."""
        return RemoteTransport(self.bus, terminal_id, **options)


class BridgeThread:
    """A real bridge (session + client + watcher) running in a thread of this process."""

    def __init__(
        self,
        identity: BridgeIdentity,
        watcher: ReaderWatcher,
        *,
        keyboard: KeyboardOutput | None = None,
        **client_options: Any,
    ) -> None:
        self.identity = identity
        self.watcher = watcher
        self.session = BridgeSession(identity.bridge_id, identity.seal_key, keyboard)
        self.client = BridgeClient(identity, self.session, **client_options)
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="bridge")

    def _run(self) -> None:
        try:
            self.client.run_forever()
        except BaseException as exc:
            self.error = exc

    def start(self, wait: float = 10.0) -> BridgeThread:
        """Start the watcher and the client; wait until connected."""
        self.watcher.start(self.session)
        self._thread.start()
        if wait and not self.client.connected.wait(wait):
            raise TimeoutError("the bridge did not connect")
        return self

    def stop(self) -> None:
        """Stop the client and the watcher."""
        self.client.stop()
        self._thread.join(timeout=5)
        self.watcher.stop()
        self.session.close()

    def join(self, timeout: float) -> bool:
        """Wait for the client to end (revoked); True if it did."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def __enter__(self) -> BridgeThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wsgi_app() -> Flask:
    """App factory for gunicorn: settings from ICHIMAI_* (tables created if missing)."""
    env = os.environ
    return build_app(
        env["ICHIMAI_DATABASE_URL"],
        bus_url=env.get("ICHIMAI_BUS_URL", "memory://"),
        origin=env.get("ICHIMAI_ORIGIN", "http://127.0.0.1:5000"),
        ping_interval=float(env.get("ICHIMAI_BRIDGE_PING_INTERVAL", "25")),
        flush_interval=float(env.get("ICHIMAI_BRIDGE_FLUSH_INTERVAL", "15")),
    )


def main() -> None:
    """Serve one worker process on a loopback port (threaded werkzeug)."""
    parser = argparse.ArgumentParser(description="a loopback platform worker for tests")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database", required=True)
    parser.add_argument("--bus", default="memory://")
    parser.add_argument("--ping-interval", type=float, default=2.0)
    parser.add_argument("--origin", help="the platform origin bridges sign (default: own URL)")
    parser.add_argument("--bus-prefix", help="Redis channel prefix (isolates a test)")
    args = parser.parse_args()
    origin = args.origin or f"http://127.0.0.1:{args.port}"
    app = build_app(
        args.database,
        bus_url=args.bus,
        origin=origin,
        ping_interval=args.ping_interval,
        flush_interval=1.0,
        bus_prefix=args.bus_prefix,
    )
    local_server(app, args.port).serve_forever()


if __name__ == "__main__":
    main()
