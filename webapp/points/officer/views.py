"""The officer's set-up pages (/points/programs, merchants, partners, policy, audit).

Thin: parse the form, call a service of webapp.points.officer, render. Only a points
officer reaches them, and only for their own municipality: an id of another city's
program, merchant, till, staff account or partner is "not found" (404), whatever the
request. A refused change renders the page again with the reason (400, 404 or 422) and
changes nothing; a change that went through redirects to the page it was made on
(`?done=...` says what was done), except an API key, shown once on the answer itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select

from ... import db
from ...catalogue import words
from ...staff.auth import current_staff, staff_required
from ...staff.forms import ROLE_LABELS, options
from ...staff.models import Role
from ...staff.services import StaffError
from .. import audit, partners, reports
from ..checkout import keys as shop_keys
from ..checkout import webhooks
from ..checkout.models import Shop
from ..errors import Code, InvalidInput, PointsError
from ..forms import new_key
from ..models import (
    Merchant,
    MerchantCategory,
    Municipality,
    PartnerKind,
    Program,
    ProgramCategory,
)
from ..reports import JST
from ..retention import window as refund_window
from ..validation import utc_now
from . import Officer
from . import merchants as merchant_services
from . import partners as partner_services
from . import programs as program_services
from .forms import (
    CAUSE_KINDS,
    CAUSE_STATUSES,
    CODE_HINT,
    MERCHANT_CATEGORIES,
    MISS_POLICIES,
    PARTNER_KINDS,
    PROGRAM_KINDS,
    ActionForm,
    BindTillForm,
    BudgetForm,
    MerchantEditForm,
    MerchantForm,
    MerchantStaffForm,
    PartnerForm,
    PolicyForm,
    ProgramEditForm,
    ProgramForm,
    RevokeKeyForm,
    ShopForm,
    TermsForm,
    TillForm,
    day_of_end,
    day_of_start,
    end_instant,
    start_instant,
)

bp = Blueprint("points_admin", __name__, url_prefix="/points")

DONE = {
    "created": _l("Created."),
    "saved": _l("Saved. The change applies from the next request on."),
    "paused": _l("Paused: no grant or bonus is paid from it until it is resumed."),
    "resumed": _l("Resumed."),
    "funded": _l("Added to the budget."),
    "till": _l("The till was added. Pair its card reader with a pairing code."),
    "bound": _l("The till is now this merchant's."),
    "staff": _l("The staff account was created."),
    "disabled": _l("The account was disabled; its sessions have ended."),
    "enabled": _l("The account was enabled."),
    "revoked": _l("The key was revoked; requests with it fail from now on."),
    "retry": _l("The webhook will be sent again shortly."),
}


ACTIONS = {
    "program.create": _l("Program created"),
    "program.update": _l("Program changed"),
    "program.pause": _l("Program paused"),
    "program.resume": _l("Program resumed"),
    "program.fund": _l("Budget added"),
    "merchant.create": _l("Merchant created"),
    "merchant.update": _l("Merchant changed"),
    "till.create": _l("Till added"),
    "till.bind": _l("Till bound"),
    "till.pairing_code": _l("Till pairing code made"),
    "staff.create": _l("Staff account created"),
    "staff.disable": _l("Staff account disabled"),
    "staff.enable": _l("Staff account enabled"),
    "partner.create": _l("Partner registered"),
    "partner.terms": _l("Partner terms set"),
    "partner.key_issue": _l("API key issued"),
    "partner.key_revoke": _l("API key revoked"),
    "policy.update": _l("Expiry policy changed"),
    "cause.create": _l("Cause or project created"),
    "cause.update": _l("Cause or project changed"),
    "shop.settings": _l("Online shop settings changed"),
    "shop.secret": _l("Signing secret renewed"),
    "shop.key_issue": _l("Shop API key issued"),
    "shop.key_revoke": _l("Shop API key revoked"),
    "shop.webhook_retry": _l("Webhook sent again"),
}
FIELDS = {
    "name": _l("Name"),
    "category": _l("Kind"),
    "kind": _l("Kind"),
    "points_per_grant": _l("Points per grant"),
    "expiry_days": _l("Valid for (days)"),
    "budget": _l("Budget"),
    "budget_added": _l("Added to the budget"),
    "transfer": _l("Transfer number"),
    "cap_points_per_citizen": _l("Cap: points per person"),
    "cap_grants_per_citizen": _l("Cap: grants per person"),
    "starts_at": _l("Starts"),
    "ends_at": _l("Ends"),
    "active": _l("Active"),
    "merchant": _l("Merchant"),
    "role": _l("Role"),
    "rate_num": _l("City points"),
    "rate_den": _l("Partner points"),
    "bonus_bp": _l("Bonus (basis points)"),
    "min_unit": _l("Minimum unit"),
    "hold_days": _l("Holding period (days)"),
    "bonus_program_id": _l("Bonus program number"),
    "key_id": _l("API key id"),
    "default_expiry_days": _l("New points valid for (days)"),
    "refund_window_days": _l("Refund window (days)"),
    "description": _l("Description"),
    "goal_points": _l("Goal (points)"),
    "miss_policy": _l("If the goal is missed"),
    "fresh_days": _l("Returned points valid for (days)"),
    "status": _l("Status"),
    "origins": _l("Shop origins"),
    "webhook": _l("Webhook URL"),
    "signing_secret": _l("Signing secret"),
    "event": _l("Event"),
}


def program_status(program: Program) -> str:
    """Paused, not started yet, ended or running (dates in Japan time), as words."""
    now = utc_now()
    if not program.active:
        return str(_l("Paused"))
    if program.starts_at is not None and now < program.starts_at:
        return str(_l("Starts on %(day)s", day=day_of_start(program.starts_at)))
    if program.ends_at is not None and now >= program.ends_at:
        return str(_l("Ended on %(day)s", day=day_of_end(program.ends_at)))
    if program.ends_at is not None:
        return str(_l("Until %(day)s", day=day_of_end(program.ends_at)))
    return str(_l("Running"))


def shown(field: str, value: Any) -> str:
    """A logged value as the officer reads it: labels for kinds, yes/no, 1,000s."""
    if isinstance(value, bool):
        return str(_l("Yes") if value else _l("No"))
    if isinstance(value, int):
        return (
            f"{value:,}" if field not in ("key_id", "transfer", "bonus_program_id") else str(value)
        )
    labels = {**PROGRAM_KINDS, **MERCHANT_CATEGORIES} if field == "category" else {}
    labels = {**PARTNER_KINDS, **CAUSE_KINDS} if field == "kind" else labels
    labels = ROLE_LABELS if field == "role" else labels
    labels = {"miss_policy": MISS_POLICIES, "status": CAUSE_STATUSES}.get(field, labels)
    return str(labels.get(value, value))


def _who() -> Officer:
    """The signed-in officer and their municipality (a missing one is a 403)."""
    user = current_staff()
    if user is None or db.session().get(Municipality, user.municipality_id or 0) is None:
        abort(403)  # pragma: no cover (staff_required ran first; a scope is required)
    return Officer(user.municipality_id or 0, user.login)


def _message(exc: PointsError) -> str:
    return str(words(exc.code.value).title)


def _done() -> str:
    return str(DONE.get(request.args.get("done", ""), ""))


def _invalid() -> str:
    return _message(InvalidInput(Code.INVALID_INPUT)) + " " + str(_l("See the fields marked."))


Again = Callable[[int, str], ResponseReturnValue]


def submit(
    form: FlaskForm, again: Again, act: Callable[[], ResponseReturnValue]
) -> ResponseReturnValue:
    """One officer form's POST: an invalid form shows its page again (400, the fields
    marked); a refusal by the service shows it again with the refusal's status and words,
    nothing written; otherwise what `act` answers (a redirect to what it made or changed)."""
    if not form.validate_on_submit():
        return again(400, _invalid())
    try:
        return act()
    except PointsError as exc:
        db.session().rollback()
        return again(exc.status, _message(exc))


# --- programs ------------------------------------------------------------------------


def _programs_page(
    who: Officer, form: ProgramForm | None = None, status: int = 200, error: str = ""
) -> ResponseReturnValue:
    summary = reports.municipality_summary(db.session(), who.municipality_id)
    left = {code: (funded, used, rest) for code, funded, used, rest in summary.programs}
    rows = db.session().scalars(
        select(Program).where(Program.municipality_id == who.municipality_id).order_by(Program.code)
    )
    muni = db.session().get(Municipality, who.municipality_id)
    if form is None:
        form = ProgramForm(formdata=None)
        form.expiry_days.data = muni.default_expiry_days if muni else 365
    return render_template(
        "points/admin/programs.html",
        muni=muni,
        form=form,
        programs=[(p, left.get(p.code, (0, 0, 0))) for p in rows],
        kinds=PROGRAM_KINDS,
        code_hint=CODE_HINT,
        error=error,
        done=_done(),
        program_status=program_status,
    ), status


@bp.get("/programs")
@staff_required(Role.POINTS_OFFICER)
def programs() -> ResponseReturnValue:
    """The programs with their budget left, and the form for a new one."""
    return _programs_page(_who())


@bp.post("/programs")
@staff_required(Role.POINTS_OFFICER)
def program_create() -> ResponseReturnValue:
    """Create a program with its budget."""
    who = _who()
    form = ProgramForm()

    def again(status: int, error: str) -> ResponseReturnValue:
        return _programs_page(who, form, status, error)

    def act() -> ResponseReturnValue:
        program = program_services.add_program(
            db.session(),
            who,
            code=form.code.data or "",
            name=form.name.data or "",
            category=ProgramCategory(form.category.data),
            points_per_grant=form.points_per_grant.data or 0,
            expiry_days=form.expiry_days.data or 0,
            budget=form.budget.data or 0,
            cap_points_per_citizen=form.cap_points_per_citizen.data,
            cap_grants_per_citizen=form.cap_grants_per_citizen.data,
            starts_at=start_instant(form.starts_on.data),
            ends_at=end_instant(form.ends_on.data),
        )
        return redirect(url_for(".program", program_id=program.id, done="created"))

    return submit(form, again, act)


def _program_page(
    who: Officer,
    program: Program,
    *,
    form: ProgramEditForm | None = None,
    budget_form: BudgetForm | None = None,
    status: int = 200,
    error: str = "",
) -> ResponseReturnValue:
    if form is None:
        form = ProgramEditForm(formdata=None, obj=program)
        form.starts_on.data = day_of_start(program.starts_at)
        form.ends_on.data = day_of_end(program.ends_at)
    budget_form = budget_form or BudgetForm(formdata=None)
    budget_form.key.data = new_key()
    summary = reports.municipality_summary(db.session(), who.municipality_id)
    funded = next(
        ((f, u, rest) for c, f, u, rest in summary.programs if c == program.code), (0, 0, 0)
    )
    return render_template(
        "points/admin/program.html",
        program=program,
        form=form,
        budget_form=budget_form,
        action_form=ActionForm(formdata=None),
        funded=funded,
        program_status=program_status(program),
        kinds=PROGRAM_KINDS,
        error=error,
        done=_done(),
    ), status


@bp.get("/programs/<int:program_id>")
@staff_required(Role.POINTS_OFFICER)
def program(program_id: int) -> ResponseReturnValue:
    """One program: its terms, dates, pause and budget."""
    who = _who()
    try:
        found = program_services.own_program(db.session(), who, program_id)
    except PointsError as exc:
        abort(exc.status)
    return _program_page(who, found)


def _own_program_or_404(who: Officer, program_id: int) -> Program:
    try:
        return program_services.own_program(db.session(), who, program_id)
    except PointsError as exc:
        abort(exc.status)


@bp.post("/programs/<int:program_id>")
@staff_required(Role.POINTS_OFFICER)
def program_update(program_id: int) -> ResponseReturnValue:
    """Change a program's name, points, validity, caps and dates."""
    who = _who()
    found = _own_program_or_404(who, program_id)
    form = ProgramEditForm()

    def again(status: int, error: str) -> ResponseReturnValue:
        return _program_page(who, found, form=form, status=status, error=error)

    def act() -> ResponseReturnValue:
        program_services.update_program(
            db.session(),
            who,
            program_id,
            name=form.name.data or "",
            points_per_grant=form.points_per_grant.data or 0,
            expiry_days=form.expiry_days.data or 0,
            cap_points_per_citizen=form.cap_points_per_citizen.data,
            cap_grants_per_citizen=form.cap_grants_per_citizen.data,
            starts_at=start_instant(form.starts_on.data),
            ends_at=end_instant(form.ends_on.data),
        )
        return redirect(url_for(".program", program_id=program_id, done="saved"))

    return submit(form, again, act)


def _pause(program_id: int, paused: bool) -> ResponseReturnValue:
    who = _who()
    found = _own_program_or_404(who, program_id)
    if not ActionForm().validate_on_submit():
        return _program_page(who, found, status=400, error=_invalid())
    program_services.set_paused(db.session(), who, program_id, paused)
    done = "paused" if paused else "resumed"
    return redirect(url_for(".program", program_id=program_id, done=done))


@bp.post("/programs/<int:program_id>/pause")
@staff_required(Role.POINTS_OFFICER)
def program_pause(program_id: int) -> ResponseReturnValue:
    """Pause a program: nothing is paid from it until it is resumed."""
    return _pause(program_id, True)


@bp.post("/programs/<int:program_id>/resume")
@staff_required(Role.POINTS_OFFICER)
def program_resume(program_id: int) -> ResponseReturnValue:
    """Resume a paused program."""
    return _pause(program_id, False)


@bp.post("/programs/<int:program_id>/budget")
@staff_required(Role.POINTS_OFFICER)
def program_budget(program_id: int) -> ResponseReturnValue:
    """Add points to the budget; the form's key makes a double submit one funding."""
    who = _who()
    found = _own_program_or_404(who, program_id)
    form = BudgetForm()

    def again(status: int, error: str) -> ResponseReturnValue:
        return _program_page(who, found, budget_form=form, status=status, error=error)

    def act() -> ResponseReturnValue:
        program_services.add_budget(
            db.session(), who, program_id, form.points.data or 0, key=form.key.data or ""
        )
        return redirect(url_for(".program", program_id=program_id, done="funded"))

    return submit(form, again, act)


# --- merchants -----------------------------------------------------------------------


def shop_context(s: Any, merchant: Merchant, form: ShopForm | None) -> dict[str, Any]:
    """What the merchant page shows of an online shop (online_goods): its settings form,
    API keys and webhook deliveries in trouble; nothing for another category."""
    if merchant.category != MerchantCategory.ONLINE_GOODS.value:
        return {"shop": None}
    shop = s.get(Shop, merchant.id)
    if form is None:
        form = ShopForm(formdata=None)
        if shop is not None:
            form.origins.data = "\n".join(shop.origins)
            form.webhook_url.data = shop.webhook_url or ""
    return {
        "shop": {
            "row": shop,
            "form": form,
            "api_keys": shop_keys.live_keys(s, merchant.id),
            "max_keys": shop_keys.MAX_LIVE_KEYS,
            "troubles": webhooks.troubles(s, merchant.id),
            "jst": JST,
        }
    }


def _merchants_page(
    who: Officer, form: MerchantForm | None = None, status: int = 200, error: str = ""
) -> ResponseReturnValue:
    rows = list(
        db.session().scalars(
            select(Merchant)
            .where(Merchant.municipality_id == who.municipality_id)
            .order_by(Merchant.code)
        )
    )
    tills = merchant_services.tills_of(db.session(), who)
    count = {m.id: sum(1 for t in tills if t.merchant_id == m.id) for m in rows}
    return render_template(
        "points/admin/merchants.html",
        muni=db.session().get(Municipality, who.municipality_id),
        form=form or MerchantForm(formdata=None),
        merchants=rows,
        tills=count,
        categories=MERCHANT_CATEGORIES,
        code_hint=CODE_HINT,
        error=error,
        done=_done(),
    ), status


@bp.get("/merchants")
@staff_required(Role.POINTS_OFFICER)
def merchants() -> ResponseReturnValue:
    """The merchants, and the form for a new one."""
    return _merchants_page(_who())


@bp.post("/merchants")
@staff_required(Role.POINTS_OFFICER)
def merchant_create() -> ResponseReturnValue:
    """Create a merchant in one of the accepted categories."""
    who = _who()
    form = MerchantForm()

    def again(status: int, error: str) -> ResponseReturnValue:
        return _merchants_page(who, form, status, error)

    def act() -> ResponseReturnValue:
        merchant = merchant_services.add_merchant(
            db.session(),
            who,
            code=form.code.data or "",
            name=form.name.data or "",
            category=MerchantCategory(form.category.data),
        )
        return redirect(url_for(".merchant", merchant_id=merchant.id, done="created"))

    return submit(form, again, act)


def _own_merchant_or_404(who: Officer, merchant_id: int) -> Merchant:
    try:
        return merchant_services.own_merchant(db.session(), who, merchant_id)
    except PointsError as exc:
        abort(exc.status)


def _merchant_page(
    who: Officer,
    merchant: Merchant,
    *,
    status: int = 200,
    error: str = "",
    **forms: Any,
) -> ResponseReturnValue:
    s = db.session()
    edit = forms.pop("form", None) or MerchantEditForm(formdata=None, obj=merchant)
    tills = merchant_services.tills_of(s, who)
    bind = forms.pop("bind_form", None) or BindTillForm(formdata=None)
    names = {
        m.id: m
        for m in s.scalars(select(Merchant).where(Merchant.municipality_id == who.municipality_id))
    }
    bind.terminal_id.choices = options(
        (t.id, f"{t.name} ({names[t.merchant_id].name})")
        for t in tills
        if t.merchant_id != merchant.id and t.merchant_id in names
    )
    return render_template(
        "points/admin/merchant.html",
        **shop_context(s, merchant, forms.pop("shop_form", None)),
        merchant=merchant,
        form=edit,
        till_form=forms.pop("till_form", None) or TillForm(formdata=None),
        bind_form=bind,
        staff_form=forms.pop("staff_form", None) or MerchantStaffForm(formdata=None),
        action_form=ActionForm(formdata=None),
        tills=[t for t in tills if t.merchant_id == merchant.id],
        staff=merchant_services.staff_of(s, merchant),
        categories=MERCHANT_CATEGORIES,
        error=error,
        done=_done(),
        **forms,
    ), status


@bp.get("/merchants/<int:merchant_id>")
@staff_required(Role.POINTS_OFFICER)
def merchant(merchant_id: int) -> ResponseReturnValue:
    """One merchant: name and category, its tills, its staff."""
    who = _who()
    return _merchant_page(who, _own_merchant_or_404(who, merchant_id))


@bp.post("/merchants/<int:merchant_id>")
@staff_required(Role.POINTS_OFFICER)
def merchant_update(merchant_id: int) -> ResponseReturnValue:
    """Change a merchant's name, category, or whether it takes points."""
    who = _who()
    found = _own_merchant_or_404(who, merchant_id)
    form = MerchantEditForm()

    def again(status: int, error: str) -> ResponseReturnValue:
        return _merchant_page(who, found, form=form, status=status, error=error)

    def act() -> ResponseReturnValue:
        merchant_services.update_merchant(
            db.session(),
            who,
            merchant_id,
            name=form.name.data or "",
            category=MerchantCategory(form.category.data),
            active=bool(form.active.data),
        )
        return redirect(url_for(".merchant", merchant_id=merchant_id, done="saved"))

    return submit(form, again, act)


@bp.post("/merchants/<int:merchant_id>/tills")
@staff_required(Role.POINTS_OFFICER)
def till_create(merchant_id: int) -> ResponseReturnValue:
    """Add a till for the merchant."""
    who = _who()
    found = _own_merchant_or_404(who, merchant_id)
    form = TillForm()

    def again(status: int, error: str) -> ResponseReturnValue:
        return _merchant_page(who, found, till_form=form, status=status, error=error)

    def act() -> ResponseReturnValue:
        merchant_services.add_till(db.session(), who, merchant_id, form.till_name.data or "")
        return redirect(url_for(".merchant", merchant_id=merchant_id, done="till"))

    return submit(form, again, act)


@bp.post("/merchants/<int:merchant_id>/tills/bind")
@staff_required(Role.POINTS_OFFICER)
def till_bind(merchant_id: int) -> ResponseReturnValue:
    """Bind another of the municipality's tills to this merchant."""
    who = _who()
    found = _own_merchant_or_404(who, merchant_id)
    form = BindTillForm()
    form.terminal_id.choices = None  # any id: the service says whether it is ours
    form.terminal_id.validate_choice = False

    def again(status: int, error: str) -> ResponseReturnValue:
        return _merchant_page(who, found, status=status, error=error)

    def act() -> ResponseReturnValue:
        merchant_services.move_till(db.session(), who, form.terminal_id.data or 0, merchant_id)
        return redirect(url_for(".merchant", merchant_id=merchant_id, done="bound"))

    return submit(form, again, act)


@bp.post("/tills/<int:terminal_id>/pairing-code")
@staff_required(Role.POINTS_OFFICER)
def till_pairing(terminal_id: int) -> ResponseReturnValue:
    """A one-time code to pair the till's card reader, shown on the answer only."""
    who = _who()
    try:
        till = merchant_services.own_till(db.session(), who, terminal_id)
    except PointsError as exc:
        abort(exc.status)
    found = _own_merchant_or_404(who, till.merchant_id or 0)
    if not ActionForm().validate_on_submit():
        return _merchant_page(who, found, status=400, error=_invalid())
    issued = merchant_services.till_pairing_code(db.session(), who, terminal_id)
    return _merchant_page(who, found, pairing=issued, pairing_till=till.name, jst=JST)


@bp.post("/merchants/<int:merchant_id>/staff")
@staff_required(Role.POINTS_OFFICER)
def staff_create(merchant_id: int) -> ResponseReturnValue:
    """A staff account for the merchant."""
    who = _who()
    found = _own_merchant_or_404(who, merchant_id)
    form = MerchantStaffForm()
    if not form.validate_on_submit():
        return _merchant_page(who, found, staff_form=form, status=400, error=_invalid())
    try:
        merchant_services.add_staff(
            db.session(), who, merchant_id, form.login.data or "", form.password.data or ""
        )
    except StaffError as exc:
        found = _own_merchant_or_404(who, merchant_id)
        message = exc.message(str(get_locale() or "ja"))
        return _merchant_page(who, found, staff_form=form, status=400, error=message)
    return redirect(url_for(".merchant", merchant_id=merchant_id, done="staff"))


def _staff_active(staff_id: int, enable: bool) -> ResponseReturnValue:
    who = _who()
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        user = merchant_services.set_staff_active(db.session(), who, staff_id, enable)
    except PointsError as exc:
        abort(exc.status)
    done = "enabled" if enable else "disabled"
    return redirect(url_for(".merchant", merchant_id=user.merchant_id, done=done))


@bp.post("/staff/<int:staff_id>/disable")
@staff_required(Role.POINTS_OFFICER)
def staff_disable(staff_id: int) -> ResponseReturnValue:
    """Disable a merchant's staff account (its sessions end at once)."""
    return _staff_active(staff_id, False)


@bp.post("/staff/<int:staff_id>/enable")
@staff_required(Role.POINTS_OFFICER)
def staff_enable(staff_id: int) -> ResponseReturnValue:
    """Enable a merchant's staff account again."""
    return _staff_active(staff_id, True)


# --- partners ------------------------------------------------------------------------


def _partners_page(
    who: Officer, form: PartnerForm | None = None, status: int = 200, error: str = ""
) -> ResponseReturnValue:
    return render_template(
        "points/admin/partners.html",
        muni=db.session().get(Municipality, who.municipality_id),
        form=form or PartnerForm(formdata=None),
        partners=partner_services.partners_of(db.session(), who),
        kinds=PARTNER_KINDS,
        code_hint=CODE_HINT,
        error=error,
        done=_done(),
    ), status


@bp.get("/partners")
@staff_required(Role.POINTS_OFFICER)
def partners_list() -> ResponseReturnValue:
    """Partners registered here or accepted here, and the form for a new one."""
    return _partners_page(_who())


@bp.post("/partners")
@staff_required(Role.POINTS_OFFICER)
def partner_create() -> ResponseReturnValue:
    """Register a partner company."""
    who = _who()
    form = PartnerForm()

    def again(status: int, error: str) -> ResponseReturnValue:
        return _partners_page(who, form, status, error)

    def act() -> ResponseReturnValue:
        partner = partner_services.add_partner(
            db.session(),
            who,
            code=form.code.data or "",
            name=form.name.data or "",
            kind=PartnerKind(form.kind.data),
        )
        return redirect(url_for(".partner", partner_id=partner.id, done="created"))

    return submit(form, again, act)


def _bonus_choices(who: Officer) -> list[Any]:
    bonus = db.session().scalars(
        select(Program)
        .where(
            Program.municipality_id == who.municipality_id,
            Program.category == ProgramCategory.PARTNER_BONUS.value,
        )
        .order_by(Program.code)
    )
    return options([(0, str(_l("No bonus"))), *((p.id, f"{p.code} {p.name}") for p in bonus)])


def _partner_page(
    who: Officer,
    partner_id: int,
    *,
    form: TermsForm | None = None,
    status: int = 200,
    error: str = "",
    new_api_key: str = "",
) -> ResponseReturnValue:
    try:
        partner, terms = partner_services.own_partner(db.session(), who, partner_id)
    except PointsError as exc:
        abort(exc.status)
    if form is None:
        form = TermsForm(formdata=None, obj=terms)
        if terms is None:
            muni = db.session().get(Municipality, who.municipality_id)
            form.rate_num.data, form.rate_den.data, form.bonus_bp.data = 1, 1, 0
            form.min_unit.data, form.hold_days.data = 1, 14
            form.expiry_days.data = muni.default_expiry_days if muni else 365
            form.active.data = True
        form.bonus_program_id.data = (terms.bonus_program_id if terms else None) or 0
    form.bonus_program_id.choices = _bonus_choices(who)
    own_keys = partner.municipality_id == who.municipality_id
    return render_template(
        "points/admin/partner.html",
        partner=partner,
        terms=terms,
        form=form,
        action_form=ActionForm(formdata=None),
        revoke_form=RevokeKeyForm(formdata=None),
        keys=partners.live_keys(db.session(), partner.id) if own_keys else [],
        own_keys=own_keys,
        max_keys=partners.MAX_LIVE_KEYS,
        new_api_key=new_api_key,
        kinds=PARTNER_KINDS,
        error=error,
        done=_done(),
        jst=JST,
    ), status


@bp.get("/partners/<int:partner_id>")
@staff_required(Role.POINTS_OFFICER)
def partner(partner_id: int) -> ResponseReturnValue:
    """One partner: this municipality's terms and the partner's API keys."""
    return _partner_page(_who(), partner_id)


@bp.post("/partners/<int:partner_id>")
@staff_required(Role.POINTS_OFFICER)
def partner_terms(partner_id: int) -> ResponseReturnValue:
    """Set the rate, bonus, unit, holding period and validity for a partner."""
    who = _who()
    form = TermsForm()
    form.bonus_program_id.choices = _bonus_choices(who)
    form.bonus_program_id.validate_choice = False  # the service checks the program

    def again(status: int, error: str) -> ResponseReturnValue:
        return _partner_page(who, partner_id, form=form, status=status, error=error)

    def act() -> ResponseReturnValue:
        partner_services.set_partner_terms(
            db.session(),
            who,
            partner_id,
            rate=(form.rate_num.data or 0, form.rate_den.data or 0),
            bonus_bp=form.bonus_bp.data or 0,
            min_unit=form.min_unit.data or 0,
            hold_days=form.hold_days.data or 0,
            expiry_days=form.expiry_days.data or 0,
            bonus_program_id=form.bonus_program_id.data or None,
            active=bool(form.active.data),
        )
        return redirect(url_for(".partner", partner_id=partner_id, done="saved"))

    return submit(form, again, act)


@bp.post("/partners/<int:partner_id>/keys")
@staff_required(Role.POINTS_OFFICER)
def partner_key_issue(partner_id: int) -> ResponseReturnValue:
    """Issue an API key: shown on this answer only, never again."""
    who = _who()

    def again(status: int, error: str) -> ResponseReturnValue:
        return _partner_page(who, partner_id, status=status, error=error)

    def act() -> ResponseReturnValue:
        key = partner_services.issue_partner_key(db.session(), who, partner_id)
        return _partner_page(who, partner_id, new_api_key=key)

    return submit(ActionForm(), again, act)


@bp.post("/partners/<int:partner_id>/keys/revoke")
@staff_required(Role.POINTS_OFFICER)
def partner_key_revoke(partner_id: int) -> ResponseReturnValue:
    """Revoke one of the partner's keys."""
    who = _who()
    form = RevokeKeyForm()

    def again(status: int, error: str) -> ResponseReturnValue:
        return _partner_page(who, partner_id, status=status, error=error)

    def act() -> ResponseReturnValue:
        partner_services.revoke_partner_key(db.session(), who, partner_id, form.key_id.data or "")
        return redirect(url_for(".partner", partner_id=partner_id, done="revoked"))

    return submit(form, again, act)


# --- expiry policy and audit log -------------------------------------------------------


@bp.route("/policy", methods=["GET", "POST"])
@staff_required(Role.POINTS_OFFICER)
def policy() -> ResponseReturnValue:
    """The validity new programs and partners start from, and the refund window."""
    who = _who()
    muni = db.session().get(Municipality, who.municipality_id)
    form = PolicyForm(obj=muni) if request.method == "GET" else PolicyForm()
    status, error = 200, ""
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                partner_services.set_policy(
                    db.session(),
                    who,
                    default_expiry_days=form.default_expiry_days.data or 0,
                    refund_window_days=form.refund_window_days.data,
                )
            except PointsError as exc:
                db.session().rollback()
                status, error = exc.status, _message(exc)
            else:
                return redirect(url_for(".policy", done="saved"))
        else:
            status, error = 400, _invalid()
    return render_template(
        "points/admin/policy.html",
        muni=muni,
        form=form,
        error=error,
        done=_done(),
        platform_window=refund_window.platform_days(),
    ), status


@bp.get("/audit")
@staff_required(Role.POINTS_OFFICER)
def audit_log() -> ResponseReturnValue:
    """Every change made here: who, when, what (newest first, 50 a page)."""
    who = _who()
    before = request.args.get("before", type=int)
    rows = audit.entries(db.session(), who.municipality_id, before=before)
    return render_template(
        "points/admin/audit.html",
        muni=db.session().get(Municipality, who.municipality_id),
        entries=rows,
        more=rows[-1].id if len(rows) == audit.PAGE else None,
        actions=ACTIONS,
        fields=FIELDS,
        shown=shown,
        jst=JST,
    )
