"""The officer's causes and crowdfunding projects (/points/causes): routes on the
points_admin blueprint (webapp.points.officer.views), thin like the others."""

from __future__ import annotations

from flask import abort, redirect, render_template, url_for
from flask.typing import ResponseReturnValue

from ... import db
from ...staff.auth import staff_required
from ...staff.models import Role
from ..causes import raised
from ..errors import PointsError
from ..models import Cause, CauseKind, MissPolicy, Municipality
from . import Officer
from . import causes as cause_services
from .forms import (
    CAUSE_KINDS,
    CAUSE_STATUSES,
    CODE_HINT,
    MISS_POLICIES,
    CauseEditForm,
    CauseForm,
    day_of_end,
    end_instant,
)
from .views import _done, _who, bp, submit


def _causes_page(
    who: Officer, form: CauseForm | None = None, status: int = 200, error: str = ""
) -> ResponseReturnValue:
    s = db.session()
    rows = cause_services.causes_of(s, who)
    if form is None:
        form = CauseForm(formdata=None)
        form.fresh_days.data = 30
    return render_template(
        "points/admin/causes.html",
        muni=s.get(Municipality, who.municipality_id),
        form=form,
        causes=[(c, raised(c, s)) for c in rows],
        kinds=CAUSE_KINDS,
        statuses=CAUSE_STATUSES,
        day_of_end=day_of_end,
        code_hint=CODE_HINT,
        error=error,
        done=_done(),
    ), status


@bp.get("/causes")
@staff_required(Role.POINTS_OFFICER)
def causes() -> ResponseReturnValue:
    """Causes and projects with what they raised, and the form for a new one."""
    return _causes_page(_who())


@bp.post("/causes")
@staff_required(Role.POINTS_OFFICER)
def cause_create() -> ResponseReturnValue:
    """Create a cause or a crowdfunding project."""
    who = _who()
    form = CauseForm()

    def again(status: int, error: str) -> ResponseReturnValue:
        return _causes_page(who, form, status, error)

    def act() -> ResponseReturnValue:
        project = form.kind.data == CauseKind.PROJECT.value
        cause = cause_services.add_cause(
            db.session(),
            who,
            code=form.code.data or "",
            name=form.name.data or "",
            description=form.description.data or "",
            kind=CauseKind(form.kind.data),
            goal_points=form.goal_points.data if project else None,
            ends_at=end_instant(form.ends_on.data) if project else None,
            miss_policy=MissPolicy(form.miss_policy.data),
            fresh_days=form.fresh_days.data or 0,
        )
        return redirect(url_for(".cause", cause_id=cause.id, done="created"))

    return submit(form, again, act)


def _own_cause_or_404(who: Officer, cause_id: int) -> Cause:
    try:
        return cause_services.own_cause(db.session(), who, cause_id)
    except PointsError as exc:
        abort(exc.status)


def _cause_page(
    cause: Cause, form: CauseEditForm | None = None, status: int = 200, error: str = ""
) -> ResponseReturnValue:
    if form is None:
        form = CauseEditForm(formdata=None, obj=cause)
        form.open.data = cause.status == "open"
    return render_template(
        "points/admin/cause.html",
        cause=cause,
        raised=raised(cause, db.session()),
        form=form,
        kinds=CAUSE_KINDS,
        statuses=CAUSE_STATUSES,
        policies=MISS_POLICIES,
        last_day=day_of_end(cause.ends_at),
        error=error,
        done=_done(),
    ), status


@bp.get("/causes/<int:cause_id>")
@staff_required(Role.POINTS_OFFICER)
def cause(cause_id: int) -> ResponseReturnValue:
    """One cause or project: what it raised, its settings."""
    return _cause_page(_own_cause_or_404(_who(), cause_id))


@bp.post("/causes/<int:cause_id>")
@staff_required(Role.POINTS_OFFICER)
def cause_update(cause_id: int) -> ResponseReturnValue:
    """Change a cause's name, description, open or closed, missed-goal policy."""
    who = _who()
    found = _own_cause_or_404(who, cause_id)
    form = CauseEditForm()

    def again(status: int, error: str) -> ResponseReturnValue:
        return _cause_page(found, form, status, error)

    def act() -> ResponseReturnValue:
        cause_services.update_cause(
            db.session(),
            who,
            cause_id,
            name=form.name.data or "",
            description=form.description.data or "",
            open_=bool(form.open.data),
            miss_policy=MissPolicy(form.miss_policy.data),
            fresh_days=form.fresh_days.data or 0,
        )
        return redirect(url_for(".cause", cause_id=cause_id, done="saved"))

    return submit(form, again, act)
