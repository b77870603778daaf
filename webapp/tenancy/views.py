"""Tenancy pages: municipalities and their first administrator (platform admin), the
providers' CSV import (platform admin: any municipality; municipal administrator: its
own) and the administrators' audit log."""

from __future__ import annotations

from datetime import timedelta, timezone

from flask import Blueprint, Response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from .. import db
from ..inputs import UPLOAD_CONTENT_LENGTH
from ..inputs.web import PlainText, allow_body
from ..paging import contains, page_arg, paginate, query_arg
from ..places import codes
from ..points import admin as points_admin
from ..points.errors import PointsError
from ..points.models import Municipality
from ..staff import services as staff_services
from ..staff.auth import current_staff, staff_required
from ..staff.forms import LOGIN, ROLE_LABELS
from ..staff.models import Role, StaffUser
from . import audit, importer
from .scope import current_scope

bp = Blueprint("tenancy", __name__, url_prefix="/admin")

JST = timezone(timedelta(hours=9), "JST")
TEMPLATE = "isil,name,kana,prefecture,municipality_code,kind\r\n"
ACTIONS = {
    "municipality.create": _l("Municipality created"),
    "staff.create": _l("Staff account created"),
    "staff.disable": _l("Staff account disabled"),
    "staff.enable": _l("Staff account enabled"),
    "provider.create": _l("Provider added"),
    "providers.import": _l("Providers imported (CSV)"),
    "terminal.create": _l("Terminal added"),
}


class MunicipalityForm(FlaskForm):
    """A new municipality and its first administrator."""

    code = StringField(
        _l("Local government code (6 digits)"), validators=[DataRequired(), PlainText(12)]
    )
    name = StringField(_l("Name"), validators=[DataRequired(), PlainText(100)])
    login = StringField(
        _l("Administrator's login"), validators=[DataRequired(), Length(min=3), LOGIN]
    )
    password = PasswordField(
        _l("Administrator's initial password"),
        validators=[
            DataRequired(),
            Length(min=staff_services.MIN_PASSWORD_LENGTH),
            PlainText(staff_services.MAX_PASSWORD_LENGTH),
        ],
    )


class ImportForm(FlaskForm):
    """Upload a providers file."""

    file = FileField(_l("CSV file"), validators=[FileRequired()])


def _login() -> str:
    me = current_staff()
    return me.login if me else "?"


@bp.get("/municipalities")
@staff_required(Role.PLATFORM_ADMIN)
def municipalities() -> ResponseReturnValue:
    """Every municipality (searchable, a page at a time) and how many providers it has."""
    s = db.session()
    q = query_arg()
    stmt = select(Municipality).order_by(Municipality.code)
    if q:
        stmt = stmt.where(
            (Municipality.code.like(contains(q), escape="\\"))
            | (Municipality.name.like(contains(q), escape="\\"))
        )
    listing = paginate(s, stmt, page_arg())
    shown = [m.code for m in listing.rows]
    from ..providers.models import Provider

    counts = dict(
        s.execute(
            select(Provider.municipality_code, func.count())
            .where(Provider.municipality_code.in_(shown))
            .group_by(Provider.municipality_code)
        ).all()
    )
    ids = [m.id for m in listing.rows]
    admins = dict(
        s.execute(
            select(StaffUser.municipality_id, func.count())
            .where(StaffUser.municipality_id.in_(ids), StaffUser.role == Role.MUNICIPAL_ADMIN)
            .group_by(StaffUser.municipality_id)
        ).all()
    )
    return render_template(
        "admin/municipalities.html",
        listing=listing,
        q=q,
        counts=counts,
        admins=admins,
        created=request.args.get("created", ""),
    )


@bp.route("/municipalities/new", methods=["GET", "POST"])
@staff_required(Role.PLATFORM_ADMIN)
def municipality_new() -> ResponseReturnValue:
    """Create a municipality (code with its check digit, name) and its first
    administrator, in one transaction: both or neither."""
    form = MunicipalityForm()
    error = None
    lang = str(get_locale())
    if form.validate_on_submit():
        s = db.session()
        try:
            code = codes.validate(form.code.data or "").code
        except codes.CodeError as exc:
            ja, en = codes.MESSAGES[exc.reason]
            error = en if lang.startswith("en") else ja
            form.code.errors = [error]
        else:
            error = _create_municipality(form, code, lang)
            if error is None:
                return redirect(url_for(".municipalities", created=code, q=code))
            s.rollback()
    return render_template("admin/municipality_form.html", form=form, error=error)


def _create_municipality(form: MunicipalityForm, code: str, lang: str) -> str | None:
    """Create both; the error message (and nothing written), or None."""
    s = db.session()
    if s.scalar(select(Municipality.id).where(Municipality.code == code)) is not None:
        message = (
            "This municipality is already registered."
            if lang.startswith("en")
            else "この自治体はすでに登録されています。"
        )
        form.code.errors = [message]
        return message
    name = (form.name.data or "").strip()
    login = staff_services.normalize_login(form.login.data or "")
    if s.scalar(select(StaffUser.id).where(StaffUser.login == login)) is not None:
        message = staff_services._login_taken().message(lang)
        form.login.errors = [message]
        return message
    try:
        muni = points_admin.create_municipality(s, code, name)
    except (PointsError, IntegrityError):
        s.rollback()
        message = (
            "The municipality could not be created."
            if lang.startswith("en")
            else "自治体を登録できませんでした。"
        )
        return message
    try:
        user = staff_services.create_staff(
            s,
            login,
            form.password.data or "",
            Role.MUNICIPAL_ADMIN,
            municipality_id=muni.id,
        )
    except staff_services.StaffError as exc:
        # create_municipality committed: undo it so that both or neither exist.
        s.rollback()
        _remove_municipality(muni.id)
        message = exc.message(lang)
        if exc.field in form:
            form[exc.field].errors = [message]
        return message
    audit.record(s, muni.id, _login(), "municipality.create", f"{code} {name}", {"name": name})
    audit.record(
        s, muni.id, _login(), "staff.create", user.login, {"role": Role.MUNICIPAL_ADMIN.value}
    )
    s.commit()
    return None


def _remove_municipality(municipality_id: int) -> None:
    """Delete a just-created municipality and its opening rows (no transfers yet)."""
    from ..points.models import AcceptedCategory, Account

    s = db.session()
    s.query(AcceptedCategory).filter_by(municipality_id=municipality_id).delete()
    s.query(Account).filter_by(municipality_id=municipality_id).delete()
    s.query(Municipality).filter_by(id=municipality_id).delete()
    s.commit()


def _import_page(**extra: object) -> ResponseReturnValue:
    scope = current_scope()
    status = int(str(extra.pop("status", 200)))
    own = None
    if scope.municipal:
        own = db.session().get(Municipality, scope.municipality_id)
    return (
        render_template(
            "admin/provider_import.html",
            form=extra.pop("form", None) or ImportForm(),
            own=own,
            max_rows=importer.MAX_ROWS,
            **extra,
        ),
        status,
    )


@bp.get("/providers/import")
@staff_required(Role.PLATFORM_ADMIN, Role.MUNICIPAL_ADMIN)
def import_providers() -> ResponseReturnValue:
    """The providers' CSV import: the columns, a template, the upload."""
    return _import_page()


@bp.post("/providers/import")
@staff_required(Role.PLATFORM_ADMIN, Role.MUNICIPAL_ADMIN)
@allow_body(UPLOAD_CONTENT_LENGTH)  # a file of up to importer.MAX_BYTES
def import_upload() -> ResponseReturnValue:
    """Add every row of a file, or none: a refused file lists each bad line."""
    scope = current_scope()
    form = ImportForm()
    lang = str(get_locale())
    if not form.validate_on_submit():
        return _import_page(form=form, status=400, error=_l("Please choose a CSV file."))
    data = form.file.data.read(importer.MAX_BYTES + 1)
    s = db.session()
    only = scope.municipality_code if scope.municipal else None
    try:
        result = importer.import_file(s, data, only_municipality=only)
    except importer.ImportRejected as exc:
        s.rollback()
        rows = [(e.line, e.field, e.message(lang)) for e in exc.errors]
        return _import_page(
            status=400, error=_l("The file was not imported: no row was added."), rows=rows
        )
    for code, count in sorted(result.per_municipality.items()):
        audit.record(
            s,
            audit.municipality_id_of(s, code),
            _login(),
            "providers.import",
            code,
            {"rows": count},
        )
    s.commit()
    return _import_page(imported=len(result.providers), per_municipality=result.per_municipality)


@bp.get("/providers/import/template.csv")
@staff_required(Role.PLATFORM_ADMIN, Role.MUNICIPAL_ADMIN)
def import_template() -> ResponseReturnValue:
    """The header line of a providers file, to fill in with a spreadsheet."""
    return Response(
        "\ufeff" + TEMPLATE,
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=providers-template.csv"},
    )


@bp.get("/audit")
@staff_required(Role.PLATFORM_ADMIN, Role.MUNICIPAL_ADMIN)
def audit_log() -> ResponseReturnValue:
    """Administrators' changes, newest first: every one (platform) or the municipality's."""
    scope = current_scope()
    before = request.args.get("before", type=int)
    rows = audit.entries(
        db.session(), None if scope.national else scope.municipality_id, before=before
    )
    return render_template(
        "admin/audit.html",
        entries=rows,
        more=rows[-1].id if len(rows) == audit.PAGE else None,
        actions=ACTIONS,
        role_labels=ROLE_LABELS,
        jst=JST,
    )
