"""Staff: accounts with roles, sign-in, CSRF, error pages and the admin area."""

from __future__ import annotations

from flask import Flask

from .security import csrf_exempt

__all__ = ["csrf_exempt", "init_app"]


def init_app(app: Flask) -> None:
    """CSRF, cookie flags, login throttle, error pages, CLI and the staff/admin blueprints."""
    from . import admin, cli, errors, models, security, views  # noqa: F401
    from .auth import current_staff
    from .throttle import LoginThrottle, storage_uri

    security.init_app(app)
    app.extensions["staff_login_throttle"] = LoginThrottle(
        app.config.get("LOGIN_THROTTLE_STORAGE") or storage_uri(app.config.get("BUS_URL")),
        per_login=app.config.get("LOGIN_LIMIT_PER_LOGIN", "5 per 15 minutes"),
        per_ip=app.config.get("LOGIN_LIMIT_PER_IP", "20 per 15 minutes"),
    )
    errors.init_app(app)
    app.cli.add_command(cli.group)
    app.register_blueprint(views.bp)
    app.register_blueprint(admin.bp)
    app.context_processor(lambda: {"current_staff": current_staff})
