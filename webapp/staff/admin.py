"""Admin area: the entry page and staff accounts (/admin/staff).

Every list, look-up and write goes through the administrator's scope
(webapp/tenancy/scope.py): the platform admin sees every account; a municipal
administrator its municipality's providers' staff and its own officers and
administrators; a provider admin its provider's. An account out of scope is a 404.
"""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from sqlalchemy import select

from .. import db
from ..paging import page_arg, query_arg
from ..places import codes
from ..points.models import Municipality
from ..providers.models import Provider
from ..sessions import end_staff_sessions
from ..tenancy import audit
from ..tenancy.scope import AdminScope, current_scope
from . import services
from .auth import current_staff, staff_required
from .forms import ROLE_LABELS, StaffForm, options
from .models import Role, StaffUser

bp = Blueprint("admin", __name__, url_prefix="/admin")

ADMINS = (Role.PLATFORM_ADMIN, Role.MUNICIPAL_ADMIN, Role.PROVIDER_ADMIN)
# Roles whose account belongs to a provider, and those that belong to a municipality.
PROVIDER_SCOPED = (Role.PROVIDER_ADMIN, Role.COUNTER_STAFF)
MUNICIPALITY_SCOPED = (Role.POINTS_OFFICER, Role.MUNICIPAL_ADMIN)


def _me() -> StaffUser:
    user = current_staff()
    if user is None:  # pragma: no cover (staff_required ran first)
        abort(403)
    return user


@bp.get("/")
@staff_required(*ADMINS)
def index() -> ResponseReturnValue:
    """The admin entry: providers first."""
    return redirect(url_for("providers_admin.index"))


@bp.get("/staff")
@staff_required(*ADMINS)
def staff_list() -> ResponseReturnValue:
    """Staff accounts within the administrator's scope."""
    scope = current_scope()
    q = query_arg()
    s = db.session()
    listing = services.page_staff(s, scope.staff(), q, page_arg())
    # Only the providers and municipalities the page names (not every one in the country).
    shown = {u.provider_id for u in listing.rows if u.provider_id is not None}
    names = {p.id: p for p in s.scalars(select(Provider).where(Provider.id.in_(shown)))}
    towns = {u.municipality_id for u in listing.rows if u.municipality_id is not None}
    munis = {m.id: m for m in s.scalars(select(Municipality).where(Municipality.id.in_(towns)))}
    return render_template(
        "admin/staff.html",
        listing=listing,
        q=q,
        providers=names,
        municipalities=munis,
        role_labels=ROLE_LABELS,
    )


def _refused(field: str, ja: str, en: str) -> services.StaffError:
    return services.StaffError(field, ja, en)


def _provider_by_code(scope: AdminScope, code: str) -> Provider:
    """The provider with this code within the scope; StaffError (not 'elsewhere') if none."""
    code = code.strip()
    found = None
    if code:
        found = db.session().scalar(
            select(Provider).where(Provider.code == code, scope.providers())
        )
    if found is None:
        raise _refused(
            "provider_code",
            "この施設コードの施設はありません（管理できる施設のコードを入力してください）。",
            "No provider you manage has this code: enter the code of one of yours.",
        )
    return found


def _municipality_for(scope: AdminScope, raw: str) -> int:
    """A points officer's or municipal administrator's municipality: a municipal
    administrator's own, whatever was sent; the platform admin's by its code."""
    if scope.municipal:
        assert scope.municipality_id is not None  # noqa: S101  (scope_of)
        return scope.municipality_id
    muni = None
    try:
        code = codes.validate(raw).code
    except codes.CodeError:
        code = ""
    if code:
        muni = db.session().scalar(select(Municipality).where(Municipality.code == code))
    if muni is None:
        raise _refused(
            "municipality_code",
            "この地方公共団体コードの自治体は登録されていません。",
            "No municipality with this local government code is registered.",
        )
    return muni.id


def _staff_form(provider: Provider | None) -> ResponseReturnValue:
    """The new-account form; `provider` fixed when opened from a provider's row."""
    scope = current_scope()
    me = _me()
    form = StaffForm()
    roles = [r for r in scope.roles() if provider is None or r in PROVIDER_SCOPED]
    form.role.choices = options((r.value, ROLE_LABELS[r.value]) for r in roles)
    if provider is not None:
        form.provider_code.data = provider.code
    elif scope.role is Role.PROVIDER_ADMIN and not form.is_submitted():
        own = db.session().get(Provider, scope.provider_id or 0)
        form.provider_code.data = own.code if own else ""
    error = None
    if form.validate_on_submit():
        s = db.session()
        role = Role(form.role.data or "")
        try:
            provider_id = municipality_id = None
            if role in PROVIDER_SCOPED:
                chosen = provider or _provider_by_code(scope, form.provider_code.data or "")
                provider_id = scope.provider(s, chosen.id).id
            elif role in MUNICIPALITY_SCOPED:
                municipality_id = _municipality_for(scope, form.municipality_code.data or "")
            user = services.create_staff(
                s,
                form.login.data or "",
                form.password.data or "",
                role,
                provider_id,
                municipality_id=municipality_id,
            )
        except services.StaffError as exc:
            s.rollback()
            error = exc.message(str(get_locale()))
            if exc.field in form:
                form[exc.field].errors = [*form[exc.field].errors, error]
        else:
            town = municipality_id
            if provider_id is not None:
                placed = s.get(Provider, provider_id)
                town = audit.municipality_id_of(s, placed.municipality_code if placed else "")
            audit.record(
                s,
                town,
                me.login,
                "staff.create",
                user.login,
                {"role": user.role, "provider_id": provider_id},
            )
            s.commit()
            return redirect(url_for("admin.staff_list"))
    return render_template(
        "admin/staff_form.html",
        form=form,
        error=error,
        provider=provider,
        scope=scope,
        fixed_provider=provider is not None or scope.role is Role.PROVIDER_ADMIN,
        municipality_roles=[r.value for r in MUNICIPALITY_SCOPED],
    )


@bp.route("/staff/new", methods=["GET", "POST"])
@staff_required(*ADMINS)
def staff_new() -> ResponseReturnValue:
    """Create a staff account; its provider is named by code, within the admin's scope."""
    return _staff_form(None)


@bp.route("/providers/<int:provider_id>/staff/new", methods=["GET", "POST"])
@staff_required(Role.PLATFORM_ADMIN, Role.MUNICIPAL_ADMIN)
def provider_staff_new(provider_id: int) -> ResponseReturnValue:
    """Create a staff account of one provider, opened from the provider's row."""
    return _staff_form(current_scope().provider(db.session(), provider_id))


@bp.post("/staff/<int:user_id>/active")
@staff_required(*ADMINS)
def staff_toggle(user_id: int) -> ResponseReturnValue:
    """Disable or re-enable an account (never one's own; another's scope: 404)."""
    me = _me()
    s = db.session()
    user = current_scope().staff_member(s, user_id)
    if user.id == me.id:
        abort(403)
    services.set_active(s, user, not user.active)
    if not user.active:
        end_staff_sessions(user.id)  # signed out everywhere at once
    town = user.municipality_id
    if user.provider_id is not None:
        placed = s.get(Provider, user.provider_id)
        town = audit.municipality_id_of(s, placed.municipality_code if placed else "")
    audit.record(s, town, me.login, "staff.enable" if user.active else "staff.disable", user.login)
    s.commit()
    return redirect(url_for("admin.staff_list"))
