"""`flask sessions cleanup`: delete ended sessions, in batches, by the ends_at index."""

from __future__ import annotations

from datetime import datetime

import click
from flask import current_app
from flask.cli import AppGroup

from .. import db
from ..bus import get_bus
from . import interface, services

group = AppGroup("sessions", help="Server-side web sessions.")


@group.command("cleanup")
@click.option("--now", help="ISO time to act as of (aware), default: now")
@click.option("--batch", default=500, show_default=True, type=click.IntRange(1, 10_000))
def cleanup(now: str | None, batch: int) -> None:
    """Delete sessions that ended (idle too long or past their lifetime). Run it daily."""
    at = datetime.fromisoformat(now) if now else interface(current_app).clock()
    if at.tzinfo is None:
        raise click.BadParameter(
            "give a time zone, e.g. 2026-12-01T00:00:00+00:00", param_hint="--now"
        )
    with db.new_session() as s:
        deleted = services.cleanup(s, get_bus(current_app), at, batch)
    click.echo(f"deleted {deleted} ended session(s)")
