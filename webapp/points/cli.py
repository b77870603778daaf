"""`flask points ...`: the jobs (post held conversions, expire lots, settle crowdfunding
projects, compact history past the refund window), audits (ledger invariants, privacy
scan), partner keys."""

from __future__ import annotations

from datetime import datetime

import click
from flask.cli import with_appcontext

from .. import db
from . import causes, conversion, expiry, invariants, partners
from .retention import compact as compact_mod
from .retention import scan
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


@points.command("settle-projects")
@click.option("--now", help="ISO time to act as of (aware), default: now")
@with_appcontext
def settle_projects(now: str | None) -> None:
    """Settle crowdfunding projects past their end: goal met, or missed and the points
    kept or returned into the citizens' lots (run daily; a re-run returns nothing twice)."""
    with db.new_session() as s:
        for done in causes.settle_projects(s, now=_when(now)):
            click.echo(
                f"{done.code}: {done.status}, raised {done.raised}, returned {done.returned}"
                f" point(s) in {done.returns} return(s)"
            )


@points.command("compact")
@click.option("--now", help="ISO time to act as of (aware), default: now")
@click.option(
    "--batch", default=compact_mod.BATCH, show_default=True, type=click.IntRange(1, 10_000)
)
@with_appcontext
def compact(now: str | None, batch: int) -> None:
    """Remove the citizen–merchant link from history past the refund window: monthly
    totals for the citizen, payments for the merchant (run daily; re-runs are no-ops)."""
    with db.new_session() as s:
        done = compact_mod.compact(s, now=_when(now), batch=batch)
    click.echo(
        f"compacted {done.payments} payment(s) and {done.grants} grant(s)"
        f" into {done.summaries} monthly total(s)"
    )


@points.command("privacy-scan")
@click.option("--now", help="ISO time to act as of (aware), default: now")
@with_appcontext
def privacy_scan(now: str | None) -> None:
    """Look through every table for a citizen and a merchant on one row older than the
    refund window (a full scan: run off-peak, after `compact`); exit 1 if any."""
    with db.new_session() as s:
        found = scan.scan(s, now=_when(now))
    for f in found:
        click.echo(f"PAIR {f.table}: {f.rows} row(s), e.g. {f.sample}")
    if found:
        raise SystemExit(1)
    click.echo("no citizen–merchant pair older than the refund window")


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
