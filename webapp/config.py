"""Settings, read from the environment (ICHIMAI_*) over safe defaults.

Demo mode is off unless asked for: only in demo mode is the demo J-LIS CA trusted.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parent


def _bool(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def from_environment(instance_path: str) -> dict[str, Any]:
    """The configuration a deployment gives through ICHIMAI_* variables."""
    env = os.environ
    return {
        "SECRET_KEY": env.get("ICHIMAI_SECRET_KEY") or secrets.token_hex(32),
        # Key of the keyed hash that stands for a card at rest (rule 3). Must be stable
        # across restarts in production, or every card binding is lost.
        "CARD_KEY_SECRET": env.get("ICHIMAI_CARD_KEY_SECRET", ""),
        "DATABASE_URL": env.get(
            "ICHIMAI_DATABASE_URL", f"sqlite:///{Path(instance_path) / 'ichimai.db'}"
        ),
        "BUS_URL": env.get("ICHIMAI_BUS_URL", "memory://"),
        "PLATFORM_ORIGIN": env.get("ICHIMAI_ORIGIN", "http://127.0.0.1:5000"),
        "DEMO_MODE": _bool(env.get("ICHIMAI_DEMO")),
        "DEMO_JLIS_DIR": env.get("ICHIMAI_DEMO_JLIS_DIR", ""),
        "JPKI_TRUST_DIR": env.get(
            "ICHIMAI_JPKI_TRUST_DIR", str(PACKAGE_DIR / "data" / "jpki-roots")
        ),
        "JPKI_CRL_SOURCES": [s for s in env.get("ICHIMAI_JPKI_CRL", "").split(",") if s],
        "BABEL_DEFAULT_LOCALE": "ja",
        # A kiosk session ends after this long without a touch (and when the card leaves).
        "KIOSK_IDLE_SECONDS": float(env.get("ICHIMAI_KIOSK_IDLE_SECONDS", "60")),
        # Reverse proxies in front of the workers (0: none). With N, the client's address
        # and scheme are taken from the last N X-Forwarded-For/-Proto entries, so the
        # throttles count per client, not per proxy. Never more than there are: a client
        # could then name any address it likes.
        "PROXY_HOPS": env.get("ICHIMAI_PROXY_HOPS", "0"),
    }


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
