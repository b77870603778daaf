"""What this host offers for running a private pcscd: binaries, namespaces, free ports.

The probing half of `bridge.vcard.pcscd_harness`; standard library only.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import fcntl
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

DEFAULT_SOCKET = Path("/run/pcscd/pcscd.comm")
VPCD_CANDIDATES = (
    "/usr/lib/pcsc/drivers/serial/libifdvpcd.so",
    "/usr/lib64/pcsc/drivers/serial/libifdvpcd.so",
    "/usr/local/lib/pcsc/drivers/serial/libifdvpcd.so",
)
# Outside Linux's ephemeral range (32768-60999), so no outgoing connection takes them.
PORT_RANGE = (20000, 32000)
_PR_SET_PDEATHSIG = 1


class HarnessUnavailable(RuntimeError):
    """pcscd or vpcd is not installed, or pcscd cannot be run here (says why)."""


def find_pcscd() -> str | None:
    """Path of the pcscd binary (it lives in /usr/sbin, often not on a user's PATH)."""
    return shutil.which("pcscd") or shutil.which("pcscd", path="/usr/sbin:/sbin")


def find_vpcd_driver() -> str | None:
    """Path of vsmartcard's vpcd IFD handler (override: ICHIMAI_VPCD_DRIVER)."""
    override = os.environ.get("ICHIMAI_VPCD_DRIVER")
    if override:
        return override if os.path.exists(override) else None
    return next((p for p in VPCD_CANDIDATES if os.path.exists(p)), None)


def missing_pieces() -> list[str]:
    """What is not installed for the harness (Debian package names)."""
    missing = []
    if find_pcscd() is None:
        missing.append("pcscd")
    if find_vpcd_driver() is None:
        missing.append("vsmartcard-vpcd")
    return missing


def point_client_at(socket_path: Path) -> None:
    """Make this process's PC/SC client library talk to the pcscd at `socket_path`."""
    os.environ["PCSCLITE_CSOCK_NAME"] = str(socket_path)


def namespaces_work(as_root: bool) -> bool:
    """Can this process run a command in a private mount namespace?"""
    if shutil.which("unshare") is None:
        return False
    cmd = ["unshare", "--mount", "--propagation", "private"]
    if not as_root:
        cmd.append("--map-root-user")
    try:
        done = subprocess.run(  # noqa: S603 - fixed argv
            [*cmd, "true"], capture_output=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def service_running(path: Path) -> bool:
    """Does a pcscd answer on the Unix socket at `path`?"""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(str(path))
        except OSError:
            return False
    return True


def usb_drop_dir(pcscd: str) -> str | None:
    """pcscd's USB driver directory, from `pcscd --version` (usbdropdir=...)."""
    out = subprocess.run(  # noqa: S603 - fixed argv
        [pcscd, "--version"], capture_output=True, text=True, check=False
    )
    found = re.search(r"usbdropdir=(\S+)", out.stdout + out.stderr)
    return found.group(1) if found and os.path.isdir(found.group(1)) else None


def pcscd_options(pcscd: str) -> list[str]:
    """Options this pcscd build needs: newer ones ask polkit, which cannot see us."""
    out = subprocess.run(  # noqa: S603 - fixed argv
        [pcscd, "--help"], capture_output=True, text=True, check=False
    )
    return ["--disable-polkit"] if "--disable-polkit" in out.stdout + out.stderr else []


def private_dir_name() -> Path:
    """An unguessable path in the temporary directory (mkdir'ed with mode 0700 later)."""
    return Path(tempfile.gettempdir()) / f"ichimai-pcscd-{os.getpid()}-{secrets.token_hex(6)}"


def sweep_stale_dirs() -> None:
    """Remove our temporary pcscd directories left by processes that died (crashes)."""
    for path in Path(tempfile.gettempdir()).glob("ichimai-pcscd-*-*"):
        found = re.fullmatch(r"ichimai-pcscd-(\d+)-[0-9a-f]+", path.name)
        if not found or not path.is_dir() or path.stat().st_uid != os.geteuid():
            continue
        try:
            os.kill(int(found.group(1)), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except OSError:
            continue  # alive, owned by someone else


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("0.0.0.0", port))  # noqa: S104 - vpcd itself binds INADDR_ANY
        except OSError:
            return False
    return True


def claim_port_block(count: int) -> tuple[int, IO[bytes]]:
    """Claim `count` consecutive free ports in PORT_RANGE, tried from a random start.

    A free port can still be taken by another harness starting at the same moment (the
    other engineers' and CI's test sessions on one machine), so a block is claimed with
    an flock on a file named after it, held (the returned file) until the harness stops.
    """
    low, high = PORT_RANGE
    span = high - low - count
    start = secrets.randbelow(span)
    for i in range(span // count):
        base = low + (start + i * count) % span
        if not all(_port_free(base + k) for k in range(count)):
            continue
        try:  # another user's lock file is not writable for us: that block is taken
            lock = (Path(tempfile.gettempdir()) / f"ichimai-vpcd-{base}.lock").open("ab")
        except OSError:
            continue
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            continue
        return base, lock
    raise HarnessUnavailable("no block of free TCP ports for vpcd readers")


def die_with_parent() -> Callable[[], None] | None:
    """A Popen preexec_fn: SIGTERM the child when its parent dies (Linux), else None.

    Keeps a crashed test session from leaving card processes behind. Linux sends the
    signal when the *thread* that forked the child ends, not only the process
    (prctl(2), PR_SET_PDEATHSIG): start long-lived children from a long-lived thread
    (webapp.demo_reader.DemoReaders does, for taps from request threads). The libc
    function is looked up here, before the fork, so the child only makes one plain call.
    """
    if not sys.platform.startswith("linux"):
        return None
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return None
    prctl = ctypes.CDLL(libc_name, use_errno=True).prctl

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return preexec
