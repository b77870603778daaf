"""The bridge as a library installs it: the `ichimai-bridge` wheel the platform serves,
in a fresh virtual environment with no other project code, paired with a code from the
admin page, reading a virtual card through pcscd; and `ichimai-bridge status` saying
what is wrong (no PC/SC service, a reader without a card, not connected, clock skew,
platform unreachable, revoked) with real parts.

The virtual environment is built once per test session (python -m venv, then pip
installs the wheel downloaded from a live platform; its dependencies come from PyPI or
pip's cache). Where PyPI cannot be reached the tests skip (fail under CI=true).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from bridge import jpki
from bridge.status import check_platform
from bridge.transport import drive
from bridge.vcard.pcscd_harness import Pcscd
from tests.fixtures.cards import DemoCard
from tests.fixtures.pcsc import AttachCard, unavailable
from webapp import db
from webapp.scaled import free_port
from webapp.staff import services as staff_services
from webapp.staff.models import Role
from webapp.terminals import api_views
from webapp.terminals.bridge_wheel import WHEEL_NAME
from webapp.terminals.testing import LivePlatform

ADMIN_PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class InstalledBridge:
    """A virtual environment with only the bridge's wheel (and its dependencies)."""

    root: Path
    work: Path  # a directory with no project code: every command runs here

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    @property
    def command(self) -> Path:
        return self.root / "bin" / "ichimai-bridge"

    def env(self, pcscd_socket: Path | str | None = None, **extra: str) -> dict[str, str]:
        """A clean environment: no PYTHONPATH, no display; PC/SC as asked."""
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "VIRTUAL_ENV", "DISPLAY", "WAYLAND_DISPLAY")
        }
        env["PATH"] = f"{self.root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env["LANG"] = "C.UTF-8"
        if pcscd_socket is not None:
            env["PCSCLITE_CSOCK_NAME"] = str(pcscd_socket)
        return {**env, **extra}

    def run(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """`ichimai-bridge ARGS` as a person types it."""
        return subprocess.run(
            [str(self.command), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env or self.env(),
            cwd=self.work,
            check=False,
        )

    def status(self, home: Path, env: dict[str, str]) -> tuple[int, dict[str, list[str]]]:
        """`ichimai-bridge status --json`: (exit code, finding code -> texts)."""
        done = self.run("status", "--home", str(home), "--json", "--timeout", "5", env=env)
        assert done.stdout, done.stderr
        found: dict[str, list[str]] = {}
        for item in json.loads(done.stdout):
            found.setdefault(item["code"], []).append(item["text"])
        return done.returncode, found


def _under_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="session")
def installed_bridge(tmp_path_factory: pytest.TempPathFactory) -> InstalledBridge:
    """Download the wheel from a live platform and install it into a fresh venv (once)."""
    base = tmp_path_factory.mktemp("bridge-venv")
    with LivePlatform(base, extra={"BRIDGE_WHEEL_DIR": str(base / "wheels")}) as live:
        wheel = base / WHEEL_NAME
        with urllib.request.urlopen(f"{live.url}/bridge/{WHEEL_NAME}", timeout=120) as answer:  # noqa: S310
            assert answer.status == 200
            wheel.write_bytes(answer.read())
    root, work = base / "venv", base / "work"
    work.mkdir()
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True, timeout=120)
    installed = subprocess.run(
        [str(root / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=work,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        check=False,
    )
    if installed.returncode != 0:
        reason = f"pip could not install the bridge wheel: {installed.stderr[-2000:]}"
        if _under_ci() or "No matching distribution" not in installed.stderr:
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return InstalledBridge(root, work)


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[LivePlatform]:
    with LivePlatform(tmp_path) as live:
        with live.app.app_context(), db.new_session() as s:
            staff_services.create_staff(s, "root", ADMIN_PASSWORD, Role.PLATFORM_ADMIN, None)
        yield live


def csrf_token(html: str) -> str:
    """The form's CSRF token (LivePlatform turns the check off: then there is none)."""
    found = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', html)
    return found.group(1) if found else ""


def code_from_admin_page(platform: LivePlatform, terminal: int) -> tuple[str, str]:
    """Sign in as an admin, press *Make a pairing code*: (code, the pair command shown)."""
    client = platform.app.test_client()
    page = client.get("/staff/login").get_data(as_text=True)
    signed = client.post(
        "/staff/login",
        data={"login": "root", "password": ADMIN_PASSWORD, "csrf_token": csrf_token(page)},
    )
    assert signed.status_code == 302
    listing = client.get("/admin/terminals/").get_data(as_text=True)
    made = client.post(
        f"/admin/terminals/{terminal}/pairing-code", data={"csrf_token": csrf_token(listing)}
    ).get_data(as_text=True)
    code = re.search(r'id="pairing-code">([0-9A-Z]{5}-[0-9A-Z]{5})<', made)
    command = re.search(r'id="pair-command">([^<]+)<', made)
    assert code and command, made
    assert f"{platform.url}/bridge/{WHEEL_NAME}" in made  # the download, on the same page
    assert "ichimai-bridge install-autostart" in made
    return code.group(1), command.group(1)


def test_the_installed_wheel_holds_the_bridge_and_nothing_of_the_platform(
    installed_bridge: InstalledBridge,
) -> None:
    python, env = str(installed_bridge.python), installed_bridge.env()
    for module in ("webapp", "flask", "sqlalchemy"):
        found = subprocess.run(
            [python, "-c", f"import {module}"],
            capture_output=True,
            text=True,
            env=env,
            cwd=installed_bridge.work,
            check=False,
        )
        assert found.returncode == 1 and "ModuleNotFoundError" in found.stderr, module
    # Every module of the installed package imports (no virtual card, no platform needed).
    every = (
        "import importlib, pkgutil, bridge; "
        "names = [m.name for m in pkgutil.walk_packages(bridge.__path__, 'bridge.')]; "
        "[importlib.import_module(n) for n in names]; "
        "print(bridge.__file__); print(' '.join(sorted(names)))"
    )
    listed = subprocess.run(
        [python, "-c", every], capture_output=True, text=True, env=env, cwd=installed_bridge.work
    )
    assert listed.returncode == 0, listed.stderr
    where, names = listed.stdout.splitlines()
    assert where.startswith(str(installed_bridge.root))
    assert "bridge.status" in names and "bridge.vcard" not in names
    version = installed_bridge.run("--version")
    assert version.returncode == 0 and version.stdout.startswith("ichimai-bridge ")


@pytest.mark.pcsc
def test_pair_from_the_admin_page_and_read_a_card_through_pcscd(
    installed_bridge: InstalledBridge,
    platform: LivePlatform,
    pcscd: Pcscd,
    attach_card: AttachCard,
    card_file: DemoCard,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    terminal = platform.terminal("Counter 1")
    code, command = code_from_admin_page(platform, terminal)
    argv = command.split()
    assert argv == ["ichimai-bridge", "pair", platform.url, code]
    home = tmp_path / "bridge-home"
    env = installed_bridge.env(pcscd.socket_path, ICHIMAI_BRIDGE_HOME=str(home))
    paired = installed_bridge.run(*argv[1:], "--name", "counter PC", env=env)
    assert paired.returncode == 0, paired.stderr
    assert "paired: bridge brg_" in paired.stdout

    # Paired, not running yet: the status says to start it.
    code_, found = installed_bridge.status(home, env)
    assert code_ == 1 and "paired" in found and "not_connected" in found
    assert "ichimai-bridge run" in found["not_connected"][0]
    assert "pcsc_ok" in found and "no_card" in found  # the harness's empty vpcd readers
    assert "clock_ok" in found

    card = attach_card(card_file.path)
    reader = card.reader.name
    log = tmp_path / "bridge.log"
    with log.open("wb") as out:
        run = subprocess.Popen(
            [str(installed_bridge.command), "run", "--keyboard", "none", "--reader", reader],
            env=env,
            cwd=installed_bridge.work,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        platform.wait_ready(terminal, timeout=30)
        certificate = drive(jpki.read_certificate(), platform.remote(terminal))
        assert certificate == card_file.issued.auth_cert_der

        code_, found = installed_bridge.status(home, env)
        assert "connected" in found and "card_present" in found, found
        assert any(reader in text for text in found["card_present"])
        assert "no_card" in found  # the other readers: a note, not a problem
        assert found.get("keyboard_unavailable"), found  # no display here: it says why
        assert code_ == 0, found

        # This PC's clock ten minutes ahead of the platform's.
        real = api_views.server_time
        monkeypatch.setattr(api_views, "server_time", lambda: real() - 600)
        code_, found = installed_bridge.status(home, env)
        assert code_ == 1 and "clock_skew" in found
        assert "10 minute" in found["clock_skew"][0] and "ahead" in found["clock_skew"][0]
        monkeypatch.setattr(api_views, "server_time", real)

        # No PC/SC service (pcscd not running: its socket is not there).
        gone = installed_bridge.env(tmp_path / "no-pcscd.comm", ICHIMAI_BRIDGE_HOME=str(home))
        code_, found = installed_bridge.status(home, gone)
        assert code_ == 1 and "no_service" in found and "pcscd" in found["no_service"][0]

        # Revoked by an admin: `run` ends (exit 3), the status says to pair again.
        bridge_id = json.loads((home / "bridge.json").read_text())["bridge_id"]
        assert platform.admin("POST", f"/api/v1/admin/bridges/{bridge_id}/revoke")[0] == 200
        assert run.wait(timeout=15) == 3
        code_, found = installed_bridge.status(home, env)
        assert code_ == 1 and "revoked" in found
        assert f"ichimai-bridge pair {platform.url} CODE" in found["revoked"][0]
    finally:
        if run.poll() is None:
            run.kill()
        run.wait()
    # Japanese by default where the locale is Japanese.
    ja = installed_bridge.status(home, {**env, "LANG": "ja_JP.UTF-8"})[1]
    assert "無効" in ja["revoked"][0]


def test_status_when_the_platform_cannot_be_reached(
    installed_bridge: InstalledBridge, platform: LivePlatform, tmp_path: Path
) -> None:
    home = tmp_path / "bridge-home"
    platform.pair_bridge(home)
    # The platform moved away (or is down): nothing answers at the address the bridge has.
    config = json.loads((home / "bridge.json").read_text())
    config["platform"] = f"http://127.0.0.1:{free_port()}"
    (home / "bridge.json").write_text(json.dumps(config))
    env = installed_bridge.env(tmp_path / "no-pcscd.comm")
    code_, found = installed_bridge.status(home, env)
    assert code_ == 1 and "platform_unreachable" in found, found
    assert config["platform"] in found["platform_unreachable"][0]
    assert "network" in found["platform_unreachable"][0]


def test_status_before_pairing(installed_bridge: InstalledBridge, tmp_path: Path) -> None:
    env = installed_bridge.env(tmp_path / "no-pcscd.comm")
    code_, found = installed_bridge.status(tmp_path / "nothing", env)
    assert code_ == 1 and "not_paired" in found
    assert "ichimai-bridge pair" in found["not_paired"][0]


def test_install_autostart_writes_a_systemd_user_unit(
    installed_bridge: InstalledBridge, tmp_path: Path
) -> None:
    env = installed_bridge.env(HOME=str(tmp_path), PATH=str(installed_bridge.root / "bin"))
    shown = installed_bridge.run("install-autostart", "--dry-run", env=env)
    assert shown.returncode == 0, shown.stderr
    assert f"ExecStart={installed_bridge.python} -m bridge run" in shown.stdout
    assert not (tmp_path / ".config").exists()  # a dry run changes nothing
    # No systemctl on this PATH: the unit is written and the commands are shown.
    done = installed_bridge.run("install-autostart", env=env)
    unit = tmp_path / ".config" / "systemd" / "user" / "ichimai-bridge.service"
    assert done.returncode == 1 and unit.exists()
    assert "systemctl --user enable --now ichimai-bridge.service" in done.stderr
    assert "RestartPreventExitStatus=2 3" in unit.read_text()


def test_the_platform_serves_the_wheel_and_the_install_page(
    platform: LivePlatform,
) -> None:
    client = platform.app.test_client()
    page = client.get("/bridge/").get_data(as_text=True)
    assert f"{platform.url}/bridge/{WHEEL_NAME}" in page
    assert f"ichimai-bridge pair {platform.url} CODE" in page
    assert "py -m pip install" in page and "pipx install" in page
    assert client.get("/bridge/ichimai_bridge-0.0.1-py3-none-any.whl").status_code == 404
    assert client.get("/bridge/..%2Fplatform.db").status_code == 404


def test_the_check_refuses_a_key_it_does_not_know_and_bad_input(
    platform: LivePlatform, tmp_path: Path
) -> None:
    identity = platform.pair_bridge(tmp_path / "home")
    stranger = replace(identity, auth_key=ed25519.Ed25519PrivateKey.generate())
    [found] = check_platform(stranger, "en", timeout=5)
    assert found.code == "unknown_bridge" and "new pairing code" in found.text
    assert [f.code for f in check_platform(identity, "en", timeout=5)][:2] == [
        "platform_ok",
        "not_connected",
    ]
    client = platform.app.test_client()
    for body in (
        None,
        {},
        {"bridge_id": identity.bridge_id, "nonce": "!!", "signature": "AA"},
        {"bridge_id": "x" * 41, "nonce": "A" * 22, "signature": "A" * 86},
        {"bridge_id": identity.bridge_id, "nonce": "A" * 22, "signature": "A" * 10},
    ):
        answer = client.post("/api/v1/bridges/check", json=body)
        assert answer.status_code == 400, body
        assert answer.get_json()["error"]["code"] == "invalid_request"


# A second pcscd of its own with no reader at all, in its own process (this process's
# PC/SC client stays on the session's pcscd: libpcsclite reads its socket name once).
_NO_READERS = """
import os, shutil, signal, subprocess, sys, time
from bridge.errors import TransportError
from bridge.transports.pcsc import PcscContext
from bridge.vcard.pcscd_harness import Pcscd
from bridge.vcard.pcscd_host import find_pcscd, find_vpcd_driver
planned = Pcscd(readers=2)  # only for its private directory and namespace command
if planned.isolation != "namespace":
    print("unavailable: no mount namespaces here", flush=True)
    sys.exit(0)
planned.base.mkdir(mode=0o700, exist_ok=True)
# reader.conf with no entry, USB drivers hidden: a pcscd that has no reader at all.
argv = planned._namespace_command(find_pcscd(), find_vpcd_driver(), 0, 0, planned._as_root)
os.environ["PCSCLITE_CSOCK_NAME"] = str(planned.socket_path)  # before this process's first call
pcscd = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
deadline = time.monotonic() + 15
while True:
    try:
        PcscContext().release()
        break
    except TransportError:
        if time.monotonic() > deadline or pcscd.poll() is not None:
            print("unavailable: pcscd without readers did not start", flush=True)
            sys.exit(0)
        time.sleep(0.05)
print(planned.socket_path, flush=True)
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
signal.sigwait({signal.SIGTERM})
pcscd.terminate()
pcscd.wait(10)
shutil.rmtree(planned.base, ignore_errors=True)
"""


@pytest.fixture
def pcscd_without_readers(pcscd: Pcscd) -> Iterator[str]:
    """The socket of a running pcscd that has no reader (the session's pcscd must work)."""
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-c", _NO_READERS],
        stdout=subprocess.PIPE,
        text=True,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line or line.startswith("unavailable"):
            unavailable(line or "the reader-less pcscd did not start")
        yield line
    finally:
        proc.terminate()
        proc.communicate(timeout=20)


def test_status_without_a_reader(
    installed_bridge: InstalledBridge, pcscd_without_readers: str, tmp_path: Path
) -> None:
    env = installed_bridge.env(pcscd_without_readers)
    code_, found = installed_bridge.status(tmp_path / "nothing", env)
    assert code_ == 1 and "no_reader" in found, found
    assert "USB" in found["no_reader"][0] and "libccid" in found["no_reader"][0]
    assert "pcsc_ok" not in found and "no_service" not in found
