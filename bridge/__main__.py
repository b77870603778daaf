"""`ichimai-bridge pair PLATFORM_URL CODE`, `run`, `status`, `install-autostart`.

The same as `python -m bridge ...` (the console script of the `ichimai-bridge` wheel).
"""

from __future__ import annotations

import argparse
import logging
import queue
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

from . import __version__
from .pairing import BridgeStateError, PairingFailed, default_home, load, pair

log = logging.getLogger("bridge")

EXIT_REVOKED = 3
EXIT_NOT_PAIRED = 2


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--home",
        type=Path,
        default=None,
        help="state directory (default: $ICHIMAI_BRIDGE_HOME or ~/.config/ichimai-bridge)",
    )
    common.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser = argparse.ArgumentParser(prog="ichimai-bridge", description=__doc__)
    parser.add_argument("--version", action="version", version=f"ichimai-bridge {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "pair", parents=[common], help="enrol this bridge with a one-time pairing code"
    )
    p.add_argument("platform", help="platform URL, e.g. https://ichimai.example.jp")
    p.add_argument("code", help="the pairing code an administrator made for a terminal")
    p.add_argument("--name", default="", help="a name for this bridge (shown to admins)")

    r = sub.add_parser(
        "run", parents=[common], help="connect to the platform and serve the card readers"
    )
    r.add_argument("--sim", metavar="CARD", type=Path, help="serve a virtual card file")
    r.add_argument(
        "--reader",
        metavar="SUBSTRING",
        help="serve only the PC/SC readers whose name contains SUBSTRING",
    )
    r.add_argument(
        "--keyboard",
        default="auto",
        choices=("auto", "pynput", "xdotool", "none"),
        help="keyboard output backend (default: auto)",
    )
    r.add_argument("--url", help=argparse.SUPPRESS)  # tests: a WebSocket URL override

    st = sub.add_parser(
        "status",
        parents=[common],
        help="check the card reader, the platform and keyboard output; say what to fix",
    )
    st.add_argument(
        "--keyboard",
        default="auto",
        choices=("auto", "pynput", "xdotool", "none"),
        help="the keyboard backend `run` is given (default: auto)",
    )
    st.add_argument("--lang", choices=("ja", "en"), help="language (default: from the locale)")
    st.add_argument("--json", action="store_true", help="the findings as JSON")
    st.add_argument("--timeout", type=float, default=10.0, help=argparse.SUPPRESS)

    a = sub.add_parser(
        "install-autostart",
        parents=[common],
        help="start `run` at every log-in (systemd user unit, scheduled task, launch agent)",
    )
    a.add_argument(
        "--dry-run", action="store_true", help="print the file and the command; change nothing"
    )
    return parser


def _status(args: argparse.Namespace, home: Path) -> int:
    from .status import as_json, render, run_checks
    from .status_text import default_lang

    lang = args.lang or default_lang()
    findings = run_checks(home, lang, keyboard=args.keyboard, timeout=args.timeout)
    print(as_json(findings) if args.json else render(findings, lang))
    return 1 if any(f.ok is False for f in findings) else 0


def _autostart(args: argparse.Namespace) -> int:
    from .autostart import install, plan

    code, text = install(plan(args.home), dry_run=args.dry_run)
    print(text, file=sys.stdout if code == 0 else sys.stderr)
    return code


def _pair(args: argparse.Namespace, home: Path) -> int:
    try:
        identity = pair(args.platform, args.code, home, name=args.name)
    except (PairingFailed, ValueError) as exc:
        print(f"pairing failed: {exc}", file=sys.stderr)
        return 1
    print(f"paired: bridge {identity.bridge_id} for terminal {identity.terminal_id}")
    print(f"keys stored in {home} (readable by this user only)")
    return 0


def _run(args: argparse.Namespace, home: Path) -> int:
    from .client import AuthRefused, BridgeClient
    from .keyboard import select_keyboard
    from .readers import PcscReaders, ReaderWatcher, SimReader
    from .session import BridgeSession

    try:
        identity = load(home)
    except BridgeStateError as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        return EXIT_NOT_PAIRED
    keyboard = select_keyboard(args.keyboard)
    if keyboard.name == "none":
        log.warning("keyboard output unavailable: %s", getattr(keyboard, "reason", ""))
    session = BridgeSession(identity.bridge_id, identity.seal_key, keyboard)
    client = BridgeClient(identity, session, url=args.url)
    # Signal handlers run on the main thread between any two bytecodes, even inside
    # another handler or a locked send: they only hand work to this thread (SimpleQueue.put
    # is reentrant), never take the session's or the connection's locks themselves.
    work: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()

    def worker() -> None:
        while True:
            work.get()()

    threading.Thread(target=worker, name="bridge-signals", daemon=True).start()
    watcher: ReaderWatcher
    if args.sim is not None:
        try:
            sim = SimReader(args.sim)
        except ImportError:
            print(
                "--sim needs the virtual card (bridge/vcard/): run from a checkout", file=sys.stderr
            )
            return 1
        watcher = sim
        signal.signal(signal.SIGUSR1, lambda _s, _f: work.put(sim.toggle))
    else:
        watcher = PcscReaders(only=args.reader)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        work.put(client.stop)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    watcher.start(session)
    try:
        client.run_forever()
    except AuthRefused as exc:
        print(f"the platform refused this bridge ({exc}): pair it again", file=sys.stderr)
        return EXIT_REVOKED
    finally:
        watcher.stop()
        session.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    home = args.home or default_home()
    if args.command == "pair":
        return _pair(args, home)
    if args.command == "status":
        return _status(args, home)
    if args.command == "install-autostart":
        return _autostart(args)
    return _run(args, home)


if __name__ == "__main__":
    sys.exit(main())
