"""Command line of the virtual My Number Card (demo CAs, card files, vpcd attach).

    python -m bridge.vcard ca init DIR [--crl-url URL]
    python -m bridge.vcard issue --ca DIR --pin 1234 --sign-password ABC123 CARD
        [--birth-date YYYY-MM-DD] [--not-before ISO] [--not-after ISO] [--locked]
        [--text-pin 1234] [--apdu-delay S] [--signature-time S]
    python -m bridge.vcard revoke --ca DIR CARD
    python -m bridge.vcard renew --ca DIR OLD NEW [--pin 1234] [--sign-password ABC123]
    python -m bridge.vcard reissue --ca DIR OLD NEW [--pin ...] [--sign-password ...]
    python -m bridge.vcard info CARD
    python -m bridge.vcard attach [--vpcd 127.0.0.1:35963] CARD

Other tools call these exactly; keep the contract. PINs given on the command line are
demo values for fake cards; nothing here prints them.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from types import FrameType

from .cardfile import CardFile, CardFileError, card_data_from_issued, check_secrets

DEFAULT_VPCD = "127.0.0.1:35963"


def _datetime(text: str) -> datetime:
    """An ISO datetime; naive values are taken as UTC."""
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `python -m bridge.vcard`."""
    parser = argparse.ArgumentParser(
        prog="python -m bridge.vcard", description="Virtual My Number Card (demo only)."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    ca = sub.add_parser("ca", help="the demo J-LIS certificate authorities")
    ca_sub = ca.add_subparsers(dest="ca_command", required=True)
    ca_init = ca_sub.add_parser("init", help="create the demo CAs in DIR")
    ca_init.add_argument("directory", type=Path, metavar="DIR")
    ca_init.add_argument("--crl-url", help="CRL distribution point written into certificates")

    issue = sub.add_parser("issue", help="issue a new virtual card file")
    issue.add_argument("--ca", type=Path, required=True, metavar="DIR")
    issue.add_argument("--pin", required=True, help="user-authentication PIN (4 digits)")
    issue.add_argument("--sign-password", required=True, help="signing password")
    issue.add_argument("--text-pin", help="text input helper PIN (default: --pin)")
    issue.add_argument("--birth-date", type=date.fromisoformat, metavar="YYYY-MM-DD")
    issue.add_argument("--not-before", type=_datetime, metavar="ISO")
    issue.add_argument("--not-after", type=_datetime, metavar="ISO")
    issue.add_argument("--locked", action="store_true", help="auth PIN locked (0 tries)")
    issue.add_argument("--apdu-delay", type=float, default=0.0, metavar="S")
    issue.add_argument("--signature-time", type=float, default=0.0, metavar="S")
    issue.add_argument("card", type=Path, metavar="CARD")

    revoke = sub.add_parser("revoke", help="revoke a card's certificates (CRLs in DIR)")
    revoke.add_argument("--ca", type=Path, required=True, metavar="DIR")
    revoke.add_argument("card", type=Path, metavar="CARD")

    for name, words in (
        ("renew", "renew a card: NEW gets new certificates, OLD's are superseded"),
        ("reissue", "replace a lost card: NEW gets new certificates, OLD's are compromised"),
    ):
        succeed = sub.add_parser(name, help=words)
        succeed.add_argument("--ca", type=Path, required=True, metavar="DIR")
        succeed.add_argument("--pin", help="the new card's PIN (default: the old card's)")
        succeed.add_argument("--sign-password", help="(default: the old card's)")
        succeed.add_argument("--not-before", type=_datetime, metavar="ISO")
        succeed.add_argument("--not-after", type=_datetime, metavar="ISO")
        succeed.add_argument("old", type=Path, metavar="OLD")
        succeed.add_argument("new", type=Path, metavar="NEW")

    info = sub.add_parser("info", help="print a card's public facts (no PIN, no key)")
    info.add_argument("card", type=Path, metavar="CARD")

    attach = sub.add_parser("attach", help="insert the card into vpcd until SIGINT/SIGTERM")
    attach.add_argument("--vpcd", type=_host_port, default=_host_port(DEFAULT_VPCD))
    attach.add_argument("card", type=Path, metavar="CARD")
    return parser


def _ca_init(args: argparse.Namespace) -> int:
    from .jlis import DemoJLIS

    DemoJLIS.init(args.directory, crl_url=args.crl_url)
    print(f"demo CAs created in {args.directory}")
    return 0


def _issue(args: argparse.Namespace) -> int:
    from .jlis import DemoJLIS

    # Check the PINs before the (slow) key generation.
    check_secrets(pin=args.pin, sign_password=args.sign_password, text_pin=args.text_pin)
    jlis = DemoJLIS.load(args.ca)
    issued = jlis.issue(
        birth_date=args.birth_date, not_before=args.not_before, not_after=args.not_after
    )
    data = card_data_from_issued(
        issued,
        pin=args.pin,
        sign_password=args.sign_password,
        text_pin=args.text_pin,
        locked=args.locked,
        apdu_delay_s=args.apdu_delay,
        signature_time_s=args.signature_time,
    )
    CardFile.create(args.card, data)
    print(f"card issued: {args.card}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    from .jlis import DemoJLIS

    data = CardFile.load(args.card).data
    DemoJLIS.load(args.ca).revoke(data.auth_cert_der, data.sign_cert_der)
    print(f"certificates of {args.card} revoked; CRLs updated in {args.ca}")
    return 0


def _succeed(args: argparse.Namespace) -> int:
    from .jlis import DemoJLIS

    old = CardFile.load(args.old).data
    if args.new.exists():
        raise FileExistsError(f"{args.new} exists")
    pin = args.pin or old.auth_pin.value
    sign_password = args.sign_password or old.sign_password.value
    check_secrets(pin=pin, sign_password=sign_password)
    jlis = DemoJLIS.load(args.ca)
    make = jlis.renew if args.command == "renew" else jlis.reissue
    issued = make(old, not_before=args.not_before, not_after=args.not_after)
    data = card_data_from_issued(issued, pin=pin, sign_password=sign_password)
    CardFile.create(args.new, data)
    why = "superseded" if args.command == "renew" else "revoked (key compromise)"
    print(f"card issued: {args.new}; {args.old} {why}; linkage in {args.ca / 'linkage.json'}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from cryptography import x509

    data = CardFile.load(args.card).data
    cert = x509.load_der_x509_certificate(data.auth_cert_der)
    facts = {
        "card_serial": data.card_serial,
        "auth_subject": cert.subject.rfc4514_string(),
        "auth_issuer": cert.issuer.rfc4514_string(),
        "auth_not_before": cert.not_valid_before_utc.isoformat(),
        "auth_not_after": cert.not_valid_after_utc.isoformat(),
        "auth_pin_tries_left": data.auth_pin.tries_left,
        "sign_password_tries_left": data.sign_password.tries_left,
        "text_pin_tries_left": data.text_pin.tries_left,
    }
    print(json.dumps(facts, indent=2, ensure_ascii=False))
    return 0


def _attach(args: argparse.Namespace) -> int:
    from .card import VirtualCard
    from .vpcd import attach  # written alongside: the vpcd socket client

    card = VirtualCard.from_file(args.card)
    host, port = args.vpcd
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        attach(card, host, port, stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    args = build_parser().parse_args(argv)
    handlers = {
        "ca": _ca_init,
        "issue": _issue,
        "revoke": _revoke,
        "renew": _succeed,
        "reissue": _succeed,
        "info": _info,
        "attach": _attach,
    }
    try:
        return handlers[args.command](args)
    except (CardFileError, FileExistsError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
