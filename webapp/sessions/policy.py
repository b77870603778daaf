"""What a session is and how long it lives: its kind from its data, the lifetimes per kind
from the settings, and the short browser summary the admin page shows. No Flask."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ..terminals.models import TerminalKind
from .models import USER_AGENT_LENGTH, SessionKind

# Session keys written elsewhere: `staff_id` by staff.auth.login_user, `terminal_id` and
# `terminal_kind` by cardflow.binding and kiosk.home_binding.
STAFF_ID = "staff_id"
TERMINAL_ID = "terminal_id"
TERMINAL_KIND = "terminal_kind"


@dataclass(frozen=True)
class Lifetime:
    """How long a session of one kind lives: unused (`idle`) and at most (`absolute`)."""

    idle: timedelta
    absolute: timedelta


# (setting, unit) of each kind's idle timeout and absolute lifetime; README lists them.
SETTINGS = {
    SessionKind.STAFF: (
        ("STAFF_SESSION_IDLE_HOURS", "hours"),
        ("STAFF_SESSION_LIFETIME_HOURS", "hours"),
    ),
    SessionKind.KIOSK: (
        ("KIOSK_SESSION_IDLE_DAYS", "days"),
        ("KIOSK_SESSION_LIFETIME_DAYS", "days"),
    ),
    SessionKind.HOME: (("HOME_TERMINAL_IDLE_DAYS", "days"), ("HOME_SESSION_LIFETIME_DAYS", "days")),
    SessionKind.ANONYMOUS: (
        ("ANONYMOUS_SESSION_IDLE_HOURS", "hours"),
        ("ANONYMOUS_SESSION_LIFETIME_HOURS", "hours"),
    ),
}


def _duration(config: Mapping[str, Any], name: str, unit: str) -> timedelta:
    try:
        amount = float(config[name])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{name} must be a number of {unit}, not {config.get(name)!r}") from None
    if not amount > 0:
        raise ValueError(f"{name} must be more than 0 {unit}, not {amount!r}")
    return timedelta(**{unit: amount})


def lifetimes(config: Mapping[str, Any]) -> dict[str, Lifetime]:
    """Each kind's Lifetime from the settings; ValueError names a bad setting."""
    return {
        kind: Lifetime(_duration(config, *idle), _duration(config, *absolute))
        for kind, (idle, absolute) in SETTINGS.items()
    }


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def kind_of(data: Mapping[str, Any]) -> str:
    """The kind of a session with this data (a staff id wins: staff is what it is)."""
    if _int(data.get(STAFF_ID)) is not None:
        return SessionKind.STAFF
    if _int(data.get(TERMINAL_ID)) is not None:
        if data.get(TERMINAL_KIND) == TerminalKind.KIOSK:
            return SessionKind.KIOSK
        if data.get(TERMINAL_KIND) == TerminalKind.HOME:
            return SessionKind.HOME
    return SessionKind.ANONYMOUS


def staff_of(data: Mapping[str, Any]) -> int | None:
    """The staff id the data names, if any."""
    return _int(data.get(STAFF_ID))


def terminal_of(data: Mapping[str, Any]) -> int | None:
    """The terminal id the data names, if any (counter, kiosk or home)."""
    return _int(data.get(TERMINAL_ID))


# Only this much of the header is looked at: a browser's is ~150 characters; a header of
# kilobytes (the server allows 8 KiB) must not cost more than a normal one.
_SCANNED = 512
_BROWSERS = (
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("HeadlessChrome/", "Headless Chrome"),
    ("Chromium/", "Chromium"),
    ("Chrome/", "Chrome"),
    ("Version/", "Safari"),  # Safari names its version in Version/, not in Safari/
)
_SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("CrOS", "ChromeOS"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("Linux", "Linux"),
)
_FALLBACK = 60  # characters of an unknown client's header (a script, a test client)


def summarize_user_agent(header: str | None) -> str | None:
    """A short label for a User-Agent header ("Chrome 131 on Windows"), at most 100 chars."""
    if not header:
        return None
    text = header[:_SCANNED]
    system = next((name for token, name in _SYSTEMS if token in text), None)
    for token, name in _BROWSERS:
        found = re.search(re.escape(token) + r"(\d{1,4})", text)
        if found:
            label = f"{name} {found.group(1)}"
            return (f"{label} on {system}" if system else label)[:USER_AGENT_LENGTH]
    printable = "".join(c for c in text if " " <= c <= "~").strip()
    return printable[:_FALLBACK] or None
