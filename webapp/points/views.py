"""Points staff pages (/points): a municipality's officer and a merchant's staff.

Thin: parse the form, call a service of this package, render. No view writes the ledger;
every refusal is a PointsError with a Japanese and an English message, and changes nothing.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from flask import Blueprint, Response, abort, current_app, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlalchemy import select

from .. import db
from ..catalogue import words
from ..inputs import UPLOAD_CONTENT_LENGTH
from ..inputs.web import allow_body
from ..staff.auth import current_staff, staff_required
from ..staff.forms import options
from ..staff.models import Role, StaffUser
from . import grant_csv, programs, reports, spend
from .errors import Code, CsvRejected, InvalidInput, PointsError
from .forms import CsvForm, GrantForm, RefundForm, new_key
from .models import Merchant, Municipality, Program
from .reports import JST
from .retention import window as refund_window
from .validation import utc_now

bp = Blueprint("points_pages", __name__, url_prefix="/points")

CSV_TEMPLATE = "mykey_id,program\r\n"


def _me() -> StaffUser:
    user = current_staff()
    if user is None:  # pragma: no cover (staff_required ran first)
        abort(403)
    return user


def _message(exc: PointsError) -> str:
    """The error in the page's language."""
    return str(words(exc.code.value).title)


def _municipality() -> Municipality:
    """The signed-in officer's municipality (their scope; a missing one is a 403)."""
    muni = db.session().get(Municipality, _me().municipality_id or 0)
    if muni is None:
        abort(403)
    return muni


def _merchant() -> Merchant:
    """The signed-in merchant staff's merchant."""
    merchant = db.session().get(Merchant, _me().merchant_id or 0)
    if merchant is None:
        abort(403)
    return merchant


@bp.get("/municipality")
@staff_required(Role.POINTS_OFFICER)
def municipality() -> ResponseReturnValue:
    """Outstanding points, budget used per program, partner conversions."""
    muni = _municipality()
    summary = reports.municipality_summary(db.session(), muni.id)
    return render_template(
        "points/municipality.html", muni=muni, summary=summary, names=_program_names(muni.id)
    )


def _program_names(municipality_id: int) -> dict[str, Program]:
    programs_ = db.session().scalars(
        select(Program).where(Program.municipality_id == municipality_id).order_by(Program.code)
    )
    return {p.code: p for p in programs_}


def _grant_page(
    muni: Municipality,
    *,
    form: GrantForm | None = None,
    csv_form: CsvForm | None = None,
    status: int = 200,
    **context: object,
) -> ResponseReturnValue:
    names = _program_names(muni.id)
    summary = reports.municipality_summary(db.session(), muni.id)
    grant_form = form or GrantForm(formdata=None)
    grant_form.program_id.choices = options(
        (p.id, f"{p.code} {p.name}") for p in names.values() if p.category != "partner_bonus"
    )
    grant_form.key.data = new_key()  # every page shows a fresh key: a new grant
    return (
        render_template(
            "points/grants.html",
            muni=muni,
            form=grant_form,
            csv_form=csv_form or CsvForm(formdata=None),
            programs=[(names[c], funded, used, left) for c, funded, used, left in summary.programs],
            **context,
        ),
        status,
    )


@bp.get("/grants")
@staff_required(Role.POINTS_OFFICER)
def grants() -> ResponseReturnValue:
    """Grant one, upload a CSV file, and the programs with their budget left."""
    return _grant_page(_municipality())


@bp.post("/grants")
@staff_required(Role.POINTS_OFFICER)
def grant_one() -> ResponseReturnValue:
    """Grant a program's points to one MyKey ID; the form's key makes a resubmit a replay."""
    muni = _municipality()
    form = GrantForm()
    form.program_id.choices = options((p.id, p.code) for p in _program_names(muni.id).values())
    if not form.validate_on_submit():
        return _grant_page(
            muni, form=form, status=400, error=_message(InvalidInput(Code.INVALID_INPUT))
        )
    # The reads above are done. Ending their transaction lets the grant be a transaction
    # of its own: on PostgreSQL one statement, one round trip (webapp.points.grant_pg).
    db.session().commit()
    try:
        result = programs.grant(
            db.session(),
            form.program_id.data or 0,
            (form.mykey_id.data or "").strip().upper(),
            key=f"page:{muni.id}:{form.key.data}",
            directory=current_app.extensions["points_directory"],
            municipality_id=muni.id,
        )
    except PointsError as exc:
        return _grant_page(muni, form=form, status=exc.status, error=_message(exc))
    return _grant_page(muni, granted=result)


@bp.post("/grants/csv")
@staff_required(Role.POINTS_OFFICER)
@allow_body(UPLOAD_CONTENT_LENGTH)  # a grant file of up to grant_csv.MAX_BYTES
def grant_upload() -> ResponseReturnValue:
    """Apply a grant file: every row or none; a rejected file lists each bad line."""
    muni = _municipality()
    form = CsvForm()
    if not form.validate_on_submit():
        return _grant_page(
            muni, csv_form=form, status=400, csv_error=_message(InvalidInput(Code.INVALID_CSV))
        )
    data = form.file.data.read(grant_csv.MAX_BYTES + 1)
    try:
        result = grant_csv.grant_file(
            db.session(), muni.id, data, directory=current_app.extensions["points_directory"]
        )
    except CsvRejected as exc:
        rows = [(e.line, _message(e), e.detail) for e in exc.errors]
        return _grant_page(muni, status=400, csv_error=_message(exc), csv_rows=rows)
    except PointsError as exc:
        return _grant_page(muni, status=exc.status, csv_error=_message(exc))
    return _grant_page(muni, csv_result=result)


@bp.get("/grants/template.csv")
@staff_required(Role.POINTS_OFFICER)
def grant_template() -> ResponseReturnValue:
    """The header line of a grant file, to fill in with a spreadsheet."""
    return Response(
        "\ufeff" + CSV_TEMPLATE,
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=grants-template.csv"},
    )


def _period() -> tuple[date, date, datetime | None]:
    """start, end and cut-off from the query; default: this month (JST) so far."""
    today = utc_now().astimezone(JST).date()
    try:
        start = date.fromisoformat(request.args.get("start") or today.replace(day=1).isoformat())
        end = date.fromisoformat(request.args.get("end") or (today + timedelta(days=1)).isoformat())
        cut = request.args.get("cutoff")
        cutoff = datetime.fromisoformat(cut) if cut else None
    except ValueError:
        raise InvalidInput(Code.INVALID_INPUT, "dates: YYYY-MM-DD") from None
    if cutoff is not None and cutoff.tzinfo is None:
        raise InvalidInput(Code.INVALID_INPUT, "cutoff: with a time zone")
    return start, end, cutoff


@bp.get("/merchant/settlement")
@staff_required(Role.MERCHANT_STAFF)
def settlement() -> ResponseReturnValue:
    """Totals per day for a period, with the cut-off that makes them reproducible."""
    merchant = _merchant()
    try:
        start, end, cutoff = _period()
        report = reports.settlement(db.session(), merchant.id, start, end, cutoff=cutoff)
    except InvalidInput:
        message = _("Choose a start date before the end date, at most 366 days apart.")
        return render_template(
            "points/settlement.html", merchant=merchant, report=None, error=message
        ), 400
    except PointsError as exc:
        return render_template(
            "points/settlement.html", merchant=merchant, report=None, error=_message(exc)
        ), exc.status
    return render_template("points/settlement.html", merchant=merchant, report=report, jst=JST)


@bp.get("/merchant/settlement.csv")
@staff_required(Role.MERCHANT_STAFF)
def settlement_csv() -> ResponseReturnValue:
    """The settlement as CSV, exactly as the service writes it."""
    merchant = _merchant()
    try:
        start, end, cutoff = _period()
        report = reports.settlement(db.session(), merchant.id, start, end, cutoff=cutoff)
    except PointsError as exc:
        abort(exc.status, _message(exc))
    name = f"settlement-{merchant.code}-{start.isoformat()}-{end.isoformat()}.csv"
    return Response(
        reports.settlement_csv(report),
        mimetype="text/csv",
        headers={"Content-Disposition": f"attachment; filename={name}"},
    )


def _refund_page(
    merchant: Merchant, *, status: int = 200, **context: object
) -> ResponseReturnValue:
    payments = spend.refundable_payments(db.session(), merchant.id)
    window = db.session().get(Municipality, merchant.municipality_id)
    return (
        render_template(
            "points/refunds.html",
            merchant=merchant,
            payments=payments,
            window_days=refund_window.days_for(window) if window else 0,
            jst=JST,
            new_key=new_key,
            **context,
        ),
        status,
    )


@bp.get("/merchant/refunds")
@staff_required(Role.MERCHANT_STAFF)
def refunds() -> ResponseReturnValue:
    """Payments still inside the refund window, each with what is left to refund."""
    return _refund_page(_merchant())


@bp.post("/merchant/refunds")
@staff_required(Role.MERCHANT_STAFF)
def refund() -> ResponseReturnValue:
    """Refund a payment, as a reversal capped at what was spent."""
    merchant = _merchant()
    form = RefundForm()
    if not form.validate_on_submit():
        return _refund_page(merchant, status=400, error=_message(InvalidInput(Code.INVALID_AMOUNT)))
    try:
        result = spend.refund(
            db.session(),
            merchant.id,
            form.spend_id.data or 0,
            form.points.data,
            key=form.key.data or "",
        )
    except PointsError as exc:
        return _refund_page(merchant, status=exc.status, error=_message(exc))
    return _refund_page(merchant, refunded=result)
