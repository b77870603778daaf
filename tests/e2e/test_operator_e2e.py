"""The README's operator section, followed to the letter on a fresh PostgreSQL database
and Redis: the documented commands (demo J-LIS, migrate, doctor, first admin, provider,
terminal, gunicorn -w 4, pairing code, bridge), then a demo card tapped through the paired
bridge reaches a counter lookup in Debian's Chromium. A revoked card leaves exactly one log
line with its code; /metrics (with the token) shows the taps. Then SIGTERM: gunicorn stops
within seconds and the bridge was told 1001 "going away".

Each command runs as the operator types it (a subprocess in the checkout, settings from
the environment only); nothing here calls the platform's Python directly.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bridge.vcard.pcscd_harness import Pcscd, VirtualReader
from tests.e2e.counter_stack import shoot
from tests.support.postgres import server_engine
from tests.support.services import REDIS_URL, redis_up
from webapp.scaled import free_port, scratch_database

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ADMIN_PASSWORD = "operator-first-admin"
STOP_WITHIN_SECONDS = 5.0


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """One documented command, in the checkout, as the operator runs it."""
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
    return done


def flask(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run([str(BIN / "flask"), "--app", "app", *args], env)


@dataclass
class Deployment:
    """What the operator has after the README's first run."""

    url: str
    env: dict[str, str]
    home: Path
    gunicorn: subprocess.Popen[bytes]
    bridge: subprocess.Popen[bytes]
    terminal_id: int
    reader: VirtualReader
    cards: dict[str, Path]

    @property
    def gunicorn_log(self) -> str:
        return (self.home / "gunicorn.log").read_text(errors="replace")

    @property
    def bridge_log(self) -> str:
        return (self.home / "bridge.log").read_text(errors="replace")

    def events(self, name: str) -> list[dict[str, Any]]:
        """The platform's JSON log lines of event `name`."""
        found = []
        for line in self.gunicorn_log.splitlines():
            if line.startswith("{"):
                record = json.loads(line)
                if record.get("event") == name:
                    found.append(record)
        return found

    def metric_values(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """/metrics as {(sample name, sorted labels): value}."""
        from prometheus_client.parser import text_string_to_metric_families

        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(self.metrics())
            for sample in family.samples
        }

    def wait_bridges_online(self, count: int, within: float = 30.0) -> None:
        """Until /metrics counts `count` bridges online (a bridge connects on its own)."""
        deadline = time.monotonic() + within
        while True:
            online = self.metric_values().get(("ichimai_bridges_online", ()), 0)
            if online == count:
                return
            assert time.monotonic() < deadline, f"{online} bridges online, not {count}"
            time.sleep(0.2)

    def metrics(self) -> str:
        token = self.env["ICHIMAI_METRICS_TOKEN"]
        request = urllib.request.Request(  # noqa: S310 - loopback
            f"{self.url}/metrics", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            return answer.read().decode()


def _wait_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "gunicorn exited"
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as r:  # noqa: S310
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError("gunicorn did not come up")


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is not None and process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def operator(
    pcscd: Pcscd, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Deployment]:
    """The README's "Running it yourself" steps, one by one."""
    if request.config.getoption("--deployment") == "scaled":
        pytest.skip("builds its own gunicorn deployment: once per suite (the default run)")
    with server_engine():
        pass  # skips (fails under CI) without PostgreSQL
    if not redis_up():
        pytest.skip(f"Redis unreachable at {REDIS_URL}")
    home = tmp_path_factory.mktemp("operator")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    gunicorn = bridge = None
    with scratch_database() as database_url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ICHIMAI_")}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        env.update(
            {
                # 1. Settings (README: "Settings", docs/operations.md).
                "ICHIMAI_DATABASE_URL": database_url,
                "ICHIMAI_BUS_URL": REDIS_URL,
                "ICHIMAI_NAMESPACE": f"op-{secrets.token_hex(4)}",
                "ICHIMAI_SECRET_KEY": secrets.token_hex(32),
                "ICHIMAI_ORIGIN": url,
                "ICHIMAI_METRICS_TOKEN": secrets.token_hex(32),
                # Demo mode: the demo J-LIS, no card key secret needed.
                "ICHIMAI_DEMO": "1",
                "ICHIMAI_DEMO_JLIS_DIR": str(home / "jlis"),
            }
        )
        # 2. The demo J-LIS and demo cards (one lost: revoked).
        python = [sys.executable, "-m"]
        run([*python, "bridge.vcard", "ca", "init", str(home / "jlis")], env)
        cards = {name: home / f"{name}.card" for name in ("alice", "lost")}
        for card in cards.values():
            issue = ["issue", "--ca", str(home / "jlis"), "--pin", "1234"]
            run([*python, "bridge.vcard", *issue, "--sign-password", "ABC123", str(card)], env)
        run(
            [*python, "bridge.vcard", "revoke", "--ca", str(home / "jlis"), str(cards["lost"])], env
        )
        # 3. Migrate (it says what it did), check, the first admin, provider, terminal.
        migrated = run([str(BIN / "alembic"), "upgrade", "head"], env)
        assert "Running upgrade" in migrated.stderr and " is at " in migrated.stderr
        flask("doctor", env=env)
        flask(
            "staff", "create-admin", "admin", env={**env, "ICHIMAI_ADMIN_PASSWORD": ADMIN_PASSWORD}
        )
        made = flask("providers", "create", "JP-1000001", "--name-ja", "中央図書館", env=env)
        provider_id = made.stdout.split()[2]
        made = flask("terminals", "create", "カウンター1", "--provider", provider_id, env=env)
        terminal_id = int(made.stdout.split()[2])
        try:
            # 4. The platform: gunicorn, 4 gevent workers (gunicorn.conf.py).
            with (home / "gunicorn.log").open("wb") as log:
                gunicorn = subprocess.Popen(
                    [str(BIN / "gunicorn"), "-w", "4", "-b", f"127.0.0.1:{port}", "app:app"],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            _wait_healthy(url, gunicorn)
            # 5. Pair the counter's bridge with a one-time code, and run it on its reader.
            code = flask("terminals", "pairing-code", str(terminal_id), env=env).stdout.strip()
            bridge_home = home / "bridge"
            bridge_env = {**env, "PCSCLITE_CSOCK_NAME": str(pcscd.socket_path)}
            run([*python, "bridge", "pair", url, code, "--home", str(bridge_home)], bridge_env)
            reader = pcscd.readers[1]
            with (home / "bridge.log").open("wb") as log:
                bridge = subprocess.Popen(
                    [
                        *python,
                        "bridge",
                        "run",
                        "--home",
                        str(bridge_home),
                        "--reader",
                        reader.name,
                        "--keyboard",
                        "none",
                    ],
                    cwd=ROOT,
                    env=bridge_env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            yield Deployment(url, env, home, gunicorn, bridge, terminal_id, reader, cards)
        finally:
            _stop(bridge)
            _stop(gunicorn)


def test_a_demo_card_reaches_a_counter_lookup(
    operator: Deployment, pcscd: Pcscd, browser: Any
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    attached = None
    try:
        page.goto(f"{operator.url}/staff/login?lang=en")
        page.fill("#login", "admin")
        page.fill("#password", ADMIN_PASSWORD)
        page.click("button[type=submit]")
        page.goto(f"{operator.url}/counter/")
        page.click(f"form[action$='/open/{operator.terminal_id}'] button")
        page.wait_for_selector("#reader-state[data-online='true']", timeout=30_000)

        def tap(card: str, state: str) -> None:
            nonlocal attached
            if attached is not None:
                attached.remove()
            attached = pcscd.attach(operator.cards[card], operator.reader)
            try:
                page.wait_for_selector(f"#counter[data-state='{state}']", timeout=30_000)
            except Exception:
                history = page.evaluate("() => window.counter.history")
                raise AssertionError(f"counter states: {history}") from None

        # A card new to this fresh deployment: read through the bridge, checked against
        # the demo J-LIS, looked up: no MyKey ID yet (the citizen makes one at a kiosk).
        tap("alice", "error:not_registered")
        shoot(page, "40-operator-first-lookup")
        tap("lost", "error:revoked")
        shoot(page, "41-operator-revoked-card")
    finally:
        if attached is not None:
            attached.remove()
        context.close()

    refused = operator.events("card_refused")
    assert len(refused) == 1, refused
    (line,) = refused
    assert line["code"] == "revoked" and line["terminal"] == operator.terminal_id
    # No person in it: no card key, certificate, MyKey ID or number.
    assert set(line) <= {"ts", "level", "logger", "event", "code", "reason", "terminal"} | {
        "provider",
        "purpose",
        "pid",
    }
    values = operator.metric_values()
    assert values[("ichimai_taps_total", (("kind", "counter"),))] >= 2
    assert values[("ichimai_refusals_total", (("code", "revoked"), ("what", "card")))] == 1
    assert values[("ichimai_bridges_online", ())] == 1
    assert operator.events("bridge_connected")


def test_a_worker_stopping_moves_its_bridge_to_another(
    operator: Deployment, pcscd: Pcscd, browser: Any
) -> None:
    """SIGTERM to the one worker holding the bridge (a rolling restart): it closes the
    socket with 1001, the bridge comes back on another worker, and the next tap works."""
    (holder,) = {e["pid"] for e in operator.events("bridge_connected")}
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    attached = None
    try:
        page.goto(f"{operator.url}/staff/login?lang=en")
        page.fill("#login", "admin")
        page.fill("#password", ADMIN_PASSWORD)
        page.click("button[type=submit]")
        page.goto(f"{operator.url}/counter/")
        page.click(f"form[action$='/open/{operator.terminal_id}'] button")
        page.wait_for_selector("#reader-state[data-online='true']", timeout=30_000)
        os.kill(holder, signal.SIGTERM)
        attached = pcscd.attach(operator.cards["alice"], operator.reader)
        page.wait_for_selector("#counter[data-state='error:not_registered']", timeout=30_000)
    finally:
        if attached is not None:
            attached.remove()
        context.close()
    gone = [e for e in operator.events("bridge_disconnected") if e["pid"] == holder]
    assert [e["why"] for e in gone] == ["going_away"]
    assert {e["pid"] for e in operator.events("bridge_connected")} - {holder}
    assert "going away (1001)" in operator.bridge_log


def test_sigterm_stops_gunicorn_in_seconds_and_tells_the_bridge_1001(
    operator: Deployment,
) -> None:
    operator.wait_bridges_online(1)
    started = time.monotonic()
    operator.gunicorn.send_signal(signal.SIGTERM)
    operator.gunicorn.wait(timeout=30)
    took = time.monotonic() - started
    assert took < STOP_WITHIN_SECONDS, (
        f"gunicorn took {took:.1f} s to stop:\n{operator.gunicorn_log[-6000:]}"
    )
    _stop(operator.bridge)  # its log is complete once it has exited
    assert operator.bridge_log.count("going away (1001)") >= 2, operator.bridge_log
    assert [e["why"] for e in operator.events("bridge_disconnected")][-1] == "going_away"
