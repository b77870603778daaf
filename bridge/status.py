"""`ichimai-bridge status`: what works and what is wrong, in words a librarian can act on.

Each check gives `Finding`s: a stable `code` (for `--json`, tests and support calls), a
verdict (`ok`: True fine, False a problem to fix, None a note) and the text to read.
The checks, in the order a person would fix things:

1. pairing: is there a bridge state in the home directory (`pair` done)?
2. PC/SC: does the smart-card service answer (pcscd; Windows' Smart Card service)?
   Which readers are there, and is a card on each (present, mute, empty)?
3. the platform: can it be reached; does it still accept this bridge (not revoked, not
   replaced), is the bridge connected right now (`run` going), and is this PC's clock
   within `CLOCK_SKEW_LIMIT` of the platform's (POST /api/v1/bridges/check, signed with
   the bridge's key over `wire.check_transcript`, so no one else learns its state)?
4. keyboard output: which backend `run` would use, and whether it can type here.

Texts are in Japanese or English (`--lang`, default from the locale): the bridge has no
Babel catalogue, so `status_text.py` holds both, keyed by code.
"""

from __future__ import annotations

import json
import secrets
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from .keyboard import NoKeyboard, select_keyboard
from .pairing import BridgeIdentity, BridgeStateError, load, origin_of
from .status_text import say
from .wire import b64u, check_transcript

CHECK_PATH = "/api/v1/bridges/check"
# A clock further off than this is worth fixing: TLS certificates are checked against
# it (hours off and nothing connects), and the bridge's logs stop lining up with the
# platform's. Two minutes is well beyond what NTP or a PC's own drift leave.
CLOCK_SKEW_LIMIT = 120.0


@dataclass(frozen=True, slots=True)
class Finding:
    """One line of the status: `ok` True (fine), False (a problem) or None (a note)."""

    code: str
    ok: bool | None
    text: str


Say = Callable[..., str]


# -- pairing ----------------------------------------------------------------------------


def check_pairing(home: Path, lang: str) -> tuple[BridgeIdentity | None, Finding]:
    """The bridge's identity, if paired and its files are sound."""
    try:
        identity = load(home)
    except BridgeStateError as exc:
        missing = not (home / "bridge.json").exists()
        code = "not_paired" if missing else "state_damaged"
        return None, Finding(code, False, say(lang, code, home=home, detail=exc))
    text = say(
        lang,
        "paired",
        platform=identity.platform,
        bridge=identity.bridge_id,
        terminal=identity.terminal_id,
    )
    return identity, Finding("paired", True, text)


# -- PC/SC ------------------------------------------------------------------------------


def check_pcsc(lang: str, platform: str = sys.platform) -> list[Finding]:
    """The smart-card service, its readers and the card on each."""
    try:
        from smartcard import scard
    except Exception as exc:  # pyscard missing, or its library (libpcsclite) is
        return [Finding("pcsc_missing", False, say(lang, "pcsc_missing", detail=exc))]
    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        return [_service_problem(scard, hresult, lang, platform)]
    try:
        return _readers(scard, context, lang, platform)
    finally:
        scard.SCardReleaseContext(context)


def _service_problem(scard: Any, hresult: int, lang: str, platform: str) -> Finding:
    if hresult == scard.SCARD_E_NO_SERVICE:
        code = {"win32": "no_service_windows", "darwin": "no_service_macos"}.get(
            platform, "no_service_linux"
        )
        return Finding("no_service", False, say(lang, code))
    detail = scard.SCardGetErrorMessage(hresult)
    return Finding("pcsc_error", False, say(lang, "pcsc_error", detail=detail))


def _readers(scard: Any, context: Any, lang: str, platform: str) -> list[Finding]:
    hresult, readers = scard.SCardListReaders(context, [])
    no_readers = getattr(scard, "SCARD_E_NO_READERS_AVAILABLE", None)
    if hresult == no_readers or (hresult == scard.SCARD_S_SUCCESS and not readers):
        code = "no_reader_linux" if platform not in ("win32", "darwin") else "no_reader"
        return [Finding("no_reader", False, say(lang, code))]
    if hresult != scard.SCARD_S_SUCCESS:
        return [_service_problem(scard, hresult, lang, platform)]
    found = [Finding("pcsc_ok", True, say(lang, "pcsc_ok", count=len(readers)))]
    asked = [(reader, scard.SCARD_STATE_UNAWARE) for reader in readers]
    hresult, states = scard.SCardGetStatusChange(context, 0, asked)
    if hresult != scard.SCARD_S_SUCCESS:
        detail = scard.SCardGetErrorMessage(hresult)
        return [*found, Finding("pcsc_error", False, say(lang, "pcsc_error", detail=detail))]
    for reader, state, _atr in states:
        if state & scard.SCARD_STATE_PRESENT and state & scard.SCARD_STATE_MUTE:
            found.append(Finding("card_mute", False, say(lang, "card_mute", reader=reader)))
        elif state & scard.SCARD_STATE_PRESENT:
            found.append(Finding("card_present", True, say(lang, "card_present", reader=reader)))
        else:
            found.append(Finding("no_card", None, say(lang, "no_card", reader=reader)))
    return found


# -- the platform -----------------------------------------------------------------------


def check_platform(
    identity: BridgeIdentity,
    lang: str,
    *,
    timeout: float = 10.0,
    clock: Callable[[], float] = time.time,
) -> list[Finding]:
    """Reachable? This bridge still allowed, connected now? Clocks agree?"""
    origin = origin_of(identity.platform)
    nonce = secrets.token_bytes(16)
    signature = identity.auth_key.sign(check_transcript(origin, identity.bridge_id, nonce))
    body = json.dumps(
        {"bridge_id": identity.bridge_id, "nonce": b64u(nonce), "signature": b64u(signature)}
    ).encode()
    request = urllib.request.Request(  # noqa: S310 - https, or http on loopback (pairing.py)
        identity.platform + CHECK_PATH,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    sent = clock()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            received = clock()
            reply = json.loads(answer.read(65536))
            date = answer.headers.get("Date")
    except urllib.error.HTTPError as exc:
        return [_refused(exc, identity, lang)]
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return [_unreachable(exc, identity.platform, lang)]
    found = [Finding("platform_ok", True, say(lang, "platform_ok", platform=identity.platform))]
    if reply.get("state") == "revoked":
        found.append(Finding("revoked", False, say(lang, "revoked", platform=identity.platform)))
    elif reply.get("online"):
        found.append(Finding("connected", True, say(lang, "connected")))
    else:
        found.append(Finding("not_connected", False, say(lang, "not_connected")))
    skew = _clock_skew(reply, date, sent, received)
    if skew is not None:
        found.append(_clock_finding(skew, lang))
    return found


def _clock_skew(reply: dict[str, Any], date: str | None, sent: float, received: float) -> float:
    """This PC's clock minus the platform's, in seconds (the request's midpoint)."""
    server = reply.get("server_time")
    if not isinstance(server, int | float) and date:  # a platform without it: the header
        server = parsedate_to_datetime(date).timestamp()
    if not isinstance(server, int | float):
        return 0.0
    return (sent + received) / 2 - float(server)


def _clock_finding(skew: float, lang: str) -> Finding:
    if abs(skew) <= CLOCK_SKEW_LIMIT:
        return Finding("clock_ok", True, say(lang, "clock_ok"))
    minutes = max(1, round(abs(skew) / 60))
    code = "clock_ahead" if skew > 0 else "clock_behind"
    return Finding("clock_skew", False, say(lang, code, minutes=minutes))


def _refused(exc: urllib.error.HTTPError, identity: BridgeIdentity, lang: str) -> Finding:
    try:
        code = json.loads(exc.read(4096)).get("error", {}).get("code")
    except (ValueError, AttributeError, OSError):
        code = None
    if exc.code == 401 or code == "unauthorized":
        return Finding(
            "unknown_bridge", False, say(lang, "unknown_bridge", platform=identity.platform)
        )
    if exc.code == 404:
        return Finding("no_check", None, say(lang, "no_check", platform=identity.platform))
    return Finding(
        "platform_error",
        False,
        say(lang, "platform_error", status=exc.code, platform=identity.platform),
    )


def _unreachable(exc: BaseException, platform: str, lang: str) -> Finding:
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, ssl.SSLCertVerificationError):
        message = str(reason.verify_message or reason).lower()
        if "expired" in message or "not yet valid" in message:
            return Finding("clock_skew", False, say(lang, "tls_clock", platform=platform))
        return Finding(
            "tls_untrusted", False, say(lang, "tls_untrusted", platform=platform, detail=reason)
        )
    detail = f"{type(reason).__name__}: {reason}"[:200]
    return Finding(
        "platform_unreachable", False, say(lang, "unreachable", platform=platform, detail=detail)
    )


# -- keyboard ---------------------------------------------------------------------------


def check_keyboard(preference: str, lang: str) -> Finding:
    """Which keyboard backend `run --keyboard preference` would use; can it type?"""
    keyboard = select_keyboard(preference)
    if isinstance(keyboard, NoKeyboard):
        code = "keyboard_off" if preference == "none" else "keyboard_unavailable"
        return Finding(code, None, say(lang, code, detail=keyboard.reason))
    return Finding("keyboard_ok", True, say(lang, "keyboard_ok", backend=keyboard.name))


# -- all of it --------------------------------------------------------------------------


def run_checks(
    home: Path, lang: str, *, keyboard: str = "auto", timeout: float = 10.0
) -> list[Finding]:
    """Every check, in the order a person would fix things."""
    identity, paired = check_pairing(home, lang)
    findings = [paired, *check_pcsc(lang)]
    if identity is not None:
        findings += check_platform(identity, lang, timeout=timeout)
    findings.append(check_keyboard(keyboard, lang))
    return findings


MARKS = {True: "[OK]", False: "[!!]", None: "[--]"}


def render(findings: list[Finding], lang: str) -> str:
    """The findings as text, one per paragraph, then a one-line verdict."""
    lines = [f"{MARKS[f.ok]} {f.text}" for f in findings]
    problems = sum(1 for f in findings if f.ok is False)
    verdict = say(lang, "all_well") if not problems else say(lang, "problems", count=problems)
    return "\n".join([*lines, "", verdict])


def as_json(findings: list[Finding]) -> str:
    """The findings as JSON (for support and tests)."""
    return json.dumps(
        [{"code": f.code, "ok": f.ok, "text": f.text} for f in findings], ensure_ascii=False
    )
