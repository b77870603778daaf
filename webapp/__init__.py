"""Ichimai platform: the Flask app factory."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from . import config, db


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the platform app; `test_config` overrides the environment's settings."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    app = Flask(
        __name__,
        instance_relative_config=True,
        template_folder=os.path.join(root, "templates"),
        static_folder=os.path.join(root, "static"),
    )
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.from_mapping(config.from_environment(app.instance_path))
    if test_config:
        app.config.from_mapping(test_config)
    hops = config.proxy_hops(app.config["PROXY_HOPS"])
    if hops:
        # The client's address as the proxies saw it (throttles key on remote_addr).
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]

    from . import bus, cardflow, counter, i18n, identity, kiosk, points, staff, terminals
    from .providers import views as provider_views
    from .views import health

    db.init_app(app)
    bus.init_app(app)
    i18n.init_app(app)  # first of the page layers: templates need _()
    staff.init_app(app)  # CSRF, cookie flags, login throttle, error pages, /staff, /admin
    identity.init_app(app)
    terminals.init_app(app)  # /ws/bridge, pairing and admin API (CSRF-exempt: own auth)
    cardflow.init_app(app)  # /ws/terminal, /terminal/status; the app's JPKI verifier
    kiosk.init_app(app)
    counter.init_app(app)  # /counter: the librarian's tab
    points.init_app(app)
    staff.csrf_exempt(points.api.bp)  # partners sign their requests
    app.register_blueprint(provider_views.bp)
    app.register_blueprint(health.bp)
    return app
