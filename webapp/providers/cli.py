"""`flask providers create|list`: a provider from the command line (the admin pages'
*Providers* does the same), for an operator's first run and for scripts."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from .. import db
from . import services
from .models import ProviderKind

group = AppGroup("providers", help="Service providers (libraries, museums...).")


@group.command("create")
@click.argument("code")
@click.option("--kind", type=click.Choice(ProviderKind.ALL), default=ProviderKind.LIBRARY)
@click.option("--name-ja", required=True, help="The provider's name in Japanese.")
@click.option("--name-en", default="", help="Its name in English.")
@click.option(
    "--counter-mode",
    type=click.Choice(["A", "B", "C"]),
    default="A",
    help="A: digits to type, B: a barcode, C: typed by the bridge.",
)
def create(code: str, kind: str, name_ja: str, name_en: str, counter_mode: str) -> None:
    """Create a provider; CODE is a library's ISIL (e.g. JP-1000001) or any code."""
    with db.new_session() as s:
        try:
            provider = services.create_provider(
                s,
                code=code,
                kind=kind,
                name_ja=name_ja,
                name_en=name_en,
                counter_settings={"mode": counter_mode},
            )
        except services.ProviderError as exc:
            raise click.ClickException(exc.message_en) from exc
        click.echo(f"created provider {provider.id} {provider.code} ({provider.kind})")


@group.command("list")
def list_() -> None:
    """List the providers: id, code, kind, name."""
    with db.new_session() as s:
        for p in services.list_providers(s):
            click.echo(f"{p.id}\t{p.code}\t{p.kind}\t{p.name_ja}")
