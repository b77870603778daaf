"""The officer's online shop settings on the merchant page (/points/merchants/<id>/shop):
routes on the points_admin blueprint (webapp.points.officer.views), thin like the others.
A signing secret or an API key is shown on the answer that made it, never again."""

from __future__ import annotations

from flask import abort, current_app, redirect, url_for
from flask.typing import ResponseReturnValue

from ... import db
from ...staff.auth import staff_required
from ...staff.models import Role
from ..checkout import webhooks
from . import shops as shop_services
from .forms import ActionForm, RevokeKeyForm, ShopForm
from .views import _merchant_page, _own_merchant_or_404, _who, bp, submit


@bp.post("/merchants/<int:merchant_id>/shop")
@staff_required(Role.POINTS_OFFICER)
def shop_settings(merchant_id: int) -> ResponseReturnValue:
    """Save the shop's origins and webhook URL (the first time: its signing secret too)."""
    who = _who()
    found = _own_merchant_or_404(who, merchant_id)
    form = ShopForm()

    def again(status: int, error: str) -> ResponseReturnValue:
        return _merchant_page(who, found, shop_form=form, status=status, error=error)

    def act() -> ResponseReturnValue:
        _, secret = shop_services.save_settings(
            db.session(),
            who,
            merchant_id,
            origins_text=form.origins.data or "",
            webhook_url=form.webhook_url.data or "",
            allow_loopback=bool(current_app.config["CHECKOUT_ALLOW_LOOPBACK"]),
        )
        if secret:
            return _merchant_page(who, found, new_secret=secret)
        return redirect(url_for(".merchant", merchant_id=merchant_id, done="saved"))

    return submit(form, again, act)


@bp.post("/merchants/<int:merchant_id>/shop/secret")
@staff_required(Role.POINTS_OFFICER)
def shop_secret(merchant_id: int) -> ResponseReturnValue:
    """A new signing secret, shown on this answer only."""
    who = _who()
    found = _own_merchant_or_404(who, merchant_id)

    def again(status: int, error: str) -> ResponseReturnValue:
        return _merchant_page(who, found, status=status, error=error)

    def act() -> ResponseReturnValue:
        secret = shop_services.renew_secret(db.session(), who, merchant_id)
        return _merchant_page(who, found, new_secret=secret)

    return submit(ActionForm(), again, act)


@bp.post("/merchants/<int:merchant_id>/shop/keys")
@staff_required(Role.POINTS_OFFICER)
def shop_key_issue(merchant_id: int) -> ResponseReturnValue:
    """Issue a shop API key: shown on this answer only, never again."""
    who = _who()
    found = _own_merchant_or_404(who, merchant_id)

    def again(status: int, error: str) -> ResponseReturnValue:
        return _merchant_page(who, found, status=status, error=error)

    def act() -> ResponseReturnValue:
        key = shop_services.issue_key(db.session(), who, merchant_id)
        return _merchant_page(who, found, new_api_key=key)

    return submit(ActionForm(), again, act)


@bp.post("/merchants/<int:merchant_id>/shop/keys/revoke")
@staff_required(Role.POINTS_OFFICER)
def shop_key_revoke(merchant_id: int) -> ResponseReturnValue:
    """Revoke one of the shop's API keys."""
    who = _who()
    found = _own_merchant_or_404(who, merchant_id)
    form = RevokeKeyForm()

    def again(status: int, error: str) -> ResponseReturnValue:
        return _merchant_page(who, found, status=status, error=error)

    def act() -> ResponseReturnValue:
        shop_services.revoke_key(db.session(), who, merchant_id, form.key_id.data or "")
        return redirect(url_for(".merchant", merchant_id=merchant_id, done="revoked"))

    return submit(form, again, act)


@bp.post("/merchants/<int:merchant_id>/shop/webhooks/<int:delivery_id>/retry")
@staff_required(Role.POINTS_OFFICER)
def shop_webhook_retry(merchant_id: int, delivery_id: int) -> ResponseReturnValue:
    """Send a failed webhook again (a fresh round of tries, from now)."""
    who = _who()
    found = _own_merchant_or_404(who, merchant_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    s = db.session()
    row = s.get(webhooks.WebhookDelivery, delivery_id)
    if row is not None and row.merchant_id == found.id:
        who.log(
            s, "shop.webhook_retry", f"{found.code} {found.name}", {"event": [None, row.event_id]}
        )
    if not webhooks.retry_now(s, found.id, delivery_id):
        s.rollback()
        abort(404)
    return redirect(url_for(".merchant", merchant_id=merchant_id, done="retry"))
