"""Points (自治体ポイント管理): the ledger, grant programs, partner conversion, spending.

`init_app(app)` registers the partner API blueprint, the `flask points ...` commands and
the citizen directory; pages (staff grants, CSV upload, citizen view, merchant terminal
and settlement) are thin layers over the services in this package.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the points tables, the partner API, the staff pages, CLI and directory."""
    from ..cardflow import flows_for
    from . import api, checkout, cli, models, till, views  # noqa: F401  (models: the tables join the metadata)
    from .directory import IdentityDirectory
    from .officer import cause_views, shop_views  # noqa: F401  (routes join points_admin)
    from .officer import views as officer_views

    app.register_blueprint(api.bp)
    app.register_blueprint(views.bp)  # /points: officer and merchant pages
    app.register_blueprint(officer_views.bp)  # /points: the officer's set-up and audit log
    app.register_blueprint(till.bp)  # /points/terminal: the merchant's till
    if "cardflow" in app.extensions:
        flows_for(app).register(till.PayPurpose())
    checkout.init_app(app)  # online shops: API, checkout page, purpose
    cli.points.add_command(checkout.deliver_webhooks)
    app.cli.add_command(cli.points)
    from .retention import window

    window.configure(int(app.config.get("POINTS_REFUND_WINDOW_DAYS", window.DEFAULT_DAYS)))
    # The identity domain owns MyKey IDs; tests and benchmarks put another directory here.
    app.extensions.setdefault("points_directory", IdentityDirectory())
