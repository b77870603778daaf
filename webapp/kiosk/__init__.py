"""The kiosk (キオスク端末): citizens create their MyKey ID and link service IDs by themselves.

The same flow runs at home (/home, `home.py`): on a citizen's own terminal of kind
`home`, bound to their browser (`home_binding.py`).
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the /kiosk pages and JSON API, /home, `flask home cleanup` (and the
    demo's virtual reader panel)."""
    from flask_babel import get_locale

    from .. import demo_reader
    from ..cardflow import flows_for
    from . import cli, home, views
    from .purposes import KioskPurpose
    from .renew import RenewPurpose

    def locale() -> str:
        return str(get_locale() or "ja")

    flows_for(app).register(KioskPurpose(locale))
    flows_for(app).register(RenewPurpose(locale))  # "I have a new card" (renew.py)
    app.register_blueprint(views.bp)
    home.init_app(app)
    app.cli.add_command(cli.home)
    demo_reader.init_app(app)  # /demo/reader, in demo mode only
