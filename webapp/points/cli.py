"""`flask points ...`: the jobs (post held conversions, expire lots), audit, partner keys."""

from __future__ import annotations

from datetime import datetime

import click
from flask.cli import with_appcontext

from .. import db
from . import conversion, expiry, invariants, partners
from .validation import utc_now


def _when(value: str | None) -> datetime:
    return utc_now(datetime.fromisoformat(value) if value else None)


@click.group("points")
def points() -> None:
    """Municipal points: jobs and administration."""


@points.command("post-held")
@click.option("--now", help="ISO time to act as of (aware), default: now")
@with_appcontext
def post_held(now: str | None) -> None:
    """Post conversions whose holding period is over (run every few minutes)."""
    with db.new_session() as s:
        total = 0
        while batch := conversion.post_due(s, now=_when(now)):
            total += batch
    click.echo(f"posted {total} conversion(s)")


@points.command("expire")
@click.option("--now", help="ISO time to act as of (aware), default: now")
@with_appcontext
def expire(now: str | None) -> None:
    """Move what is left of expired lots to the expired sink (run hourly)."""
    with db.new_session() as s:
        run = expiry.expire_due(s, now=_when(now))
    click.echo(f"expired {run.points} point(s) of {run.accounts} citizen(s)")


@points.command("check")
@with_appcontext
def check() -> None:
    """Audit every ledger invariant (a full scan: run off-peak)."""
    with db.new_session() as s:
        found = invariants.violations(s)
    for name, rows in found.items():
        click.echo(f"VIOLATED {name}: {rows}")
    if found:
        raise SystemExit(1)
    click.echo(f"all {len(invariants.CHECKS)} invariants hold")


@points.command("issue-key")
@click.argument("partner_id", type=int)
@with_appcontext
def issue_key(partner_id: int) -> None:
    """Issue an API key for a partner (printed once; at most two live)."""
    with db.new_session() as s:
        click.echo(partners.issue_key(s, partner_id))


@points.command("revoke-key")
@click.argument("key_id")
@with_appcontext
def revoke_key(key_id: str) -> None:
    """Revoke a partner API key by its public id (the 16 hex digits after ick_)."""
    with db.new_session() as s:
        partners.revoke_key(s, key_id)
    click.echo("revoked")
