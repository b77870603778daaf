"""Security headers on every response (flask-talisman).

- `Content-Security-Policy`: our own scripts, styles, images and connections only
  (`'self'`, which covers ws:/wss: to the same host for /ws/terminal); no inline script
  or style attribute anywhere (templates keep to static/js and static/css), no plugins,
  no `<base>`, forms post only to us, and no page may be framed (`frame-ancestors
  'none'`), so an admin's buttons (revoke a bridge, disable a user) cannot be clicked
  through another site's frame.
- `X-Frame-Options: DENY`: the same for browsers without frame-ancestors.
- `X-Content-Type-Options: nosniff`; `Referrer-Policy: same-origin` (a page's address,
  which may name a terminal or a report period, never leaves the site).
- `Strict-Transport-Security: max-age=31556926` only on a response served over HTTPS
  (behind a proxy: `ICHIMAI_PROXY_HOPS`, or its `X-Forwarded-Proto`); nothing redirects
  to HTTPS, so the embedded demo and the tests run on plain http://127.0.0.1.

The session cookie's flags stay with `staff/security.py` (Secure unless the origin is
this machine).
"""

from __future__ import annotations

from flask import Flask
from flask_talisman import DENY, Talisman

SELF = "'self'"
CONTENT_SECURITY_POLICY = {
    "default-src": SELF,
    "script-src": SELF,
    "style-src": SELF,
    "img-src": SELF,
    "font-src": SELF,
    "connect-src": SELF,
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": SELF,
    "frame-ancestors": "'none'",
}
REFERRER_POLICY = "same-origin"
HSTS_MAX_AGE = 31556926  # one year

talisman = Talisman()


def init_app(app: Flask) -> None:
    """Send the security headers on every response of `app` (before staff.init_app,
    which sets the session cookie's flags after Talisman's own)."""
    talisman.init_app(
        app,
        force_https=False,
        frame_options=DENY,
        content_security_policy=CONTENT_SECURITY_POLICY,
        referrer_policy=REFERRER_POLICY,
        strict_transport_security=True,
        strict_transport_security_max_age=HSTS_MAX_AGE,
        strict_transport_security_include_subdomains=False,
        session_cookie_secure=False,  # staff/security.py decides
        x_content_type_options=True,
    )
