"""Online local goods through a checkout (オンラインでの地域産品購入).

An online shop registered as a merchant (category online_goods) makes a checkout by its
API (api.py: amount, order reference, return URL; keys as the partner API's), sends the
citizen to the platform's checkout page (views.py), where they pay with their card and
PIN through their own card reader at home (purpose.py: the card flow's `checkout`
purpose), or cancel, and go back to the shop with a signed result (signing.py,
results.py). The shop is also told by a signed webhook from the outbox (webhooks.py,
`flask points deliver-webhooks`), and refunds in part or in full by the API
(services.py). docs/checkout.md has the API with examples.

Settings: CHECKOUT_TTL_SECONDS (900: how long a checkout waits to be paid),
CHECKOUT_ALLOW_LOOPBACK (http://127.0.0.1 origins and webhooks to private addresses:
the demo and the tests only), CHECKOUT_WEBHOOK_MAX_ATTEMPTS (8),
CHECKOUT_WEBHOOK_BASE_SECONDS (30: the first retry's wait, doubled each time).
"""

from __future__ import annotations

import os
import threading
import time

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from ... import db
from . import models  # noqa: F401  (the tables join the metadata)
from . import webhooks as webhooks_module


def _env_bool(value: str | None) -> bool | None:
    return None if value is None else value.strip().lower() in ("1", "true", "yes", "on")


def deliver_once(app: Flask) -> webhooks_module.Pass:
    """One pass of webhook deliveries with the app's settings."""
    allow = bool(app.config["CHECKOUT_ALLOW_LOOPBACK"])
    with app.app_context(), db.new_session() as s:
        return webhooks_module.deliver_due(
            s,
            webhooks_module.http_sender(allow_private=allow),
            max_attempts=int(app.config["CHECKOUT_WEBHOOK_MAX_ATTEMPTS"]),
            base_seconds=float(app.config["CHECKOUT_WEBHOOK_BASE_SECONDS"]),
        )


def start_delivery_loop(app: Flask, interval: float = 2.0) -> threading.Event:
    """Deliver webhooks every `interval` seconds in a daemon thread (the demo; a
    deployment runs `flask points deliver-webhooks --loop` as its own service).
    Set the returned event to stop it."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval):
            try:
                deliver_once(app)
            except Exception:
                app.logger.exception("webhook delivery pass failed")

    threading.Thread(target=loop, name="checkout-webhooks", daemon=True).start()
    return stop


@click.command("deliver-webhooks")
@click.option("--loop", is_flag=True, help="keep delivering until stopped")
@click.option("--interval", default=5.0, show_default=True, help="seconds between passes")
@with_appcontext
def deliver_webhooks(loop: bool, interval: float) -> None:
    """Send the shops' due webhooks (signed; retried with backoff; given up after N tries)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    while True:
        done = deliver_once(app)
        click.echo(f"delivered {done.delivered}, retrying {done.retrying}, failed {done.failed}")
        if not loop:
            return
        time.sleep(interval)


def init_app(app: Flask) -> None:
    """Settings, the shop API, the checkout page, its purpose and the delivery command."""
    from ...cardflow import flows_for
    from ...staff import csrf_exempt
    from . import api, purpose, views

    env = os.environ
    app.config.setdefault(
        "CHECKOUT_TTL_SECONDS", float(env.get("ICHIMAI_CHECKOUT_TTL_SECONDS", "900"))
    )
    loopback = _env_bool(env.get("ICHIMAI_CHECKOUT_ALLOW_LOOPBACK"))
    app.config.setdefault(
        "CHECKOUT_ALLOW_LOOPBACK",
        loopback if loopback is not None else bool(app.config.get("DEMO_MODE")),
    )
    app.config.setdefault(
        "CHECKOUT_WEBHOOK_MAX_ATTEMPTS", int(env.get("ICHIMAI_CHECKOUT_WEBHOOK_MAX_ATTEMPTS", "8"))
    )
    app.config.setdefault(
        "CHECKOUT_WEBHOOK_BASE_SECONDS",
        float(env.get("ICHIMAI_CHECKOUT_WEBHOOK_BASE_SECONDS", "30")),
    )
    app.register_blueprint(api.bp)
    csrf_exempt(api.bp)  # shops authenticate with their API key
    app.register_blueprint(views.bp)
    if "cardflow" in app.extensions:
        flows_for(app).register(purpose.CheckoutPurpose())
