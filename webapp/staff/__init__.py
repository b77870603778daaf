"""Staff: accounts with roles, sign-in, CSRF, error pages and the admin area."""

from __future__ import annotations

from flask import Flask

from .security import csrf_exempt

__all__ = ["csrf_exempt", "init_app"]


def init_app(app: Flask) -> None:
    """CSRF, cookie flags, login throttle, error pages, CLI and the staff/admin blueprints."""
    from ..throttle import app_limiter, setting
    from . import admin, cli, errors, models, security, views  # noqa: F401
    from .auth import current_staff
    from .menu import staff_menu
    from .throttle import PER_IP, PER_LOGIN, PER_LOGIN_IP, LoginThrottle

    security.init_app(app)
    app.extensions["staff_login_throttle"] = LoginThrottle(
        app_limiter(app.extensions, app.config),
        per_login_ip=setting(app.config, "LOGIN_LIMIT_PER_LOGIN_IP", PER_LOGIN_IP),
        per_ip=setting(app.config, "LOGIN_LIMIT_PER_IP", PER_IP),
        per_login=setting(app.config, "LOGIN_LIMIT_PER_LOGIN", PER_LOGIN),
    )
    errors.init_app(app)
    app.cli.add_command(cli.group)
    app.register_blueprint(views.bp)
    app.register_blueprint(admin.bp)
    app.context_processor(lambda: {"current_staff": current_staff, "staff_menu": staff_menu})
