"""The front door (/): what the platform is, and the ways in.

Citizens: at home with their own card reader (/home), or at a kiosk of a facility that
has one (listed here). Staff: sign in (or, signed in, their staff home). In demo mode:
the virtual reader panel and the demo logins that exist in this database.
"""

from __future__ import annotations

from flask import Blueprint, Flask, current_app, render_template
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from . import db
from .providers.models import Provider
from .terminals.models import Terminal, TerminalKind

bp = Blueprint("front", __name__)

# Facilities with a kiosk listed on the front page at most. The query reads kiosk
# terminals through the (kind, ...) index and stops at this many facilities; a longer
# list would need a search by municipality, not a longer page.
KIOSK_PLACES_SHOWN = 30


def kiosk_places() -> tuple[list[Provider], bool]:
    """Facilities with at least one kiosk terminal, by name; and whether there are more."""
    s = db.session()
    ids = list(
        s.scalars(
            select(Terminal.provider_id)
            .where(Terminal.kind == TerminalKind.KIOSK)
            .distinct()
            .limit(KIOSK_PLACES_SHOWN + 1)
        )
    )
    places = list(s.scalars(select(Provider).where(Provider.id.in_(ids[:KIOSK_PLACES_SHOWN]))))
    places.sort(key=lambda p: (p.name_ja, p.code))
    return places, len(ids) > KIOSK_PLACES_SHOWN


def demo_logins() -> list[tuple[str, str, str]]:
    """The demo's logins that exist here, as (login, password, role) (demo mode only)."""
    from .demo_data import demo_logins as published
    from .staff.models import StaffUser

    rows = published()
    found = set(
        db.session().scalars(
            select(StaffUser.login).where(StaffUser.login.in_([row[0] for row in rows]))
        )
    )
    return [(login, password, role.value) for login, password, role in rows if login in found]


@bp.get("/")
def index() -> ResponseReturnValue:
    """The front door: two sentences, and the ways in."""
    from .staff.forms import ROLE_LABELS

    demo = bool(current_app.config.get("DEMO_MODE"))
    places, more = kiosk_places()
    return render_template(
        "front.html",
        places=places,
        more_places=more,
        demo=demo,
        logins=demo_logins() if demo else [],
        role_labels=ROLE_LABELS,
        no_csrf=True,
    )


def init_app(app: Flask) -> None:
    """Register the front door."""
    app.register_blueprint(bp)
