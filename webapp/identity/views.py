"""Renewed cards to check (/admin/identity/conflicts), for platform admins.

A linkage import (or a two-card step) never merges two MyKey IDs that both hold links or
points: the pair is left for staff (identity.renewal.RebindConflict). This page shows
each pair with what each ID holds (counts only: no number, no name), so staff can help
the citizen choose (unlink on one, or leave both), and mark the pair as dealt with.
"""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select

from .. import db
from ..staff.auth import staff_required
from ..staff.models import Role
from .models import CardBinding, RebindConflict, ServiceLink

bp = Blueprint("identity_admin", __name__, url_prefix="/admin/identity")
PAGE = 100


def _holdings(mykey_ids: set[str]) -> dict[str, dict[str, int]]:
    """Links, cards and points accounts that have seen a transfer, per MyKey ID."""
    from ..points.models import Account, AccountKind

    s = db.session()
    held = {m: {"links": 0, "cards": 0, "points": 0} for m in mykey_ids}
    if not mykey_ids:
        return held
    for column, model, key in (
        (ServiceLink.mykey_id, ServiceLink, "links"),
        (CardBinding.mykey_id, CardBinding, "cards"),
    ):
        rows = s.execute(
            select(column, func.count())
            .select_from(model)
            .where(column.in_(mykey_ids))
            .group_by(column)
        )
        for mykey_id, n in rows:
            held[mykey_id][key] = n
    balances = s.execute(
        select(Account.owner, func.sum(Account.balance))
        .where(Account.owner.in_(mykey_ids), Account.kind == AccountKind.CITIZEN.value)
        .group_by(Account.owner)
    )
    for mykey_id, total in balances:
        held[mykey_id]["points"] = int(total or 0)
    return held


@bp.get("/conflicts")
@staff_required(Role.PLATFORM_ADMIN)
def conflicts() -> ResponseReturnValue:
    """The pairs of MyKey IDs a renewal could not bring together."""
    s = db.session()
    rows = list(s.scalars(select(RebindConflict).order_by(RebindConflict.id).limit(PAGE)))
    total = s.scalar(select(func.count()).select_from(RebindConflict)) or 0
    held = _holdings({r.old_mykey_id for r in rows} | {r.new_mykey_id for r in rows})
    s.rollback()
    return render_template(
        "admin/rebind_conflicts.html", rows=rows, held=held, total=total, shown=len(rows)
    )


@bp.post("/conflicts/<int:conflict_id>/done")
@staff_required(Role.PLATFORM_ADMIN)
def conflict_done(conflict_id: int) -> ResponseReturnValue:
    """The pair is dealt with: it leaves the list (nothing else changes)."""
    s = db.session()
    row = s.get(RebindConflict, conflict_id)
    if row is None:
        abort(404)
    s.delete(row)
    s.commit()
    return redirect(url_for("identity_admin.conflicts"))
