"""CSRF protection for every form, session cookie flags, and the exemption for JSON APIs."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, Flask
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def is_loopback(origin: str) -> bool:
    """Whether the platform origin is this machine (plain http allowed for development)."""
    return (urlsplit(origin).hostname or "") in _LOOPBACK


def csrf_exempt(bp: Blueprint) -> Blueprint:
    """Exempt a JSON API blueprint (bridges, partners authenticate otherwise); returns bp.

    Call before or after init_app: `csrf_exempt(api.bp)`.
    """
    csrf.exempt(bp)
    return bp


def init_app(app: Flask) -> None:
    """Turn on CSRF checks for every POST and harden the session cookie."""
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # a counter tab stays open all day
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    # Kept for Flask's own interface; ours (webapp/sessions/store.py) sends the cookie
    # only when its token changes, whatever this says.
    app.config["SESSION_REFRESH_EACH_REQUEST"] = False
    app.config["SESSION_COOKIE_SECURE"] = not is_loopback(app.config.get("PLATFORM_ORIGIN", ""))
    csrf.init_app(app)
