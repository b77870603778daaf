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
    else:
        # Built from the environment alone (app.py: flask run, gunicorn): refuse to
        # serve a deployment that would be silently wrong (webapp/deployment.py; demo
        # mode too, with its own rules), but let `flask doctor` start, to say what is
        # missing.
        from .deployment import refuse_unsafe
        from .doctor import running as doctor_running

        if not doctor_running():
            refuse_unsafe(app.config)
        else:
            app.config["BUS_OPTIONAL"] = True  # Redis down: say so, rather than not start
        from .ops.logs import configure_if_unset

        configure_if_unset()  # JSON lines on stderr, unless gunicorn.conf.py did it
    hops = config.proxy_hops(app.config["PROXY_HOPS"])
    if hops:
        # The client's address as the proxies saw it (throttles key on remote_addr).
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]

    from . import (
        bus,
        cardflow,
        counter,
        front,
        headers,
        health,
        i18n,
        identity,
        kiosk,
        ops,
        outage,
        points,
        sessions,
        sip2,
        staff,
        tenancy,
        terminals,
    )
    from .inputs import web as inputs_web
    from .providers import views as provider_views

    db.init_app(app)
    bus.init_app(app)
    inputs_web.init_app(app)  # before any layer reads a body: size, JSON and text bounds
    headers.init_app(app)  # CSP, frame-ancestors, nosniff, Referrer-Policy, HSTS on https
    i18n.init_app(app)  # first of the page layers: templates need _()
    staff.init_app(app)  # CSRF, cookie flags, login throttle, error pages, /staff, /admin
    outage.init_app(app)  # PostgreSQL or Redis down: 503 "try again", never a 500
    sessions.init_app(app)  # flask.session kept in the database; /admin/sessions
    identity.init_app(app)
    terminals.init_app(app)  # /ws/bridge, pairing and admin API (CSRF-exempt: own auth)
    cardflow.init_app(app)  # /ws/terminal, /terminal/status; the app's JPKI verifier
    sip2.init_app(app)  # a library's own system (SIP2) through its bridge
    kiosk.init_app(app)
    counter.init_app(app)  # /counter: the librarian's tab
    points.init_app(app)
    tenancy.init_app(app)  # /admin/municipalities, the providers' CSV import, /admin/audit
    staff.csrf_exempt(points.api.bp)  # partners sign their requests
    app.register_blueprint(provider_views.bp)
    app.register_blueprint(health.bp)
    ops.init_app(app)  # /metrics (refused unless configured)
    front.init_app(app)  # /: the front door
    from .doctor import doctor
    from .providers import cli as provider_cli
    from .terminals import cli as terminal_cli

    app.cli.add_command(doctor)
    app.cli.add_command(provider_cli.group)  # flask providers create|list
    app.cli.add_command(terminal_cli.group)  # flask terminals create|pairing-code|list
    return app
