"""What each role works on: the staff menu (the navigation bar) and the staff home.

One table, `MENU`, says which pages each role opens; the navigation bar (base.html) and
the staff home (/staff/) both read it, so they never disagree. The home adds what the
role works on today: the counter terminals a librarian opens with one click, a shop's
tills, a provider admin's own provider. The server decides access as before (every
view has its `staff_required`); this module only says where the links are, and
tests/unit/webapp/staff/test_staff_menu.py walks every route as every role to check
that no page a role can use is missing from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import request, url_for
from flask_babel import LazyString
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from .. import db
from ..providers.models import Provider, ProviderKind
from ..terminals.models import Terminal, TerminalKind
from .models import Role, StaffUser

if TYPE_CHECKING:
    from ..points.till import TillRow

PLATFORM, PROVIDER, COUNTER = Role.PLATFORM_ADMIN, Role.PROVIDER_ADMIN, Role.COUNTER_STAFF
MUNICIPAL = Role.MUNICIPAL_ADMIN
OFFICER, MERCHANT = Role.POINTS_OFFICER, Role.MERCHANT_STAFF
# A home lists this many counter terminals at most; a platform admin with more opens
# the rest from the counter picker (/counter/), which lists them all.
COUNTERS_SHOWN = 12


@dataclass(frozen=True)
class Entry:
    """One page of the menu: its endpoint, its name, and a line on what it is for."""

    endpoint: str
    label: LazyString
    hint: LazyString
    roles: frozenset[Role]
    # For pages of one provider (its terms, its library system): the provider's id goes
    # into the URL, and only a provider admin (who has one provider) sees the entry.
    per_provider: bool = False
    libraries_only: bool = False
    # Other endpoints that count as this entry being the current page (aria-current).
    also: tuple[str, ...] = field(default=())


MENU: tuple[Entry, ...] = (
    Entry(
        "counter.index",
        _l("Counter"),
        _l("Open a counter terminal: a citizen taps the card, the library number shows."),
        frozenset({PLATFORM, PROVIDER, COUNTER}),
    ),
    Entry(
        "terminals_admin.index",
        _l("Terminals"),
        _l("Counters, kiosks and tills: add one, make a pairing code, revoke a bridge."),
        frozenset({PLATFORM, MUNICIPAL, PROVIDER}),
    ),
    Entry(
        "providers_admin.index",
        _l("Providers"),
        _l("Libraries and facilities: number format, counter output, terms, library system."),
        frozenset({PLATFORM, MUNICIPAL}),
        also=(
            "providers_admin.edit",
            "providers_admin.create",
            "providers_admin.terms",
            "tenancy.import_providers",
            "tenancy.import_upload",
            "admin.provider_staff_new",
        ),
    ),
    Entry(
        "providers_admin.index",
        _l("Facility settings"),
        _l("Your facility's number format and counter output (digits, barcode, typed)."),
        frozenset({PROVIDER}),
        also=("providers_admin.edit",),
    ),
    Entry(
        "providers_admin.terms",
        _l("Terms of use"),
        _l("The terms citizens accept when they link their number."),
        frozenset({PROVIDER}),
        per_provider=True,
    ),
    Entry(
        "sip2_admin.settings",
        _l("Library system (SIP2)"),
        _l("Connect the library's own system, so citizens' library numbers are confirmed."),
        frozenset({PROVIDER}),
        per_provider=True,
        libraries_only=True,
    ),
    Entry(
        "admin.staff_list",
        _l("Staff accounts"),
        _l("Add counter staff, disable an account."),
        frozenset({PLATFORM, MUNICIPAL, PROVIDER}),
        also=("admin.staff_new",),
    ),
    Entry(
        "sessions_admin.index",
        _l("Sessions"),
        _l("Who is signed in, open kiosks and home readers; end a session."),
        frozenset({PLATFORM, MUNICIPAL, PROVIDER}),
    ),
    Entry(
        "tenancy.municipalities",
        _l("Municipalities"),
        _l("Add a municipality and its first administrator."),
        frozenset({PLATFORM}),
        also=("tenancy.municipality_new",),
    ),
    Entry(
        "tenancy.audit_log",
        _l("Administration log"),
        _l("Who created or changed municipalities, providers, terminals and staff, and when."),
        frozenset({PLATFORM, MUNICIPAL}),
    ),
    Entry(
        "identity_admin.conflicts",
        _l("Renewed cards to check"),
        _l("A new card whose old card's MyKey ID also holds links or points: help decide."),
        frozenset({PLATFORM}),
    ),
    Entry(
        "points_terminal.tills",
        _l("Tills"),
        _l("Open your shop's till: the customer pays with points by card and PIN."),
        frozenset({MERCHANT}),
        also=("points_terminal.index",),
    ),
    Entry(
        "points_pages.settlement",
        _l("Settlement"),
        _l("Points taken per period, to settle with the municipality."),
        frozenset({MERCHANT}),
    ),
    Entry(
        "points_pages.refunds",
        _l("Refunds"),
        _l("Give points back for a payment."),
        frozenset({MERCHANT}),
    ),
    Entry(
        "points_pages.municipality",
        _l("Points summary"),
        _l("Outstanding points, each program's budget, partner conversions."),
        frozenset({OFFICER}),
    ),
    Entry(
        "points_pages.grants",
        _l("Grants"),
        _l("Grant a program's points to one MyKey ID, or many by CSV file."),
        frozenset({OFFICER}),
    ),
    Entry(
        "points_admin.programs",
        _l("Programs"),
        _l("Create and change programs: points, validity, budget, caps, dates, pause."),
        frozenset({OFFICER}),
        also=("points_admin.program",),
    ),
    Entry(
        "points_admin.merchants",
        _l("Merchants"),
        _l("Shops and facilities that take points, their tills and their staff."),
        frozenset({OFFICER}),
        also=("points_admin.merchant",),
    ),
    Entry(
        "points_admin.partners_list",
        _l("Partners"),
        _l("Companies whose points convert here: rate, bonus, holding period, API keys."),
        frozenset({OFFICER}),
        also=("points_admin.partner",),
    ),
    Entry(
        "points_admin.causes",
        _l("Causes and projects"),
        _l("Donation causes and crowdfunding projects citizens give points to."),
        frozenset({OFFICER}),
        also=("points_admin.cause",),
    ),
    Entry(
        "points_admin.policy",
        _l("Expiry policy"),
        _l("How long new points are valid, and the refund window."),
        frozenset({OFFICER}),
    ),
    Entry(
        "points_admin.audit_log",
        _l("Audit log"),
        _l("Every change to the points set-up: who, when, what."),
        frozenset({OFFICER}),
    ),
)


@dataclass(frozen=True)
class Link:
    """An entry of the menu as one staff member sees it."""

    endpoint: str
    url: str
    label: str
    hint: str
    current: bool


def _provider(user: StaffUser) -> Provider | None:
    if user.provider_id is None:
        return None
    return db.session().get(Provider, user.provider_id)


def menu_for(user: StaffUser | None, endpoint: str | None = None) -> list[Link]:
    """The pages `user` works on, in menu order; `endpoint` is the page shown now."""
    if user is None:
        return []
    role = Role(user.role)
    provider = _provider(user) if role == PROVIDER else None
    links = []
    for entry in MENU:
        if role not in entry.roles:
            continue
        args: dict[str, Any] = {}
        if entry.per_provider:
            if provider is None:
                continue
            if entry.libraries_only and provider.kind not in ProviderKind.LIBRARIES:
                continue
            args["provider_id"] = provider.id
        current = endpoint is not None and (endpoint == entry.endpoint or endpoint in entry.also)
        links.append(
            Link(
                entry.endpoint,
                url_for(entry.endpoint, **args),
                str(entry.label),
                str(entry.hint),
                current,
            )
        )
    return links


@dataclass(frozen=True)
class StaffWork:
    """What the staff home shows first: the role's terminals, then its pages."""

    links: list[Link]
    counters: list[Terminal]
    more_counters: bool
    tills: list[TillRow]
    provider: Provider | None


def _counters(user: StaffUser) -> tuple[list[Terminal], bool]:
    """The counter terminals `user` may open (cardflow.binding.may_open), by name."""
    stmt = select(Terminal).where(Terminal.kind == TerminalKind.COUNTER)
    if user.role != PLATFORM:
        stmt = stmt.where(Terminal.provider_id == user.provider_id)
    found = list(
        db.session().scalars(stmt.order_by(Terminal.name, Terminal.id).limit(COUNTERS_SHOWN + 1))
    )
    return found[:COUNTERS_SHOWN], len(found) > COUNTERS_SHOWN


def work_for(user: StaffUser, endpoint: str | None = None) -> StaffWork:
    """The staff home's content for `user`."""
    counters: list[Terminal] = []
    more = False
    tills: list[TillRow] = []
    if user.role in (PLATFORM, PROVIDER, COUNTER) and (
        user.role == PLATFORM or user.provider_id is not None
    ):
        counters, more = _counters(user)
    if user.role == MERCHANT:
        from ..points.till import tills_for

        tills = tills_for(user.merchant_id)
    return StaffWork(menu_for(user, endpoint), counters, more, tills, _provider(user))


def staff_menu(user: StaffUser | None) -> list[Link]:
    """For base.html's navigation bar: `user`'s menu, the page shown now marked."""
    return menu_for(user, request.endpoint)
