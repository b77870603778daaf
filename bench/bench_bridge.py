"""Bridge benches: a batch round trip through the platform, and bridges held at once.

    python -m bench.bench_bridge [roundtrip] [connected] [--bridges N] [--runs N]

bridge_batch_roundtrip: one certificate-read batch (SELECT AP, SELECT EF, READ BINARY
chunks) sent by the platform's RemoteTransport -> bus -> the worker holding the bridge's
WebSocket -> a `python -m bridge run` process -> pcscd/vpcd -> the virtual card, vs the
same APDUs sent with raw pyscard in this process (value = our median ms, baseline = raw
median ms; loopback; our own isolated pcscd).

bridges_connected: one platform deployment (gunicorn, one gevent worker, SQLite, the
in-process bus) holding N authenticated bridge connections from a separate asyncio
process (`websockets`), each doing the real challenge-response and pinging every
`PING_S` seconds; while they are connected, the p99 of an admin bridge lookup (HTTP GET
/api/v1/admin/bridges/<id>: a database read plus a presence/status request over the bus
to the registry), and the worker's resident memory per 1000 connections. Baseline is the
goal: 10,000 bridges with a lookup p99 under 50 ms.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import resource
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.run import result_line

ROOT = Path(__file__).resolve().parent.parent
GOAL_BRIDGES = 10_000
PING_S = 25.0  # the platform default (BRIDGE_PING_INTERVAL)
LOOKUPS = 1000
CONNECT_TIMEOUT_S = 100.0
ADMIN = {"Authorization": "Bearer test-admin-token"}


def _line(bench: str, value: float, unit: str, baseline: float, **extra: Any) -> None:
    doc = json.loads(result_line(bench, value, unit, baseline))
    doc.update(extra)
    print(json.dumps(doc), flush=True)


def _raise_nofile() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}


# -- bridge_batch_roundtrip ----------------------------------------------------------------


def bench_roundtrip(runs: int) -> None:
    """Measure and print the bridge_batch_roundtrip line."""
    from bench.bench_cert_read import raw_sender
    from bridge import jpki
    from bridge.vcard.cardfile import CardFile, card_data_from_issued
    from bridge.vcard.jlis import DemoJLIS
    from bridge.vcard.pcscd_harness import Pcscd
    from webapp.terminals.testing import LivePlatform

    with tempfile.TemporaryDirectory(prefix="ichimai-bench-") as name, Pcscd(readers=2) as pcscd:
        tmp = Path(name)
        card_path = tmp / "card.json"
        issued = DemoJLIS.init(tmp / "ca").issue()
        CardFile.create(
            card_path,
            card_data_from_issued(issued, pin="1234", sign_password="ABC123"),  # noqa: S106
        )
        card = pcscd.attach(card_path)
        with LivePlatform(tmp, ping_interval=25.0, flush_interval=15.0) as platform:
            terminal = platform.terminal()
            platform.pair_bridge(tmp / "home", terminal)
            with open(tmp / "bridge.log", "wb") as log:
                bridge = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "bridge",
                        "run",
                        "--home",
                        str(tmp / "home"),
                        "--keyboard",
                        "none",
                    ],
                    env=_env(PCSCLITE_CSOCK_NAME=str(pcscd.socket_path)),
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                    cwd=ROOT,
                )
            try:
                deadline = time.monotonic() + 30
                while True:
                    status = platform.wait_ready(terminal)
                    if any(r.card is not None for r in status.readers):
                        break
                    if time.monotonic() > deadline:
                        raise TimeoutError("the bridge never saw the card")
                    time.sleep(0.05)
                remote = platform.remote(terminal, reader=card.reader.name)
                batch = list(next(jpki.read_certificate()))
                responses = remote.transmit(batch)
                apdus = [list(step.command.encode()) for step in batch[: len(responses)]]
                send_raw, close_raw = raw_sender(card.reader.name)
                ours, raw = [], []
                try:
                    for i in range(5 + runs):
                        start = time.perf_counter()
                        got = remote.transmit(batch)
                        middle = time.perf_counter()
                        send_raw(apdus)
                        end = time.perf_counter()
                        assert [r.sw for r in got] == [r.sw for r in responses]
                        if i >= 5:
                            ours.append(middle - start)
                            raw.append(end - middle)
                finally:
                    close_raw()
            finally:
                bridge.send_signal(signal.SIGTERM)
                bridge.wait(10)
        card.remove()
    print(
        f"bridge_batch_roundtrip: {len(apdus)} APDUs per batch, {runs} runs, "
        f"pcscd isolation={pcscd.isolation}",
        file=sys.stderr,
    )
    _line(
        "bridge_batch_roundtrip",
        statistics.median(ours) * 1000,
        "ms",
        statistics.median(raw) * 1000,
        apdus=len(apdus),
        p90_ms=round(sorted(ours)[int(0.9 * len(ours))] * 1000, 3),
    )


# -- bridges_connected -------------------------------------------------------------------


def _populate(database: str, count: int, keys_file: Path) -> list[str]:
    """Schema, one provider, `count` terminals each with a paired bridge; their keys."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from sqlalchemy import insert

    from bridge import seal
    from bridge.pairing import auth_public_b64u
    from webapp import db
    from webapp.bus import get_bus
    from webapp.providers.models import Provider
    from webapp.terminals.models import BridgeDevice, Terminal, utcnow
    from webapp.terminals.testing import build_app

    app = build_app(database)
    seal_public = seal.public_key_b64u(seal.generate_device_key().public_key())
    now = utcnow()
    ids, rows, lines = [], [], []
    for i in range(count):
        key = ed25519.Ed25519PrivateKey.generate()
        bridge_id = f"brg_bench{i:06d}"
        raw = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        ids.append(bridge_id)
        lines.append(f"{bridge_id} {raw.hex()}")
        rows.append(
            {
                "id": bridge_id,
                "terminal_id": i + 1,
                "name": "",
                "auth_public_key": auth_public_b64u(key),
                "seal_public_key": seal_public,
                "paired_at": now,
            }
        )
    with app.app_context(), db.new_session() as s:
        s.add(Provider(code="JP-BENCH", kind="library", name_ja="ベンチ図書館"))
        s.commit()
        s.execute(
            insert(Terminal),
            [
                {"id": i + 1, "provider_id": 1, "kind": "counter", "name": f"T{i}"}
                for i in range(count)
            ],
        )
        s.execute(insert(BridgeDevice), rows)
        s.commit()
    get_bus(app).close()
    keys_file.write_text("\n".join(lines))
    return ids


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def _worker_pid(master: int, log: Path) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        except FileNotFoundError:  # gunicorn exited
            break
        if children:
            return int(children[0])
        time.sleep(0.1)
    raise TimeoutError(f"gunicorn started no worker:\n{log.read_text(errors='replace')[-3000:]}")


def _lookups(port: int, ids: list[str], count: int) -> tuple[list[float], int]:
    """Timed admin lookups of random connected bridges; (times, how many said offline)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times, offline = [], 0
    for _ in range(count):
        bridge_id = random.choice(ids)
        start = time.perf_counter()
        conn.request("GET", f"/api/v1/admin/bridges/{bridge_id}", headers=ADMIN)
        answer = conn.getresponse()
        body = json.loads(answer.read())
        times.append(time.perf_counter() - start)
        assert answer.status == 200, body
        offline += not body["online"]
    conn.close()
    return times, offline


def bench_connected(count: int) -> None:
    """Measure and print the bridges_connected line."""
    with tempfile.TemporaryDirectory(prefix="ichimai-bench-") as name:
        tmp = Path(name)
        database = f"sqlite:///{tmp / 'platform.db'}"
        keys_file = tmp / "keys.txt"
        ids = _populate(database, count, keys_file)
        port = _free_port()
        origin = f"http://127.0.0.1:{port}"
        env = _env(
            ICHIMAI_DATABASE_URL=database,
            ICHIMAI_ORIGIN=origin,
            ICHIMAI_BRIDGE_PING_INTERVAL=str(PING_S),
            ICHIMAI_BRIDGE_FLUSH_INTERVAL="15",
            # The swarm is one address doing HANDSHAKES_AT_ONCE handshakes at a time: far
            # more than the per-address cap meant for real clients (socket_limits.py).
            ICHIMAI_BRIDGE_PREAUTH_PER_ADDRESS="1000",
            ICHIMAI_BRIDGE_PREAUTH_TOTAL="1000",
            # gunicorn.conf.py (read from the checkout) refuses to start without these.
            ICHIMAI_SECRET_KEY=secrets.token_hex(32),
            ICHIMAI_CARD_KEY_SECRET=secrets.token_hex(32),
        )
        gunicorn = str(Path(sys.executable).parent / "gunicorn")
        with open(tmp / "gunicorn.log", "wb") as log:
            server = subprocess.Popen(
                [
                    gunicorn,
                    "-k",
                    "gevent",
                    "-w",
                    "1",
                    "-b",
                    f"127.0.0.1:{port}",
                    "--worker-connections",
                    str(count + 1000),
                    "--backlog",
                    "4096",
                    "--timeout",
                    "300",
                    "webapp.terminals.testing:wsgi_app()",
                ],
                env=env,
                cwd=ROOT,
                stdout=log,
                stderr=log,
                preexec_fn=_raise_nofile,
            )
        swarm = None
        try:
            worker = _worker_pid(server.pid, tmp / "gunicorn.log")
            _wait_http(port)
            base_kb = _rss_kb(worker)
            swarm = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bench.bench_bridge",
                    "swarm",
                    "--url",
                    f"ws://127.0.0.1:{port}/ws/bridge",
                    "--origin",
                    origin,
                    "--keys",
                    str(keys_file),
                    "--ping",
                    str(PING_S),
                ],
                env=_env(),
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stdin=subprocess.PIPE,
                text=True,
            )
            assert swarm.stdout is not None
            started = time.monotonic()
            report = json.loads(swarm.stdout.readline() or "{}")
            connect_s = time.monotonic() - started
            connected = int(report.get("connected", 0))
            rss_kb = _rss_kb(worker)
            online = [f"brg_bench{i:06d}" for i in report.get("indices", [])]
            times, offline = _lookups(port, online or ids[:1], LOOKUPS)
            time.sleep(2)
            assert swarm.stdin is not None
            swarm.stdin.close()  # the swarm reports pongs and closes
            final = json.loads(swarm.stdout.readline() or "{}")
        finally:
            if swarm is not None and swarm.poll() is None:
                swarm.kill()
            if swarm is not None:
                swarm.wait()
                if swarm.stdout is not None:
                    swarm.stdout.close()
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    times.sort()
    p99 = times[min(len(times) - 1, int(0.99 * len(times)))] * 1000
    per_1000 = (rss_kb - base_kb) / 1024 / max(connected, 1) * 1000
    print(
        f"bridges_connected: {connected}/{count} in {connect_s:.1f} s, "
        f"failed {report.get('failed')} {report.get('errors')}, pongs {final.get('pongs')}, "
        f"lookups answered offline {offline}, lookup p50 "
        f"{times[len(times) // 2] * 1000:.2f} ms",
        file=sys.stderr,
    )
    _line(
        "bridges_connected",
        connected,
        "bridges",
        GOAL_BRIDGES,
        p99_ms=round(p99, 3),
        rss_mb_per_1000=round(per_1000, 2),
        ping_interval_s=PING_S,
        connect_s=round(connect_s, 1),
        pongs=final.get("pongs"),
        lookups_offline=offline,
    )


def _wait_http(port: int) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("the platform did not start")
        time.sleep(0.2)


def main() -> None:
    """Run the benches named on the command line (both by default)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("which", nargs="*", default=["roundtrip", "connected"])
    parser.add_argument("--bridges", type=int, default=GOAL_BRIDGES)
    parser.add_argument("--runs", type=int, default=50)
    args, _rest = parser.parse_known_args()
    if args.which and args.which[0] == "swarm":
        from bench.bridge_swarm import main as swarm_main

        swarm_main(sys.argv[2:])
        return
    _raise_nofile()
    if "roundtrip" in args.which:
        bench_roundtrip(args.runs)
    if "connected" in args.which:
        bench_connected(args.bridges)


if __name__ == "__main__":
    main()
