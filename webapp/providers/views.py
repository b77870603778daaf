"""Admin pages for providers (/admin/providers): list, create, edit settings and terms."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import and_, select
from wtforms import BooleanField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, NumberRange

from .. import db
from ..inputs import NAME_LENGTH, TERMS_LENGTH
from ..inputs.web import PlainText
from ..paging import QUERY_LENGTH, contains, page_arg, query_arg
from ..places.kana import search_key
from ..staff.auth import current_staff, staff_required
from ..staff.forms import options
from ..staff.models import Role
from ..tenancy import audit
from ..tenancy.scope import current_scope
from . import services
from .models import Provider, ProviderKind
from .numbers import MAX_NUMBER_LENGTH, CheckRule

bp = Blueprint("providers_admin", __name__, url_prefix="/admin/providers")

KIND_LABELS = {
    ProviderKind.LIBRARY: _l("Public library"),
    ProviderKind.UNIVERSITY_LIBRARY: _l("University library"),
    ProviderKind.MUSEUM: _l("Museum"),
    ProviderKind.SPORTS: _l("Sports facility"),
    ProviderKind.BIKE_PARK: _l("Bicycle parking"),
    ProviderKind.LECTURE: _l("Lecture course"),
    ProviderKind.COMMUNITY_PLAZA: _l("Civic plaza"),
    ProviderKind.SHOPPING_STREET: _l("Shopping street"),
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
NAME = PlainText(NAME_LENGTH)
# The terms of use, in each language (webapp/inputs/rules.py says why 20,000).
TERMS = PlainText(TERMS_LENGTH, multiline=True)
START_STOP = [(c, c) for c in "ABCD"]


class ProviderSettingsForm(FlaskForm):
    """Names, customer number rule and counter settings."""

    kind = SelectField(_l("Kind"), choices=options(KIND_LABELS.items()))
    name_ja = StringField(_l("Name (Japanese)"), validators=[DataRequired(), NAME])
    name_kana = StringField(_l("Reading of the name (kana)"), validators=[PlainText(200)])
    name_en = StringField(_l("Name (English)"), validators=[NAME])
    municipality_code = StringField(
        _l("Local government code (6 digits)"), validators=[PlainText(12)]
    )
    municipality_name = StringField(_l("Municipality"), validators=[PlainText(100)])
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
        self.kind.data, self.name_kana.data = provider.kind, provider.name_kana
        self.municipality_code.data = provider.municipality_code
        self.municipality_name.data = provider.municipality_name
        for name in self.RULE_FIELDS:
            if name in provider.number_rule:
                self[name].data = provider.number_rule[name]
        for name in self.COUNTER_FIELDS:
            if name in provider.counter_settings:
                self[name].data = provider.counter_settings[name]


class ProviderCreateForm(ProviderSettingsForm):
    """A new provider: its code and first terms too."""

    code = StringField(
        _l("Code (ISIL for libraries, e.g. JP-1000001)"),
        validators=[DataRequired(), PlainText(32)],
    )
    terms_ja = TextAreaField(_l("Terms of use (Japanese)"), validators=[TERMS])
    terms_en = TextAreaField(_l("Terms of use (English)"), validators=[TERMS])


class TermsForm(FlaskForm):
    """The terms of use; saving a change makes citizens accept again."""

    terms_ja = TextAreaField(_l("Terms of use (Japanese)"), validators=[DataRequired(), TERMS])
    terms_en = TextAreaField(_l("Terms of use (English)"), validators=[TERMS])


def _field_error(form: FlaskForm, exc: services.ProviderError) -> str:
    """The refusal's message (in the page's language), also shown at its field."""
    message = exc.message(str(get_locale()))
    if exc.field in form:
        form[exc.field].errors = [*form[exc.field].errors, message]
    return message


def _provider_or_404(provider_id: int) -> Provider:
    """The provider, if the signed-in admin may manage it (else 404: out of sight)."""
    return current_scope().provider(db.session(), provider_id)


ADMINS = (Role.PLATFORM_ADMIN, Role.MUNICIPAL_ADMIN, Role.PROVIDER_ADMIN)


@bp.get("/")
@staff_required(*ADMINS)
def index() -> ResponseReturnValue:
    """Providers the admin may manage."""
    scope = current_scope()
    q = query_arg()
    within = scope.providers()
    town = query_arg("municipality")  # one municipality's (the municipalities page links it)
    if town:
        within = and_(within, Provider.municipality_code == town[:6])
    listing = services.page_providers(db.session(), within, q, page_arg())
    return render_template(
        "admin/providers.html",
        listing=listing,
        q=q,
        town=town[:6],
        kind_labels=KIND_LABELS,
        scope=scope,
    )


OPTIONS_SHOWN = 20  # a typeahead's suggestions: a few, never the country


@bp.get("/options")
@staff_required(*ADMINS)
def options_json() -> ResponseReturnValue:
    """Suggestions for a provider-code field (the new-account form): up to
    OPTIONS_SHOWN providers within the admin's scope whose name, reading or code
    contains `?q=` (as the providers list searches), by code."""
    scope = current_scope()
    key = search_key(query_arg())[:QUERY_LENGTH]
    rows: list[Provider] = []
    if key:
        rows = list(
            db.session().scalars(
                select(Provider)
                .where(scope.providers(), Provider.search_text.like(contains(key), escape="\\"))
                .order_by(Provider.code)
                .limit(OPTIONS_SHOWN)
            )
        )
    return jsonify(providers=[{"code": p.code, "name": p.name_ja} for p in rows])


@bp.route("/new", methods=["GET", "POST"])
@staff_required(Role.PLATFORM_ADMIN, Role.MUNICIPAL_ADMIN)
def create() -> ResponseReturnValue:
    """Create a provider (platform admins anywhere; a municipal admin in its own
    municipality, whatever the form says)."""
    scope = current_scope()
    form = ProviderCreateForm()
    fixed_place = None
    if scope.municipal:
        from ..points.models import Municipality

        muni = db.session().get(Municipality, scope.municipality_id)
        assert muni is not None  # noqa: S101  (scope_of checked it)
        fixed_place = (muni.code, muni.name)
        form.municipality_code.data, form.municipality_name.data = fixed_place
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
                municipality_code=form.municipality_code.data or "",
                municipality_name=form.municipality_name.data or "",
                name_kana=form.name_kana.data or "",
            )
        except services.ProviderError as exc:
            error = _field_error(form, exc)
        else:
            me = current_staff()
            s = db.session()
            audit.record(
                s,
                audit.municipality_id_of(s, provider.municipality_code),
                me.login if me else "?",
                "provider.create",
                f"{provider.code} {provider.name_ja}",
                {"kind": provider.kind, "municipality_code": provider.municipality_code},
            )
            s.commit()
            return redirect(url_for(".edit", provider_id=provider.id, saved=1))
    return render_template(
        "admin/provider_form.html", form=form, provider=None, error=error, fixed_place=fixed_place
    )


@bp.route("/<int:provider_id>", methods=["GET", "POST"])
@staff_required(*ADMINS)
def edit(provider_id: int) -> ResponseReturnValue:
    """Edit a provider's names, number rule and counter settings."""
    provider = _provider_or_404(provider_id)
    me = current_staff()
    # Where a provider is and what it is decide whose tenant it is: the platform's call.
    placed_by_me = me is not None and me.role == Role.PLATFORM_ADMIN
    form = ProviderSettingsForm()
    if not placed_by_me and form.is_submitted():
        form.kind.data = provider.kind
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
                kind=form.kind.data if placed_by_me else None,
                place=(
                    (form.municipality_code.data or "", form.municipality_name.data or "")
                    if placed_by_me
                    else None
                ),
                name_kana=form.name_kana.data or "",
            )
        except services.ProviderError as exc:
            db.session().rollback()
            error = _field_error(form, exc)
        else:
            return redirect(url_for(".edit", provider_id=provider.id, saved=1))
    elif not form.is_submitted():
        form.fill(provider)
    from ..sip2.services import has_sip2

    return render_template(
        "admin/provider_form.html",
        form=form,
        provider=provider,
        error=error,
        kind_labels=KIND_LABELS,
        placed_by_me=placed_by_me,
        sip2_connected=has_sip2(db.session(), provider.id),
    )


@bp.route("/<int:provider_id>/terms", methods=["GET", "POST"])
@staff_required(*ADMINS)
def terms(provider_id: int) -> ResponseReturnValue:
    """Edit the terms of use; a change bumps the version."""
    provider = _provider_or_404(provider_id)
    form = TermsForm()
    if form.validate_on_submit():
        changed = services.update_terms(
            db.session(), provider, form.terms_ja.data or "", form.terms_en.data or ""
        )
        return redirect(url_for(".terms", provider_id=provider.id, saved=int(changed)))
    if not form.is_submitted():
        form.terms_ja.data, form.terms_en.data = provider.terms_ja, provider.terms_en
    return render_template("admin/terms.html", form=form, provider=provider)
