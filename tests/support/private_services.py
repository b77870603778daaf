"""A Redis and a PostgreSQL of a test's own, on free loopback ports, that it may restart.

The machine's shared servers (127.0.0.1:6379 and :5432) belong to everyone on it: the
fault tests (tests/e2e/test_faults_e2e.py) stop and start these private ones instead.
Redis keeps nothing on disk (`--save ""`, no AOF): a restart loses every key, the worst a
production restart can do. PostgreSQL is a fresh cluster in a temporary directory, run
as the `postgres` user when the tests run as root (initdb refuses root).

Missing binaries skip the tests on a workstation and fail them under CI=true.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from webapp.scaled import free_port

REDIS_SERVER = "/usr/bin/redis-server"
PG_BIN = Path(os.environ.get("ICHIMAI_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
START_TIMEOUT = 30.0


def missing() -> list[str]:
    """The server binaries that are not installed."""
    wanted = [Path(REDIS_SERVER), PG_BIN / "initdb", PG_BIN / "pg_ctl", PG_BIN / "postgres"]
    return [str(p) for p in wanted if not p.exists()]


def _wait(check: object, what: str, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not come up within {timeout} s")
        time.sleep(0.05)


class PrivateRedis:
    """`redis-server` on a free port, nothing persisted; `restart()` loses every key."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> PrivateRedis:
        """Start it and wait until it answers PING."""
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--maxmemory-policy",
                "noeviction",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait(self.up, f"redis-server on {self.port}")
        return self

    def up(self) -> bool:
        """True when it answers PING."""
        import redis

        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def stop(self) -> None:
        """Kill it (as a crash or a container restart would)."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(10)

    def restart(self) -> None:
        """Down, then up on the same port, empty."""
        self.stop()
        self.start()


class PrivatePostgres:
    """A PostgreSQL cluster of its own in a temporary directory, on a free port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.base = Path(tempfile.mkdtemp(prefix="ichimai-pg-"))
        self.data = self.base / "data"
        self.sockets = self.base / "run"
        self.server_url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self._as_root = os.geteuid() == 0

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        command = list(argv)
        if self._as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(
            command, check=check, capture_output=True, cwd=self.base, timeout=START_TIMEOUT
        )

    def start(self) -> PrivatePostgres:
        """initdb (first time), then start and wait until it takes connections."""
        if not self.data.exists():
            self.sockets.mkdir(parents=True, exist_ok=True)
            if self._as_root:
                shutil.chown(self.base, "postgres")
                shutil.chown(self.sockets, "postgres")
            self._run(
                str(PG_BIN / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            )
        self._pg_ctl("start")
        return self

    def _pg_ctl(self, action: str, *extra: str) -> None:
        options = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            str(PG_BIN / "pg_ctl"),
            action,
            "-D",
            str(self.data),
            "-w",
            "-t",
            str(int(START_TIMEOUT)),
            "-o",
            options,
            "-l",
            str(self.base / "postgres.log"),
            *extra,
        )

    def stop(self) -> None:
        """Stop it at once (`-m immediate`: every backend killed, as a crash would)."""
        if self.data.exists():
            self._run(
                str(PG_BIN / "pg_ctl"),
                "stop",
                "-D",
                str(self.data),
                "-m",
                "immediate",
                "-w",
                check=False,
            )

    def restart(self) -> None:
        """Down at once, then up on the same port (the data is kept: it was committed)."""
        self.stop()
        self._pg_ctl("start")

    def remove(self) -> None:
        """Stop it and delete the cluster."""
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)
