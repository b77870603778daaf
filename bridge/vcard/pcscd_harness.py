"""Our own pcscd with vpcd virtual readers, isolated from any system pcscd.

Used by the test session, the benches and demos: `with Pcscd(readers=4) as pcscd:`
starts pcscd with a reader.conf of vpcd readers on free TCP ports, and
`pcscd.attach(card_file)` inserts a virtual card file into a free reader by running
`python -m bridge.vcard attach --vpcd 127.0.0.1:PORT CARD` in a subprocess.

Isolation. pcsc-lite's client library honours PCSCLITE_CSOCK_NAME, but pcscd itself
(1.9.x) always serves /run/pcscd/pcscd.comm. So pcscd runs in a private mount
namespace (`unshare --mount`, plus `--map-root-user` when not root) where a temporary
directory is bound over /run: its socket lands in that directory, and this process
points PCSCLITE_CSOCK_NAME at it. In the same namespace an empty directory hides the
USB driver bundles, so our pcscd never claims a real reader. Where namespaces are not
allowed (an unprivileged container), it falls back to the default socket, starting
pcscd there only when none is running.

The client library reads PCSCLITE_CSOCK_NAME once per process, at its first call:
set it (`point_client_at`) before anything in the process talks to PC/SC.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ..errors import TransportError
from ..transports.pcsc import PcscContext
from .pcscd_host import (
    DEFAULT_SOCKET,
    HarnessUnavailable,
    claim_port_block,
    die_with_parent,
    find_pcscd,
    find_vpcd_driver,
    missing_pieces,
    namespaces_work,
    pcscd_options,
    point_client_at,
    private_dir_name,
    service_running,
    sweep_stale_dirs,
    usb_drop_dir,
)

__all__ = [
    "AttachedCard",
    "HarnessUnavailable",
    "Pcscd",
    "VirtualReader",
    "missing_pieces",
    "point_client_at",
]

# vpcd opens this many slots (one reader each) per reader.conf entry, on consecutive
# ports starting at the entry's CHANNELID (Debian's build: 2).
VPCD_SLOTS = 2
READER_PREFIX = "Ichimai vpcd"
_SOURCE_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True, slots=True)
class VirtualReader:
    """One vpcd reader slot: its PC/SC name and the TCP port a card connects to."""

    name: str
    port: int


# Runs inside the new mount namespace: bind our directories, then become pcscd.
_NAMESPACE_SCRIPT = """
set -e
mount --bind "$1" /run
if [ -n "$2" ]; then mount --bind "$3" "$2"; fi
shift 3
exec "$@"
"""


class Pcscd:
    """A pcscd of our own with `readers` vpcd readers; a context manager."""

    def __init__(self, readers: int = 4, *, base_dir: Path | None = None) -> None:
        self.wanted = readers
        # Created by start(), so that planning a pcscd (see point_client_at) leaves no trace.
        self.base = Path(base_dir) if base_dir else private_dir_name()
        self.readers: list[VirtualReader] = []
        self._as_root = os.geteuid() == 0
        # Decided up front so a caller can point its PC/SC client here before starting.
        if namespaces_work(self._as_root):
            self.isolation = "namespace"
            self.socket_path = self.base / "run" / "pcscd" / "pcscd.comm"
        else:
            self.isolation = "default-socket"
            self.socket_path = DEFAULT_SOCKET
        self._owns_base = base_dir is None
        self._port_lock: IO[bytes] | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._keepalive: PcscContext | None = None
        self._in_use: set[str] = set()
        self._attached: list[AttachedCard] = []

    def __enter__(self) -> Pcscd:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def log_path(self) -> Path:
        """Where pcscd's own log goes."""
        return self.base / "pcscd.log"

    def start(self, timeout: float = 15.0) -> None:
        """Start pcscd and wait until all readers are listed."""
        if self._proc is not None:
            return
        sweep_stale_dirs()
        self.base.mkdir(mode=0o700, exist_ok=True)
        pcscd, driver = find_pcscd(), find_vpcd_driver()
        if pcscd is None or driver is None:
            raise HarnessUnavailable(f"not installed: {', '.join(missing_pieces())}")
        entries = -(-self.wanted // VPCD_SLOTS)
        base_port, self._port_lock = claim_port_block(entries * VPCD_SLOTS)
        if self.isolation == "namespace":
            cmd = self._namespace_command(pcscd, driver, base_port, entries, self._as_root)
        else:
            cmd = self._shared_command(pcscd, driver, base_port, entries)
        point_client_at(self.socket_path)
        env = {**os.environ, "PCSCLITE_CSOCK_NAME": str(self.socket_path)}
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell input
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                preexec_fn=die_with_parent(),
            )
        atexit.register(self.stop)
        try:
            names = _wait_for_readers(entries * VPCD_SLOTS, timeout, self._check_alive)
        except BaseException:
            self.stop()
            raise
        self.readers = [_reader_for(name) for name in names][: self.wanted]
        self._keepalive = PcscContext()

    def _reader_conf(self, driver: str, base_port: int, entries: int) -> Path:
        """Write reader.conf: one entry per VPCD_SLOTS readers; CHANNELID = first port.

        vpcd keeps its sockets in a static table indexed by slot, which every entry that
        loads the same library shares: a second entry would silently take over the
        first one's slots. pcscd loads each distinct LIBPATH separately, so each entry
        gets its own copy of the driver.
        """
        blocks = []
        for k in range(entries):
            port = base_port + k * VPCD_SLOTS
            copy = self.base / f"libifdvpcd-{k}.so"
            shutil.copyfile(os.path.realpath(driver), copy)
            blocks.append(
                f'FRIENDLYNAME "{READER_PREFIX} {port}"\n'
                f"DEVICENAME   /dev/null:{port}\n"
                f"LIBPATH      {copy}\n"
                f"CHANNELID    {port}\n"
            )
        conf = self.base / "reader.conf"
        conf.write_text("\n".join(blocks))
        return conf

    def _pcscd_argv(self, pcscd: str, conf: Path) -> list[str]:
        # --auto-exit: if this process dies without stopping it, pcscd quits 60 s after
        # its last client (our keep-alive context) is gone.
        argv = [pcscd, "--foreground", "--auto-exit", "--config", str(conf)]
        return [*argv, *pcscd_options(pcscd)]

    def _namespace_command(
        self, pcscd: str, driver: str, base_port: int, entries: int, as_root: bool
    ) -> list[str]:
        run_dir, empty = self.base / "run", self.base / "empty"
        run_dir.mkdir(exist_ok=True)
        empty.mkdir(exist_ok=True)
        usb = usb_drop_dir(pcscd) or ""  # hidden below; vpcd loads from our copies
        conf = self._reader_conf(driver, base_port, entries)
        ns = ["unshare", "--mount", "--propagation", "private"]
        if not as_root:
            ns.append("--map-root-user")
        return [
            *ns,
            "sh",
            "-c",
            _NAMESPACE_SCRIPT,
            "sh",
            str(run_dir),
            usb,
            str(empty),
            *self._pcscd_argv(pcscd, conf),
        ]

    def _shared_command(self, pcscd: str, driver: str, base_port: int, entries: int) -> list[str]:
        if service_running(DEFAULT_SOCKET):
            raise HarnessUnavailable(
                "a system pcscd is running and mount namespaces are not allowed here, "
                "so a private pcscd cannot be started (stop the system pcscd, or allow "
                "`unshare --mount`)"
            )
        if not os.access(DEFAULT_SOCKET.parent.parent, os.W_OK):
            raise HarnessUnavailable(
                f"mount namespaces are not allowed and {DEFAULT_SOCKET.parent} is not writable"
            )
        return self._pcscd_argv(pcscd, self._reader_conf(driver, base_port, entries))

    def _check_alive(self) -> None:
        """Raise HarnessUnavailable with pcscd's log if it has exited."""
        if self._proc is not None and self._proc.poll() is not None:
            raise HarnessUnavailable(
                f"pcscd exited with {self._proc.returncode}: {self.log_tail()}"
            )

    def log_tail(self, lines: int = 20) -> str:
        """The end of pcscd's log (for error messages)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Remove every attached card, stop pcscd and delete the temporary directory."""
        atexit.unregister(self.stop)
        for card in list(self._attached):
            card.remove()
        if self._keepalive is not None:
            self._keepalive.release()
            self._keepalive = None
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._port_lock is not None:
            self._port_lock.close()
            self._port_lock = None
        if self._owns_base:
            shutil.rmtree(self.base, ignore_errors=True)

    def free_reader(self, *, last: bool = False) -> VirtualReader:
        """A reader with no card attached by this harness (the first, or the last one)."""
        for reader in reversed(self.readers) if last else self.readers:
            if reader.name not in self._in_use:
                return reader
        raise HarnessUnavailable(f"all {len(self.readers)} virtual readers are in use")

    def attach(
        self, card_file: Path | str, reader: VirtualReader | None = None, timeout: float = 15.0
    ) -> AttachedCard:
        """Insert a card file into a reader (a free one by default); wait until present."""
        reader = reader or self.free_reader()
        cmd = [
            sys.executable,
            "-m",
            "bridge.vcard",
            "attach",
            "--vpcd",
            f"127.0.0.1:{reader.port}",
            str(card_file),
        ]
        return self.attach_command(cmd, reader, timeout)

    def attach_command(
        self, cmd: list[str], reader: VirtualReader, timeout: float = 15.0
    ) -> AttachedCard:
        """Run a card-side command that connects to `reader`'s port; wait until present."""
        log = (self.base / f"card-{reader.port}.log").open("ab")
        # The card process must import this very tree, installed or not.
        path = os.pathsep.join(p for p in (str(_SOURCE_ROOT), os.environ.get("PYTHONPATH")) if p)
        proc = subprocess.Popen(  # noqa: S603 - argv built by the caller, no shell
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": path},
            preexec_fn=die_with_parent(),
        )
        log.close()
        card = AttachedCard(self, reader, proc)
        self._in_use.add(reader.name)
        self._attached.append(card)
        try:
            _wait_for_card(reader.name, True, timeout, card.check_alive)
        except BaseException:
            card.remove()
            raise
        return card

    def _released(self, card: AttachedCard) -> None:
        self._in_use.discard(card.reader.name)
        with contextlib.suppress(ValueError):
            self._attached.remove(card)


@dataclass
class AttachedCard:
    """A virtual card inserted into a vpcd reader by a subprocess."""

    harness: Pcscd
    reader: VirtualReader
    process: subprocess.Popen[bytes]
    removed: bool = False

    def check_alive(self) -> None:
        """Raise HarnessUnavailable with the card's log if its process has exited."""
        if self.process.poll() is not None:
            log = self.harness.base / f"card-{self.reader.port}.log"
            text = log.read_text(errors="replace") if log.exists() else ""
            raise HarnessUnavailable(
                f"card process exited with {self.process.returncode}: {text[-2000:]}"
            )

    def remove(self, timeout: float = 10.0) -> None:
        """Take the card out cleanly (SIGTERM) and wait until the reader is empty."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._settle(timeout)

    def yank(self, timeout: float = 10.0) -> None:
        """Pull the card out abruptly: SIGKILL the card process, as a hand would."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._settle(timeout)

    def _settle(self, timeout: float) -> None:
        if self.removed:
            return  # already out; another card may be in this reader now
        self.removed = True
        try:
            if self.harness._proc is not None and self.harness._proc.poll() is None:
                _wait_for_card(self.reader.name, False, timeout, lambda: None)
        finally:
            self.harness._released(self)


def _reader_for(name: str) -> VirtualReader:
    """Map 'Ichimai vpcd <entry port> 00 <slot>' to its TCP port (entry port + slot)."""
    found = re.fullmatch(rf"{re.escape(READER_PREFIX)} (\d+) [0-9A-F]{{2}} ([0-9A-F]{{2}})", name)
    if not found:
        raise HarnessUnavailable(f"unexpected reader name {name!r}")
    return VirtualReader(name, int(found.group(1)) + int(found.group(2), 16))


def _wait_for_readers(count: int, timeout: float, check: Callable[[], None]) -> list[str]:
    """Our readers' names, once pcscd lists all `count` of them."""
    deadline = time.monotonic() + timeout
    names: list[str] = []
    while time.monotonic() < deadline:
        check()
        try:
            with PcscContext() as ctx:
                names = [n for n in ctx.readers() if n.startswith(READER_PREFIX)]
        except TransportError:
            names = []  # pcscd still starting
        if len(names) >= count:
            return sorted(names, key=lambda n: _reader_for(n).port)
        time.sleep(0.05)
    raise HarnessUnavailable(f"pcscd listed {len(names)} of {count} vpcd readers in {timeout} s")


def _wait_for_card(name: str, present: bool, timeout: float, check: Callable[[], None]) -> None:
    """Wait until the reader `name` holds a card (present=True) or is empty."""
    deadline = time.monotonic() + timeout
    with PcscContext() as ctx:
        while ctx.card_present(name) != present:
            check()
            if time.monotonic() > deadline:
                state = "inserted" if present else "removed"
                raise HarnessUnavailable(f"card not {state} in {name!r} after {timeout} s")
            time.sleep(0.02)


def main(argv: list[str] | None = None) -> int:
    """`python -m bridge.vcard.pcscd_harness CARD...`: a private pcscd with these cards in.

    Prints the PCSCLITE_CSOCK_NAME to export so other programs (OpenSC, the bridge) see
    the virtual readers, then waits until Ctrl-C.
    """
    cards = sys.argv[1:] if argv is None else argv
    with Pcscd(readers=max(2, len(cards))) as pcscd:
        for card_file in cards:
            print(f"{card_file} -> {pcscd.attach(card_file).reader.name}", flush=True)
        print(f"export PCSCLITE_CSOCK_NAME={pcscd.socket_path}", flush=True)
        # Blocked only now: children started earlier keep the default mask.
        stop = {signal.SIGINT, signal.SIGTERM}
        signal.pthread_sigmask(signal.SIG_BLOCK, stop)
        signal.sigwait(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
