"""`flask jpki refresh-crl`: every worker reloads its certificate revocation lists now.
`flask jpki import-linkage FILE-or-URL`: J-LIS's old-to-new certificate pairs move card
bindings, so a renewed or replaced card opens the same MyKey ID (docs/identity.md)."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from ..bus import get_bus
from ..jpki import linkage
from . import verifier_for
from .renewals import import_linkage

CRL_CHANNEL = "jpki.crl"


@click.group("jpki")
def jpki() -> None:
    """JPKI verification (trust anchors, revocation)."""


@jpki.command("refresh-crl")
@with_appcontext
def refresh_crl() -> None:
    """Reload the CRLs here and tell every worker to reload theirs (a card just reported
    lost is refused at its next tap, on whichever worker serves it)."""
    errors = verifier_for(current_app).revocation.refresh_all()
    get_bus(current_app).publish(CRL_CHANNEL, {"refresh": True})
    for location, error in sorted(errors.items()):
        click.echo(f"could not load {location}: {error}", err=True)
    click.echo("CRLs reloaded here; every worker told to reload")


@jpki.command("import-linkage")
@click.argument("locations", nargs=-1)
@with_appcontext
def import_linkage_command(locations: tuple[str, ...]) -> None:
    """Take in J-LIS's old-to-new certificate linkage (files or http(s) URLs; by default
    ICHIMAI_JPKI_LINKAGE): each renewed or replaced card opens the MyKey ID of the card it
    follows. Each document lands whole or not at all."""
    sources = list(locations) or list(current_app.config.get("JPKI_LINKAGE_SOURCES") or [])
    if not sources:
        raise click.UsageError("give a file or URL, or set ICHIMAI_JPKI_LINKAGE")
    failed = False
    for location in sources:
        try:
            report = import_linkage(current_app, location)
        except linkage.LinkageError as exc:
            click.echo(f"{location}: refused, nothing changed: {exc}", err=True)
            failed = True
            continue
        click.echo(
            f"{location}: moved {report.moved}, already moved {report.already}, "
            f"never bound here {report.unknown}, left for staff {len(report.conflicts)}"
        )
        for old_id, new_id in report.conflicts:
            click.echo(f"  both hold links or points, not merged: {old_id} and {new_id}")
    if failed:
        raise SystemExit(1)
