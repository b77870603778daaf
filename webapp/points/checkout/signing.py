"""Signatures a shop checks, and the URLs a checkout may send a citizen to (no I/O).

- The signed result on the return URL: HMAC-SHA256 with the shop's signing secret over
  the checkout id, the order reference, the status, the amount and the time (Unix
  seconds), joined by newlines (a reference is printable ASCII without a newline, so
  the joined text reads one way only). Hex in `sig`.
- The webhook: header `Ichimai-Signature: t=<unix seconds>,v1=<hex>`, the HMAC-SHA256
  of `<t>.<the exact body>` (Stripe's scheme: the time is signed, so an old delivery
  replayed later is told apart by the shop's tolerance window).
- Origins and return URLs: a shop registers its origins (`https://host[:port]`); a
  return URL must be absolute, on one of them, without user info, and at most 1,000
  characters. That is what keeps the checkout page from being an open redirect.
  Plain http is only for loopback hosts, and only where the settings allow it (the
  demo and the tests).
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode, urlsplit, urlunsplit

from ..errors import Code, InvalidInput

MAX_URL = 1000
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]"})


def result_signature(
    secret: str, checkout_id: str, reference: str, status: str, amount: int, ts: int
) -> str:
    """The hex HMAC-SHA256 of the return URL's result."""
    message = "\n".join((checkout_id, reference, status, str(amount), str(ts)))
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def result_url(
    return_url: str,
    secret: str,
    *,
    checkout_id: str,
    reference: str,
    status: str,
    amount: int,
    ts: int,
) -> str:
    """The shop's return URL with the signed result added to its query."""
    sig = result_signature(secret, checkout_id, reference, status, amount, ts)
    params = urlencode(
        {
            "checkout": checkout_id,
            "order": reference,
            "status": status,
            "amount": amount,
            "ts": ts,
            "sig": sig,
        }
    )
    parts = urlsplit(return_url)
    query = f"{parts.query}&{params}" if parts.query else params
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def webhook_signature(secret: str, ts: int, body: str) -> str:
    """The `Ichimai-Signature` header of a webhook body sent at `ts`."""
    mac = hmac.new(secret.encode(), f"{ts}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def _origin_of(url: str) -> tuple[str, str]:
    """(scheme, origin) of an absolute URL, or InvalidInput."""
    if any(c in url for c in "\\\r\n\t ") or any(ord(c) < 0x20 or ord(c) > 0x7E for c in url):
        raise ValueError("characters")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("scheme")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ValueError("userinfo")
    port = parts.port  # ValueError on a bad port
    host = parts.hostname.lower()
    host = f"[{host}]" if ":" in host else host
    default = {"https": 443, "http": 80}[parts.scheme]
    origin = f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")
    return parts.scheme, origin


def check_origin(text: str, *, allow_loopback_http: bool) -> str:
    """A registered origin as stored (`https://host[:port]`, lower case), or InvalidInput."""
    text = text.strip().rstrip("/")
    try:
        scheme, origin = _origin_of(text)
        parts = urlsplit(text)
    except ValueError:
        raise InvalidInput(Code.INVALID_ORIGIN, text[:80]) from None
    if parts.path or parts.query or parts.fragment or len(text) > 200:
        raise InvalidInput(Code.INVALID_ORIGIN, text[:80])
    loopback = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname
    if scheme == "http" and not (allow_loopback_http and loopback in LOOPBACK_HOSTS):
        raise InvalidInput(Code.INVALID_ORIGIN, f"{text[:80]}: https only")
    return origin


def check_url_on(url: object, origins: list[str], code: Code = Code.INVALID_RETURN_URL) -> str:
    """An absolute URL on one of `origins` (what a return or webhook URL must be)."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL:
        raise InvalidInput(code, f"1-{MAX_URL} characters")
    try:
        _, origin = _origin_of(url)
    except ValueError:
        raise InvalidInput(code, "not an absolute http(s) URL") from None
    if origin not in origins:
        raise InvalidInput(code, "not on a registered origin")
    if urlsplit(url).fragment:
        raise InvalidInput(code, "no #fragment")
    return url
