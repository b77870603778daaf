"""The provider admin's page for the library's SIP2: /admin/providers/<id>/sip2.

The passwords are typed into fields that are never posted: the page seals each one to
the chosen connector bridge's key (static/js/sip2_settings.js, seal.js) for that
bridge and the library system's address, and posts only the envelopes. *Test
connection* sends the settings to the connector bridge, which logs in (93) and asks the
system's status (99): what the system says (online, its name, the messages it supports)
is shown, nothing about any patron.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    HiddenField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, NumberRange, Optional

from .. import db
from ..catalogue import sip2_words
from ..inputs.web import PlainText
from ..providers.models import Provider, ProviderKind
from ..staff.auth import staff_required
from ..staff.forms import options
from ..staff.models import Role
from ..terminals.models import utcnow
from ..terminals.remote import Sip2Failed
from . import gateway_of, services
from .models import CHARSETS
from .services import MAX_ENVELOPE_TEXT

bp = Blueprint("sip2_admin", __name__, url_prefix="/admin/providers")

CHARSET_LABELS = {
    "utf-8": _l("UTF-8"),
    "shift_jis": _l("Shift_JIS (Windows-31J)"),
    "cp850": _l("Code page 850 (SIP2's default)"),
}


class Sip2Form(FlaskForm):
    """The connection; the passwords arrive sealed (hidden fields filled by the page)."""

    terminal_id = SelectField(_l("Connector (the bridge on the library's network)"), coerce=int)
    host = StringField(_l("Host"), validators=[DataRequired(), PlainText(253)])
    port = IntegerField(_l("Port"), validators=[DataRequired(), NumberRange(1, 65535)])
    tls = BooleanField(_l("TLS (the library system's port speaks TLS)"))
    ca_pem = TextAreaField(
        _l("CA certificate (PEM, if the system's certificate is not from a public CA)"),
        validators=[Optional(), PlainText(16 * 1024, multiline=True)],
    )
    charset = SelectField(_l("Character set"), choices=options(CHARSET_LABELS.items()))
    checksums = BooleanField(_l("Error detection (AY sequence and AZ checksum)"))
    patron_status = BooleanField(_l("The system answers 23 Patron Status"))
    institution_id = StringField(_l("Institution ID (AO)"), validators=[PlainText(64)])
    location_code = StringField(_l("Location code (CP)"), validators=[PlainText(64)])
    login_user = StringField(_l("Login user (CN)"), validators=[DataRequired(), PlainText(64)])
    login_password_sealed = HiddenField(validators=[PlainText(MAX_ENVELOPE_TEXT)])
    terminal_password_sealed = HiddenField(validators=[PlainText(MAX_ENVELOPE_TEXT)])
    sealed_for = HiddenField(validators=[PlainText(64)])
    clear_terminal_password = BooleanField(_l("No terminal password"))


def _library_or_404(provider_id: int) -> Provider:
    """The provider, if within the signed-in admin's scope (else 404: out of sight)."""
    from ..tenancy.scope import current_scope

    return current_scope().provider(db.session(), provider_id)


def _fill(form: Sip2Form, row: Any) -> None:
    form.terminal_id.data = row.terminal_id
    form.host.data, form.port.data, form.tls.data = row.host, row.port, row.tls
    form.ca_pem.data = row.ca_pem or ""
    form.charset.data, form.checksums.data = row.charset, row.checksums
    form.patron_status.data = row.patron_status
    form.institution_id.data, form.location_code.data = row.institution_id, row.location_code
    form.login_user.data = row.login_user


def _page(provider: Provider, form: Sip2Form, **extra: Any) -> ResponseReturnValue:
    s = db.session()
    row = services.settings_of(s, provider.id)
    connectors = services.connectors(s, provider.id)
    form.terminal_id.choices = options((c.terminal_id, c.terminal_name) for c in connectors)
    status = extra.pop("status", 200)
    return (
        render_template(
            "admin/sip2.html",
            provider=provider,
            form=form,
            row=row,
            connectors=connectors,
            is_library=provider.kind in ProviderKind.LIBRARIES,
            words=sip2_words,
            **extra,
        ),
        status,
    )


@bp.route("/<int:provider_id>/sip2", methods=["GET", "POST"])
@staff_required(Role.PLATFORM_ADMIN, Role.MUNICIPAL_ADMIN, Role.PROVIDER_ADMIN)
def settings(provider_id: int) -> ResponseReturnValue:
    """The library's SIP2 connection: see it, change it."""
    provider = _library_or_404(provider_id)
    s = db.session()
    form = Sip2Form()
    form.terminal_id.choices = options(
        (c.terminal_id, c.terminal_name) for c in services.connectors(s, provider.id)
    )
    if request.method == "GET":
        row = services.settings_of(s, provider.id)
        if row is not None:
            _fill(form, row)
        else:
            form.port.data, form.patron_status.data = 6001, True
        return _page(provider, form)
    if not form.validate_on_submit():
        return _page(provider, form, status=400)
    try:
        services.save(
            s,
            provider,
            terminal_id=form.terminal_id.data or 0,
            sealed_for=form.sealed_for.data or "",
            host=form.host.data or "",
            port=form.port.data or 0,
            tls=bool(form.tls.data),
            ca_pem=form.ca_pem.data,
            charset=form.charset.data or "utf-8",
            checksums=bool(form.checksums.data),
            patron_status=bool(form.patron_status.data),
            institution_id=form.institution_id.data or "",
            location_code=form.location_code.data or "",
            login_user=form.login_user.data or "",
            login_password=form.login_password_sealed.data or None,
            terminal_password=form.terminal_password_sealed.data or None,
            clear_terminal_password=bool(form.clear_terminal_password.data),
        )
    except services.Sip2SettingsError as exc:
        s.rollback()
        return _page(provider, form, error=sip2_words(exc.code), status=422)
    return redirect(url_for(".settings", provider_id=provider.id, saved=1))


@bp.post("/<int:provider_id>/sip2/test")
@staff_required(Role.PLATFORM_ADMIN, Role.MUNICIPAL_ADMIN, Role.PROVIDER_ADMIN)
def test(provider_id: int) -> ResponseReturnValue:
    """Test connection: the connector logs in (93) and asks the status (99)."""
    provider = _library_or_404(provider_id)
    s = db.session()
    form = Sip2Form(formdata=None)
    row = services.settings_of(s, provider.id)
    if row is None:
        return _page(provider, form, error=sip2_words("sip2_not_set_up"), status=409)
    _fill(form, row)
    try:
        services.current_connector(s, row)
        status = gateway_of(current_app).configure(row)
    except services.Sip2SettingsError as exc:
        return _page(provider, form, error=sip2_words(exc.code), status=409)
    except Sip2Failed as exc:
        row.checked_at, row.check_code = utcnow(), exc.wire_code[:32]
        s.commit()
        return _page(provider, form, error=sip2_words(exc.wire_code), status=502)
    row.checked_at, row.check_code = utcnow(), "ok"
    s.commit()
    return _page(provider, form, tested=status, locale=str(get_locale()))


@bp.post("/<int:provider_id>/sip2/remove")
@staff_required(Role.PLATFORM_ADMIN, Role.MUNICIPAL_ADMIN, Role.PROVIDER_ADMIN)
def remove(provider_id: int) -> ResponseReturnValue:
    """Stop using the library system: links are verified by staff at the counter again."""
    provider = _library_or_404(provider_id)  # CSRF: the app's CSRFProtect
    services.remove(db.session(), provider.id)
    return redirect(url_for(".settings", provider_id=provider.id, removed=1))


__all__ = ["CHARSETS", "bp"]
