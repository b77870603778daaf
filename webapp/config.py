"""Settings, read from the environment (ICHIMAI_*) over safe defaults.

Demo mode is off unless asked for: only in demo mode is the demo J-LIS CA trusted.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parent


def _bool(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _positive(env: Mapping[str, str], name: str, default: str) -> float:
    """A number of seconds, hours or days from the environment: more than 0, or a clear
    error naming the setting (at start-up, not at the first request that needs it)."""
    raw = env.get(name, default)
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise ValueError(f"{name} must be a number greater than 0, not {raw!r}")
    return value


def from_environment(instance_path: str) -> dict[str, Any]:
    """The configuration a deployment gives through ICHIMAI_* variables."""
    env = os.environ
    return {
        "SECRET_KEY": env.get("ICHIMAI_SECRET_KEY") or secrets.token_hex(32),
        # False when the key above was drawn here (each process draws its own: the
        # start-up checks refuse that outside demo mode, webapp/deployment.py).
        "SECRET_KEY_FROM_ENV": bool(env.get("ICHIMAI_SECRET_KEY")),
        # Key of the keyed hash that stands for a card at rest (rule 3). Must be stable
        # across restarts in production, or every card binding is lost.
        "CARD_KEY_SECRET": env.get("ICHIMAI_CARD_KEY_SECRET", ""),
        "DATABASE_URL": env.get(
            "ICHIMAI_DATABASE_URL", f"sqlite:///{Path(instance_path) / 'ichimai.db'}"
        ),
        "BUS_URL": env.get("ICHIMAI_BUS_URL", "memory://"),
        # The deployment's namespace: every Redis channel and key carries it (bus, card
        # flows, challenges, limits), so deployments sharing a Redis never see each other.
        **namespace_settings(env.get("ICHIMAI_NAMESPACE", "")),
        "PLATFORM_ORIGIN": env.get("ICHIMAI_ORIGIN", "http://127.0.0.1:5000"),
        "DEMO_MODE": _bool(env.get("ICHIMAI_DEMO")),
        "DEMO_JLIS_DIR": env.get("ICHIMAI_DEMO_JLIS_DIR", ""),
        "JPKI_TRUST_DIR": env.get(
            "ICHIMAI_JPKI_TRUST_DIR", str(PACKAGE_DIR / "data" / "jpki-roots")
        ),
        "JPKI_CRL_SOURCES": [s for s in env.get("ICHIMAI_JPKI_CRL", "").split(",") if s],
        # J-LIS's old-to-new certificate linkage: who signs it (PEM certificates), and
        # where `flask jpki import-linkage` finds it when run without a location.
        "JPKI_LINKAGE_SIGNERS": [
            s for s in env.get("ICHIMAI_JPKI_LINKAGE_SIGNER", "").split(",") if s
        ],
        "JPKI_LINKAGE_SOURCES": [s for s in env.get("ICHIMAI_JPKI_LINKAGE", "").split(",") if s],
        # An unknown card makes a worker import those sources first, at most this often.
        "JPKI_LINKAGE_INTERVAL_SECONDS": _positive(
            env, "ICHIMAI_JPKI_LINKAGE_INTERVAL_SECONDS", "900"
        ),
        "BABEL_DEFAULT_LOCALE": "ja",
        # A kiosk session ends after this long without a touch (and when the card leaves).
        "KIOSK_IDLE_SECONDS": _positive(env, "ICHIMAI_KIOSK_IDLE_SECONDS", "60"),
        # Server-side sessions (webapp/sessions, docs/sessions.md): how long each kind lives
        # unused (idle) and at most (lifetime). A staff session lasts a counter shift; a
        # kiosk or a citizen's home card reader keeps its browser bound across restarts.
        "STAFF_SESSION_IDLE_HOURS": _positive(env, "ICHIMAI_STAFF_SESSION_IDLE_HOURS", "8"),
        "STAFF_SESSION_LIFETIME_HOURS": _positive(
            env, "ICHIMAI_STAFF_SESSION_LIFETIME_HOURS", "16"
        ),
        # The points refund window (返金期間) where a municipality sets none: how long a
        # merchant may refund a payment, and how long the ledger links the citizen and the
        # merchant before `flask points compact` removes the link (docs/privacy.md).
        "POINTS_REFUND_WINDOW_DAYS": int(_positive(env, "ICHIMAI_POINTS_REFUND_WINDOW_DAYS", "90")),
        "KIOSK_SESSION_IDLE_DAYS": _positive(env, "ICHIMAI_KIOSK_SESSION_IDLE_DAYS", "7"),
        "KIOSK_SESSION_LIFETIME_DAYS": _positive(env, "ICHIMAI_KIOSK_SESSION_LIFETIME_DAYS", "90"),
        # A home terminal unused this long expires, and so does its browser's session.
        "HOME_TERMINAL_IDLE_DAYS": _positive(env, "ICHIMAI_HOME_TERMINAL_IDLE_DAYS", "30"),
        "HOME_SESSION_LIFETIME_DAYS": _positive(env, "ICHIMAI_HOME_SESSION_LIFETIME_DAYS", "365"),
        "ANONYMOUS_SESSION_IDLE_HOURS": _positive(env, "ICHIMAI_ANONYMOUS_SESSION_IDLE_HOURS", "2"),
        "ANONYMOUS_SESSION_LIFETIME_HOURS": _positive(
            env, "ICHIMAI_ANONYMOUS_SESSION_LIFETIME_HOURS", "24"
        ),
        # Reverse proxies in front of the workers (0: none). With N, the client's address
        # and scheme are taken from the last N X-Forwarded-For/-Proto entries, so the
        # throttles count per client, not per proxy. Never more than there are: a client
        # could then name any address it likes.
        "PROXY_HOPS": env.get("ICHIMAI_PROXY_HOPS", "0"),
        # /metrics (webapp/ops/views.py): refused unless one of these is set. A scraper
        # sends the token as a bearer token and/or comes from one of these networks.
        "METRICS_TOKEN": env.get("ICHIMAI_METRICS_TOKEN", ""),
        "METRICS_ALLOW": env.get("ICHIMAI_METRICS_ALLOW", ""),
        # The admin JSON API (webapp/terminals/api_views.py): off unless set.
        "ADMIN_TOKEN": env.get("ICHIMAI_ADMIN_TOKEN", ""),
        # Where the bridge's wheel is built and cached (webapp/terminals/bridge_wheel.py);
        # default: instance/bridge-wheel.
        "BRIDGE_WHEEL_DIR": env.get("ICHIMAI_BRIDGE_WHEEL_DIR", ""),
    }


_NAMESPACE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
# The prefixes used without a namespace (demo, tests): `ichimai:bus:`, `ichimai:flow:`...
_RESERVED = frozenset({"bus", "flow", "nonce", "limits"})


def namespace_settings(namespace: str) -> dict[str, str]:
    """NAMESPACE and the Redis prefix it makes (`ichimai:<namespace>:`); {} when unset.

    A bad name stops start-up with a clear message (it ends up in every Redis key)."""
    namespace = namespace.strip()
    if not namespace:
        return {}
    if not _NAMESPACE.fullmatch(namespace) or namespace in _RESERVED:
        raise ValueError(
            "ICHIMAI_NAMESPACE must be 1-40 of a-z, 0-9, '-' and '_', starting with a letter "
            f"or digit, and not one of {sorted(_RESERVED)}, not {namespace!r}"
        )
    return {"NAMESPACE": namespace, "BUS_PREFIX": f"ichimai:{namespace}:"}


def proxy_hops(value: object) -> int:
    """PROXY_HOPS as a whole number of proxies, or a clear error at start-up."""
    try:
        hops = int(str(value).strip())
    except ValueError:
        hops = -1
    if hops < 0:
        raise ValueError(
            f"ICHIMAI_PROXY_HOPS must be a whole number of proxies (0 or more), not {value!r}"
        )
    return hops
