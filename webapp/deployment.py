"""Is this deployment safe to serve? The start-up checks and `flask doctor`.

A platform built from the environment alone (`app.py`: `flask run`, gunicorn) refuses
to start when it would be silently wrong (`refuse_unsafe`):

- ICHIMAI_SECRET_KEY missing or short: each worker would draw its own key, and a form
  drawn by one worker would fail on another (half the requests after sign-in bounced
  back to the sign-in page with two workers);
- ICHIMAI_CARD_KEY_SECRET missing or short: no card could be checked (the keyed hash
  that stands for a card at rest needs it, and it must never change);
- a Redis bus without ICHIMAI_NAMESPACE: two deployments on one Redis would see each
  other's bridges and tabs (Redis pub/sub ignores the database number);
- ICHIMAI_ADMIN_TOKEN or ICHIMAI_METRICS_TOKEN set but short (a guessable door), or
  ICHIMAI_METRICS_ALLOW not a list of addresses and networks;
- in demo mode (ICHIMAI_DEMO=1), no demo J-LIS: without ICHIMAI_DEMO_JLIS_DIR (a directory
  made by `python -m bridge.vcard ca init DIR`) every demo card would be refused as
  untrusted. Demo mode needs no ICHIMAI_CARD_KEY_SECRET (one is derived from the demo CA)
  and, in one process, no ICHIMAI_SECRET_KEY.

More than one worker process with the in-memory bus (challenges, card flows, bridge
sockets and limits would stay per worker), or without ICHIMAI_SECRET_KEY even in demo
mode, is refused by gunicorn.conf.py, where the number of workers is known. `flask
doctor` prints every check, these and the ones that need the services (the database and
its migrations, Redis, the CRLs), and exits non-zero when one fails.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

MIN_SECRET_BYTES = 32
REDIS_SCHEMES = ("redis", "rediss", "unix")


class UnsafeDeployment(RuntimeError):
    """The deployment would be silently wrong: the message says what to set."""


@dataclass(frozen=True)
class Finding:
    """One check: `ok`, and what to do when it is not; `fatal` ones stop start-up."""

    name: str
    ok: bool
    detail: str
    fatal: bool = False


def _secret_bytes(value: Any) -> int:
    if isinstance(value, bytes):
        return len(value)
    return len(str(value or "").encode("utf-8"))


def uses_redis(config: Mapping[str, Any]) -> bool:
    """Whether the bus (and so the stores and limits) is Redis."""
    return urlsplit(str(config.get("BUS_URL") or "")).scheme in REDIS_SCHEMES


def _optional_token(name: str, value: Any) -> Finding:
    """A token that may be unset (its door is then shut), but not short."""
    ok = not value or _secret_bytes(value) >= MIN_SECRET_BYTES
    return Finding(
        name,
        ok,
        f"{name} is set but shorter than {MIN_SECRET_BYTES} bytes: make it long and random "
        "(`python3 -c 'import secrets; print(secrets.token_hex(32))'`), or unset it",
        fatal=True,
    )


def _networks_ok(value: Any) -> bool:
    items = value if isinstance(value, list | tuple) else str(value or "").split(",")
    try:
        for item in (str(i).strip() for i in items):
            if item:
                ipaddress.ip_network(item, strict=False)
    except ValueError:
        return False
    return True


def _demo_findings(config: Mapping[str, Any]) -> list[Finding]:
    """In demo mode: the demo J-LIS the demo cards chain to (webapp/jpki/factory.py)."""
    directory = str(config.get("DEMO_JLIS_DIR") or "")
    ok = bool(directory) and (Path(directory) / "auth_ca.pem").is_file()
    given = f" ({directory!r} has no auth_ca.pem)" if directory else ""
    return [
        Finding(
            "ICHIMAI_DEMO_JLIS_DIR",
            ok,
            "ICHIMAI_DEMO=1 needs the demo J-LIS the demo cards were issued by"
            f"{given}: make one with `python -m bridge.vcard ca init DIR`, issue cards with "
            "`python -m bridge.vcard issue --ca DIR ...`, and set ICHIMAI_DEMO_JLIS_DIR=DIR "
            "(its auth.crl is then the demo cards' CRL). Without it every demo card is refused",
            fatal=True,
        )
    ]


def static_findings(config: Mapping[str, Any]) -> list[Finding]:
    """The checks that need nothing but the settings."""
    demo = bool(config.get("DEMO_MODE"))
    given_secret = bool(config.get("SECRET_KEY_FROM_ENV", True))
    secret_ok = given_secret and _secret_bytes(config.get("SECRET_KEY")) >= MIN_SECRET_BYTES
    card_secret = config.get("CARD_KEY_SECRET")
    # Demo mode derives the card key from the demo CA when none is given (jpki/factory.py).
    card_ok = _secret_bytes(card_secret) >= MIN_SECRET_BYTES or (demo and not card_secret)
    redis = uses_redis(config)
    namespace_ok = not redis or bool(config.get("NAMESPACE") or config.get("BUS_PREFIX"))
    origin = str(config.get("PLATFORM_ORIGIN") or "")
    loopback = (urlsplit(origin).hostname or "") in ("127.0.0.1", "localhost", "::1")
    return [
        Finding(
            "ICHIMAI_SECRET_KEY",
            secret_ok,
            f"set ICHIMAI_SECRET_KEY to {MIN_SECRET_BYTES} or more random bytes, the same on "
            "every worker (e.g. `python3 -c 'import secrets; print(secrets.token_hex(32))'`)",
            # One demo process may draw its own; several are refused by gunicorn.conf.py.
            fatal=not demo,
        ),
        Finding(
            "ICHIMAI_CARD_KEY_SECRET",
            card_ok,
            f"set ICHIMAI_CARD_KEY_SECRET to {MIN_SECRET_BYTES} or more random bytes, and never "
            "change it: every card binding (MyKey ID) is keyed by it",
            fatal=True,
        ),
        Finding(
            "ICHIMAI_NAMESPACE",
            namespace_ok,
            "set ICHIMAI_NAMESPACE (e.g. the municipality or `prod`): with a Redis bus, every "
            "channel and key carries it, so deployments sharing a Redis never see each other",
            fatal=True,
        ),
        Finding(
            "ICHIMAI_ORIGIN",
            origin.startswith("https://") or loopback,
            "serve the platform over HTTPS (ICHIMAI_ORIGIN=https://...): cards sign it",
        ),
        Finding(
            "ICHIMAI_DATABASE_URL",
            not str(config.get("DATABASE_URL") or "").startswith("sqlite") or not redis,
            "several workers (a Redis bus) want PostgreSQL, not SQLite",
        ),
        _optional_token("ICHIMAI_ADMIN_TOKEN", config.get("ADMIN_TOKEN")),
        _optional_token("ICHIMAI_METRICS_TOKEN", config.get("METRICS_TOKEN")),
        Finding(
            "ICHIMAI_METRICS_ALLOW",
            _networks_ok(config.get("METRICS_ALLOW")),
            "a comma-separated list of addresses and networks, e.g. `10.0.0.0/8,127.0.0.1`",
            fatal=True,
        ),
        Finding(
            "metrics",
            bool(config.get("METRICS_TOKEN") or config.get("METRICS_ALLOW")),
            "/metrics is off: set ICHIMAI_METRICS_TOKEN and/or ICHIMAI_METRICS_ALLOW",
        ),
        Finding(
            "ICHIMAI_JPKI_CRL",
            bool(config.get("JPKI_CRL_SOURCES")),
            "no CRL source configured: each certificate's distribution point is fetched",
        ),
        *(_demo_findings(config) if demo else []),
    ]


def refuse_unsafe(config: Mapping[str, Any]) -> None:
    """Raise UnsafeDeployment (with every reason) when a fatal check fails."""
    failed = [f for f in static_findings(config) if f.fatal and not f.ok]
    if failed:
        reasons = "\n".join(f"  - {f.name}: {f.detail}" for f in failed)
        raise UnsafeDeployment(
            "the platform will not start: it would be silently wrong\n"
            f"{reasons}\n(every setting: docs/operations.md; `flask doctor` checks more)"
        )


def refuse_many_workers_on_memory(config: Mapping[str, Any], workers: int) -> None:
    """Raise UnsafeDeployment for several worker processes with the in-process bus, or
    (demo mode too) without a shared ICHIMAI_SECRET_KEY."""
    if workers > 1 and not uses_redis(config):
        raise UnsafeDeployment(
            f"{workers} worker processes with the in-process bus: card flows, challenges, "
            "bridge sockets and limits would stay per worker. Set ICHIMAI_BUS_URL=redis://... "
            "(and ICHIMAI_NAMESPACE), or run one worker"
        )
    if workers > 1 and not config.get("SECRET_KEY_FROM_ENV", True):
        raise UnsafeDeployment(
            f"{workers} worker processes without ICHIMAI_SECRET_KEY: each would draw its own "
            "and a form drawn by one worker would fail on another. Set ICHIMAI_SECRET_KEY to "
            f"{MIN_SECRET_BYTES} or more random bytes"
        )
