"""The platform as production runs it: gunicorn with gevent workers, PostgreSQL and Redis.

For the end-to-end tests (`pytest --deployment=scaled`, or ICHIMAI_E2E_DEPLOYMENT=scaled)
and the benches (`flow_overhead_ms_scaled`): `ScaledPlatform(settings)` starts gunicorn
(`-k gevent -w 4`) serving `webapp.scaled:app_from_env()`, which is `create_app` with the
settings the test gives as JSON in ICHIMAI_SETTINGS (the same settings the test's own,
unserved app uses to seed the database and reach the bus). Every worker is its own
process with its own registry, verifier and flow service; they share only what
production shares: the database and Redis. Nothing may depend on a request landing on
the worker that served the last one, and with four workers it mostly does not.

`scratch_database()` makes a fresh PostgreSQL database for one run and drops it after;
`redis_prefix()` isolates one platform's keys and channels on a shared Redis. Both, and
`scaled_settings`, take the servers' URLs (default: ICHIMAI_TEST_PG_URL and
ICHIMAI_TEST_REDIS_URL), so the fault tests run the same deployment on private servers
they may restart.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask

ROOT = Path(__file__).resolve().parent.parent
PG_SERVER = os.environ.get(
    "ICHIMAI_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS = os.environ.get("ICHIMAI_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
WORKERS = 4
START_TIMEOUT = 60.0


def app_from_env() -> Flask:
    """gunicorn's factory: the platform with the settings of ICHIMAI_SETTINGS (JSON)."""
    from . import create_app

    return create_app(json.loads(os.environ["ICHIMAI_SETTINGS"]))


def free_port() -> int:
    """A TCP port free on the loopback now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_prefix() -> str:
    """A key and channel prefix of its own for one platform on a shared Redis."""
    return f"ichimai:run-{secrets.token_hex(4)}:"


@contextmanager
def scratch_database(server_url: str = PG_SERVER) -> Iterator[str]:
    """A fresh, empty PostgreSQL database on the server of `server_url`; dropped after."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"ichimai_{secrets.token_hex(6)}"
    # Pre-ping: the server may have restarted since (the fault tests restart it).
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    try:
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            c.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :n AND pid <> pg_backend_pid()"
                ),
                {"n": name},
            )
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def scaled_settings(
    database_url: str, *, prefix: str | None = None, redis_url: str | None = None
) -> dict[str, Any]:
    """What makes an app the scaled deployment: PostgreSQL, Redis (`redis_url`, default
    the test Redis; isolated by a prefix), and the secrets every worker must share (a
    per-process session or CSRF key would make a form rendered by one worker fail on
    another)."""
    return {
        "DATABASE_URL": database_url,
        "BUS_URL": redis_url or REDIS,
        "BUS_PREFIX": prefix or redis_prefix(),
        "SECRET_KEY": secrets.token_hex(32),
    }


class ScaledPlatform:
    """gunicorn with WORKERS gevent workers serving the settings, on a loopback port."""

    def __init__(
        self,
        settings: Mapping[str, Any],
        *,
        port: int | None = None,
        workers: int = WORKERS,
        log: Path | None = None,
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.settings = {"PLATFORM_ORIGIN": self.url, **settings}
        self.workers = workers
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ScaledPlatform:
        """Start gunicorn and wait until every worker answers."""
        env = {
            **os.environ,
            "ICHIMAI_SETTINGS": json.dumps(self.settings),
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p
            ),
        }
        gunicorn = str(Path(sys.executable).parent / "gunicorn")
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.process = subprocess.Popen(  # noqa: S603 - fixed argv
                [
                    gunicorn,
                    "-k",
                    "gevent",
                    "-w",
                    str(self.workers),
                    "-b",
                    f"127.0.0.1:{self.port}",
                    # A bridge's socket holds a worker's greenlet for hours: shutting down
                    # must not wait the default 30 s for it.
                    "--graceful-timeout",
                    "2",
                    "--timeout",
                    "120",
                    "webapp.scaled:app_from_env()",
                ],
                env=env,
                cwd=ROOT,
                stdout=out,
                stderr=out,
            )
        finally:
            if out is not subprocess.DEVNULL:
                out.close()  # type: ignore[union-attr]
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as r:  # noqa: S310
                    if r.status == 200 and self._workers_up() >= self.workers:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"gunicorn did not come up on {self.url}")

    def _workers_up(self) -> int:
        """gunicorn's worker processes that have loaded the app (children of the master)."""
        assert self.process is not None  # noqa: S101 - started
        try:
            tasks = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
            return len(tasks.read_text().split())
        except OSError:
            return self.workers  # not Linux: the health check alone

    def stop(self) -> None:
        """Stop gunicorn (graceful, then killed)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> ScaledPlatform:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
