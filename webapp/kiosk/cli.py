"""`flask home cleanup`: delete home terminals of no more use, with their bridges."""

from __future__ import annotations

from datetime import datetime, timedelta

import click
from flask import current_app
from flask.cli import with_appcontext

from .. import db
from ..bus import get_bus
from ..terminals import services
from ..terminals.registry import CONTROL_CHANNEL


@click.group("home")
def home() -> None:
    """Citizens' own card readers at home."""


@home.command("cleanup")
@click.option("--now", help="ISO time to act as of (aware), default: now")
@with_appcontext
def cleanup(now: str | None) -> None:
    """Delete home terminals never paired in time or unused for HOME_TERMINAL_IDLE_DAYS."""
    at = datetime.fromisoformat(now) if now else None
    if at is not None and at.tzinfo is None:
        raise click.BadParameter(
            "give a time zone, e.g. 2026-12-01T00:00:00+00:00", param_hint="--now"
        )
    idle = timedelta(days=float(current_app.config["HOME_TERMINAL_IDLE_DAYS"]))
    with db.new_session() as s:
        done = services.delete_stale_home_terminals(s, idle=idle, now=at)
    bus = get_bus(current_app)
    for bridge_id in done.bridge_ids:  # a still-connected bridge is cut off on its worker
        bus.publish(CONTROL_CHANNEL, {"op": "revoke", "bridge_id": bridge_id})
    click.echo(f"deleted {done.terminals} home terminal(s), {len(done.bridge_ids)} bridge(s)")
