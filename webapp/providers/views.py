"""Admin pages for providers (/admin/providers): list, create, edit settings and terms."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange

from .. import db
from ..staff.auth import current_staff, staff_required
from ..staff.forms import options
from ..staff.models import Role
from . import services
from .models import Provider, ProviderKind
from .numbers import MAX_NUMBER_LENGTH, CheckRule

bp = Blueprint("providers_admin", __name__, url_prefix="/admin/providers")

KIND_LABELS = {
    ProviderKind.LIBRARY: _l("Library"),
    ProviderKind.MUSEUM: _l("Museum"),
    ProviderKind.SPORTS: _l("Sports facility"),
    ProviderKind.BIKE_PARK: _l("Bicycle parking"),
    ProviderKind.LECTURE: _l("Lecture"),
    ProviderKind.COMMUNITY_PLAZA: _l("Community plaza"),
    ProviderKind.TRANSPORT: _l("Transport"),
    ProviderKind.OTHER: _l("Other"),
}
CHECK_LABELS = [
    (CheckRule.NONE.value, _l("None")),
    (CheckRule.MOD16.value, _l("Modulus 16 (NW-7, with start/stop)")),
    (CheckRule.DR7.value, "7DR"),
    (CheckRule.DSR7.value, "7DSR"),
    (CheckRule.DR9.value, "9DR"),
    (CheckRule.DSR9.value, "9DSR"),
    (CheckRule.MOD10_W21_SPLIT.value, _l("Modulus 10, weights 2-1, digits added (Luhn)")),
    (CheckRule.MOD10_W21_WHOLE.value, _l("Modulus 10, weights 2-1, products added")),
    (CheckRule.MOD10_W31.value, _l("Modulus 10, weights 3-1")),
    (CheckRule.MOD11_W27.value, _l("Modulus 11, weights 2-7")),
]
VARIANT_LABELS = [
    ("", _l("Default")),
    ("zero", _l("DSR: remainder 0 gives 0")),
    ("raw", _l("DSR: remainder 0 gives 7 or 9")),
    ("a", _l("Mod 11 (a): 0 or 1 gives 0")),
    ("b", _l("Mod 11 (b): (11 - r) mod 10")),
    ("c", _l("Mod 11 (c): 10 gives X, 11 gives 0")),
]
START_STOP = [(c, c) for c in "ABCD"]


class ProviderSettingsForm(FlaskForm):
    """Names, customer number rule and counter settings."""

    name_ja = StringField(_l("Name (Japanese)"), validators=[DataRequired(), Length(max=200)])
    name_en = StringField(_l("Name (English)"), validators=[Length(max=200)])
    min_length = IntegerField(
        _l("Minimum length"), default=1, validators=[NumberRange(1, MAX_NUMBER_LENGTH)]
    )
    max_length = IntegerField(
        _l("Maximum length"), default=20, validators=[NumberRange(1, MAX_NUMBER_LENGTH)]
    )
    charset = SelectField(
        _l("Characters"),
        choices=options([("digits", _l("Digits")), ("nw7", _l("NW-7 data set"))]),
    )
    check = SelectField(_l("Check character"), choices=options(CHECK_LABELS))
    check_variant = SelectField(_l("Check variant"), choices=options(VARIANT_LABELS))
    start = SelectField(_l("Start character"), choices=options(START_STOP))
    stop = SelectField(_l("Stop character"), choices=options(START_STOP))
    mode = SelectField(
        _l("Counter display"),
        choices=options(
            [
                ("A", _l("A: large digits to type")),
                ("B", _l("B: barcode to scan")),
                ("C", _l("C: typed by the bridge (keyboard)")),
            ]
        ),
    )
    pin_required = BooleanField(_l("Ask for the card PIN at the counter"))
    symbology = SelectField(
        _l("Barcode type"),
        choices=options(
            [("nw7", "NW-7 (Codabar)"), ("code39", "Code 39"), ("code128", "Code 128")]
        ),
    )
    nw7_start = SelectField(_l("NW-7 start character"), choices=options(START_STOP))
    nw7_stop = SelectField(_l("NW-7 stop character"), choices=options(START_STOP))
    barcode_check = SelectField(_l("Barcode check character"), choices=options(CHECK_LABELS))
    barcode_check_variant = SelectField(
        _l("Barcode check variant"), choices=options(VARIANT_LABELS)
    )
    code39_check = BooleanField(_l("Code 39 modulus 43 check"))
    keyboard_suffix = SelectField(
        _l("Key after the number"),
        choices=options([("enter", "Enter"), ("tab", "Tab"), ("none", _l("None"))]),
    )

    RULE_FIELDS = ("min_length", "max_length", "charset", "check", "check_variant", "start", "stop")
    COUNTER_FIELDS = (
        "mode",
        "pin_required",
        "symbology",
        "nw7_start",
        "nw7_stop",
        "barcode_check",
        "barcode_check_variant",
        "code39_check",
        "keyboard_suffix",
    )

    def rule(self) -> dict[str, Any]:
        """The number rule as submitted."""
        return {name: self[name].data for name in self.RULE_FIELDS}

    def counter(self) -> dict[str, Any]:
        """The counter settings as submitted."""
        return {name: self[name].data for name in self.COUNTER_FIELDS}

    def fill(self, provider: Provider) -> None:
        """Show a provider's current settings."""
        self.name_ja.data, self.name_en.data = provider.name_ja, provider.name_en
        for name in self.RULE_FIELDS:
            if name in provider.number_rule:
                self[name].data = provider.number_rule[name]
        for name in self.COUNTER_FIELDS:
            if name in provider.counter_settings:
                self[name].data = provider.counter_settings[name]


class ProviderCreateForm(ProviderSettingsForm):
    """A new provider: kind, code and first terms too."""

    kind = SelectField(_l("Kind"), choices=options(KIND_LABELS.items()))
    code = StringField(
        _l("Code (ISIL for libraries, e.g. JP-1000001)"),
        validators=[DataRequired(), Length(max=32)],
    )
    terms_ja = TextAreaField(_l("Terms of use (Japanese)"))
    terms_en = TextAreaField(_l("Terms of use (English)"))


class TermsForm(FlaskForm):
    """The terms of use; saving a change makes citizens accept again."""

    terms_ja = TextAreaField(_l("Terms of use (Japanese)"), validators=[DataRequired()])
    terms_en = TextAreaField(_l("Terms of use (English)"))


def _provider_or_403(provider_id: int) -> Provider:
    """The provider, if the signed-in admin may manage it."""
    me = current_staff()
    provider = services.get_provider(db.session(), provider_id)
    if provider is None:
        abort(404)
    if me is None or (me.role != Role.PLATFORM_ADMIN and me.provider_id != provider.id):
        abort(403)
    return provider


@bp.get("/")
@staff_required(Role.PLATFORM_ADMIN, Role.PROVIDER_ADMIN)
def index() -> ResponseReturnValue:
    """Providers the admin may manage."""
    me = current_staff()
    assert me is not None  # noqa: S101  (staff_required)
    only = None if me.role == Role.PLATFORM_ADMIN else me.provider_id
    return render_template(
        "admin/providers.html",
        providers=services.list_providers(db.session(), only),
        kind_labels=KIND_LABELS,
    )


@bp.route("/new", methods=["GET", "POST"])
@staff_required(Role.PLATFORM_ADMIN)
def create() -> ResponseReturnValue:
    """Create a provider (platform admins only)."""
    form = ProviderCreateForm()
    error = None
    if form.validate_on_submit():
        try:
            provider = services.create_provider(
                db.session(),
                code=form.code.data or "",
                kind=form.kind.data or "",
                name_ja=form.name_ja.data or "",
                name_en=form.name_en.data or "",
                terms_ja=form.terms_ja.data or "",
                terms_en=form.terms_en.data or "",
                number_rule_settings=form.rule(),
                counter_settings=form.counter(),
            )
        except services.ProviderError as exc:
            error = exc.message(str(get_locale()))
        else:
            return redirect(url_for(".edit", provider_id=provider.id, saved=1))
    return render_template("admin/provider_form.html", form=form, provider=None, error=error)


@bp.route("/<int:provider_id>", methods=["GET", "POST"])
@staff_required(Role.PLATFORM_ADMIN, Role.PROVIDER_ADMIN)
def edit(provider_id: int) -> ResponseReturnValue:
    """Edit a provider's names, number rule and counter settings."""
    provider = _provider_or_403(provider_id)
    form = ProviderSettingsForm()
    error = None
    if form.validate_on_submit():
        try:
            services.update_provider(
                db.session(),
                provider,
                name_ja=form.name_ja.data,
                name_en=form.name_en.data,
                number_rule_settings=form.rule(),
                counter_settings=form.counter(),
            )
        except services.ProviderError as exc:
            error = exc.message(str(get_locale()))
        else:
            return redirect(url_for(".edit", provider_id=provider.id, saved=1))
    elif not form.is_submitted():
        form.fill(provider)
    return render_template(
        "admin/provider_form.html",
        form=form,
        provider=provider,
        error=error,
        kind_labels=KIND_LABELS,
    )


@bp.route("/<int:provider_id>/terms", methods=["GET", "POST"])
@staff_required(Role.PLATFORM_ADMIN, Role.PROVIDER_ADMIN)
def terms(provider_id: int) -> ResponseReturnValue:
    """Edit the terms of use; a change bumps the version."""
    provider = _provider_or_403(provider_id)
    form = TermsForm()
    if form.validate_on_submit():
        changed = services.update_terms(
            db.session(), provider, form.terms_ja.data or "", form.terms_en.data or ""
        )
        return redirect(url_for(".terms", provider_id=provider.id, saved=int(changed)))
    if not form.is_submitted():
        form.terms_ja.data, form.terms_en.data = provider.terms_ja, provider.terms_en
    return render_template("admin/terms.html", form=form, provider=provider)
