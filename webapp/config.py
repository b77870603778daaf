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
    }
