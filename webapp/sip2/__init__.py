"""Verified links through the library's own system: SIP2 through the library's bridge.

- `models.LibrarySip2`: a library's SIP2 connection (its passwords sealed to its
  connector bridge);
- `services`: the settings, the connector, `Sip2Gateway` (asks the library system);
- `verify`: a citizen's library password checked (throttled per library number);
- `views`: the provider admin's page (/admin/providers/<id>/sip2) with Test connection.

docs/sip2.md says how a library sets it up; docs/identity.md what a verified link is.
"""

from __future__ import annotations

from flask import Flask

from .services import Sip2Gateway
from .verify import PasswordThrottle


def init_app(app: Flask) -> None:
    """The gateway, the password throttle and the admin page (after cardflow)."""
    from ..cardflow import flows_for
    from ..throttle import app_limiter, setting
    from . import models, verify, views  # noqa: F401  (the table must be known)

    app.extensions["sip2_gateway"] = Sip2Gateway(flows_for(app).link)
    app.extensions["sip2_throttle"] = PasswordThrottle(
        app_limiter(app.extensions, app.config),
        per_number=setting(app.config, "LIBRARY_PASSWORD_LIMIT_PER_NUMBER", verify.PER_NUMBER),
        per_terminal=setting(
            app.config, "LIBRARY_PASSWORD_LIMIT_PER_TERMINAL", verify.PER_TERMINAL
        ),
    )
    app.register_blueprint(views.bp)


def gateway_of(app: Flask) -> Sip2Gateway:
    """The app's SIP2 gateway."""
    gateway: Sip2Gateway = app.extensions["sip2_gateway"]
    return gateway


def throttle_of(app: Flask) -> PasswordThrottle:
    """The app's library password throttle."""
    throttle: PasswordThrottle = app.extensions["sip2_throttle"]
    return throttle
