"""Two platform worker processes on Redis: the bridge on one, the requests through the other."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge import jpki
from bridge.client import AuthRefused
from bridge.readers import SimReader
from bridge.transport import drive
from bridge.vcard.card import VirtualCard
from bridge.vcard.transport import VirtualCardTransport
from webapp import db
from webapp.bus import get_bus
from webapp.providers.models import Provider
from webapp.terminals import services
from webapp.terminals.testing import ADMIN_TOKEN, BridgeThread, build_app

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("ICHIMAI_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def require_redis() -> None:
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
        client.ping()
        client.close()
    except redis.RedisError:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis not reachable at {REDIS_URL} on CI")
        pytest.skip(f"Redis not reachable at {REDIS_URL}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def call(base: str, method: str, path: str) -> tuple[int, Any]:
    request = urllib.request.Request(  # noqa: S310 - loopback test server
        base + path, method=method, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=20) as answer:  # noqa: S310
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


class Workers:
    def __init__(self, tmp: Path) -> None:
        self.database = f"sqlite:///{tmp / 'shared.db'}"
        self.prefix = f"test:{uuid.uuid4().hex}:"
        self.ports = [free_port(), free_port()]
        self.urls = [f"http://127.0.0.1:{p}" for p in self.ports]
        # One platform behind a proxy: both workers know it by the same origin.
        self.origin = self.urls[0]
        self.procs: list[subprocess.Popen[bytes]] = []
        self.log = open(tmp / "workers.log", "wb")  # noqa: SIM115 - closed in stop()

    def start(self) -> None:
        for port in self.ports:
            argv = [
                sys.executable,
                "-m",
                "webapp.terminals.testing",
                "--port",
                str(port),
                "--database",
                self.database,
                "--bus",
                REDIS_URL,
                "--origin",
                self.origin,
                "--bus-prefix",
                self.prefix,
                "--ping-interval",
                "2",
            ]
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            self.procs.append(
                subprocess.Popen(argv, env=env, cwd=ROOT, stdout=self.log, stderr=self.log)
            )
        for url in self.urls:
            deadline = time.monotonic() + 30
            while True:
                try:
                    urllib.request.urlopen(url + "/healthz", timeout=1).close()  # noqa: S310
                    break
                except OSError:
                    assert all(p.poll() is None for p in self.procs), "a worker died"
                    assert time.monotonic() < deadline, "a worker did not start"
                    time.sleep(0.1)

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.log.close()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    require_redis()
    w = Workers(tmp_path)
    # The schema, a provider and a terminal, made before the workers start.
    app = build_app(w.database)
    with app.app_context(), db.new_session() as s:
        provider = Provider(code="JP-2000001", kind="library", name_ja="図書館")
        s.add(provider)
        s.commit()
        services.create_terminal(s, provider.id, "counter", "Counter 1")
    get_bus(app).close()
    w.start()
    yield w
    w.stop()


def test_bridge_on_one_worker_request_through_the_other(
    workers: Workers, card_file: Any, tmp_path: Path
) -> None:
    from bridge.pairing import pair

    a, b = workers.urls
    status, issued = call(b, "POST", "/api/v1/admin/terminals/1/pairing-codes")
    assert status == 201
    identity = pair(workers.origin, issued["code"], tmp_path / "home")
    # The bridge connects to worker A only.
    bridge = BridgeThread(
        identity, SimReader(card_file.path), url=a.replace("http", "ws") + "/ws/bridge"
    )
    with bridge:
        deadline = time.monotonic() + 10
        while True:
            status, view = call(b, "GET", f"/api/v1/admin/bridges/{identity.bridge_id}")
            if view.get("readers"):
                break
            assert time.monotonic() < deadline, view
            time.sleep(0.05)
        assert view["online"] is True and view["readers"][0]["atr"] == "3BE000FF8131FE4514"
        # A whole certificate read through worker B, over Redis, to the socket on A.
        status, probe = call(b, "POST", "/api/v1/admin/terminals/1/probe")
        assert status == 200, probe
        local = drive(
            jpki.read_certificate(), VirtualCardTransport(VirtualCard.from_file(card_file.path))
        )
        assert probe["certificate_bytes"] == len(local)
        assert probe["epoch"] == view["readers"][0]["epoch"]
        # Revoked through B: the socket on A is closed at once.
        started = time.monotonic()
        status, _ = call(b, "POST", f"/api/v1/admin/bridges/{identity.bridge_id}/revoke")
        assert status == 200
        assert bridge.join(3.0), "the bridge on worker A was not cut off"
        assert isinstance(bridge.error, AuthRefused)
        assert time.monotonic() - started < 3.0
        status, offline = call(b, "POST", "/api/v1/admin/terminals/1/probe")
        assert status == 503 and offline["error"]["code"] == "bridge_offline"
