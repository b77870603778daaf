"""Admin area: the entry page and staff accounts (/admin/staff)."""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import gettext as _

from .. import db
from ..providers.services import list_providers
from . import services
from .auth import current_staff, staff_required
from .forms import ROLE_LABELS, StaffForm, options
from .models import Role, StaffUser

bp = Blueprint("admin", __name__, url_prefix="/admin")

ADMINS = (Role.PLATFORM_ADMIN, Role.PROVIDER_ADMIN)


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
    """Staff accounts: all for platform admins, their provider's for provider admins."""
    me = _me()
    only = None if me.role == Role.PLATFORM_ADMIN else me.provider_id
    users = services.list_staff(db.session(), only)
    names = {p.id: p for p in list_providers(db.session(), only)}
    return render_template(
        "admin/staff.html", users=users, providers=names, role_labels=ROLE_LABELS
    )


@bp.route("/staff/new", methods=["GET", "POST"])
@staff_required(*ADMINS)
def staff_new() -> ResponseReturnValue:
    """Create a staff account (provider admins: counter staff of their own provider)."""
    me = _me()
    form = StaffForm()
    platform = me.role == Role.PLATFORM_ADMIN
    providers = list_providers(db.session(), None if platform else me.provider_id)
    lang = str(get_locale())
    pairs = [(0, _("None (platform administrator)"))] if platform else []
    pairs += [
        (p.id, f"{p.code} {p.name_en if lang == 'en' and p.name_en else p.name_ja}")
        for p in providers
    ]
    form.provider_id.choices = options(pairs)
    if not platform:
        form.role.choices = options(
            [(Role.COUNTER_STAFF.value, ROLE_LABELS[Role.COUNTER_STAFF.value])]
        )
    error = None
    if form.validate_on_submit():
        provider_id = form.provider_id.data or None
        if not platform and provider_id != me.provider_id:
            abort(403)
        try:
            services.create_staff(
                db.session(),
                form.login.data or "",
                form.password.data or "",
                form.role.data or "",
                provider_id,
            )
        except services.StaffError as exc:
            error = exc.message(lang)
        else:
            return redirect(url_for("admin.staff_list"))
    return render_template("admin/staff_form.html", form=form, error=error)


@bp.post("/staff/<int:user_id>/active")
@staff_required(*ADMINS)
def staff_toggle(user_id: int) -> ResponseReturnValue:
    """Disable or re-enable an account (never one's own)."""
    me = _me()
    user = db.session().get(StaffUser, user_id)
    if user is None:
        abort(404)
    if user.id == me.id or (me.role != Role.PLATFORM_ADMIN and user.provider_id != me.provider_id):
        abort(403)
    services.set_active(db.session(), user, not user.active)
    return redirect(url_for("admin.staff_list"))
