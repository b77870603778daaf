"""Forms of the officer's set-up pages (CSRF token included by Flask-WTF).

Each field is bounded here so a malformed request gets a message by its field; the
services check again (a script need not use the form).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
    ValidationError,
)

from ...inputs.rules import LOGIN_LENGTH, NAME_LENGTH
from ...inputs.web import PlainText
from ...staff.forms import options
from ...staff.services import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from ..models import (
    MAX_POINTS,
    CauseKind,
    CauseStatus,
    MerchantCategory,
    MissPolicy,
    PartnerKind,
    ProgramCategory,
)
from ..reports import JST
from . import MAX_BP, MAX_DAYS

PROGRAM_KINDS = {
    ProgramCategory.CHILD_REARING.value: _l("Child-rearing support"),
    ProgramCategory.VOLUNTEERING.value: _l("Volunteering"),
    ProgramCategory.LONG_LIFE.value: _l("Long life"),
    ProgramCategory.HEALTH_CHECKUP.value: _l("Health"),
    ProgramCategory.LIFELONG_LEARNING.value: _l("Lifelong learning"),
    ProgramCategory.EVENT.value: _l("Events"),
    ProgramCategory.CARE_SUPPORT.value: _l("Care support"),
    ProgramCategory.MOVING_IN.value: _l("Moving in"),
    ProgramCategory.OTHER.value: _l("Other"),
    ProgramCategory.PARTNER_BONUS.value: _l("Partner bonus (paid on conversions)"),
}
MERCHANT_CATEGORIES = {
    MerchantCategory.MUSEUM.value: _l("Museums and public facilities"),
    MerchantCategory.SHOP.value: _l("Local shops and restaurants"),
    MerchantCategory.TRANSPORT.value: _l("Buses and public transport"),
    MerchantCategory.TOURISM.value: _l("Tourism and antenna shops"),
    MerchantCategory.DONATION.value: _l("Donations (social contribution)"),
    MerchantCategory.CROWDFUNDING.value: _l("Crowdfunding"),
    MerchantCategory.ONLINE_GOODS.value: _l("Local products online"),
}
PARTNER_KINDS = {
    PartnerKind.CREDIT_CARD.value: _l("Credit card"),
    PartnerKind.AIRLINE.value: _l("Airline"),
    PartnerKind.MOBILE.value: _l("Mobile phone"),
    PartnerKind.OTHER.value: _l("Other"),
}

CODE_HINT = _l("Capital letters A-Z, digits, - or _ (up to 32). It cannot be changed later.")
_code = [
    DataRequired(message=_l("Please enter a code.")),
    PlainText(32),
    Regexp(r"^[A-Za-z0-9_-]+$", message=_l("Use only letters A-Z, digits, - or _.")),
]
_name = [
    DataRequired(message=_l("Please enter a name.")),
    PlainText(NAME_LENGTH),
]


_POINTS_RANGE = _l("Enter a whole number from 1 to 1,000,000,000,000.")
_MILLION = _l("Enter a whole number from 1 to 1,000,000.")


def _points(label: object, *, optional: bool = False) -> IntegerField:
    first = Optional() if optional else InputRequired(message=_l("Please enter a number."))
    return IntegerField(
        label,
        validators=[
            first,
            NumberRange(
                min=1,
                max=MAX_POINTS,
                message=_l("Enter a whole number from 1 to 1,000,000,000,000."),
            ),
        ],
    )


def _days(label: object, low: int = 1) -> IntegerField:
    return IntegerField(
        label,
        validators=[
            InputRequired(message=_l("Please enter a number of days.")),
            NumberRange(
                min=low,
                max=MAX_DAYS,
                message=_l(
                    "Enter a number of days from %(low)s to %(high)s.", low=low, high=MAX_DAYS
                ),
            ),
        ],
    )


def start_instant(day: date | None) -> datetime | None:
    """The first instant of `day` in Japan (a program starts at midnight JST)."""
    return None if day is None else datetime.combine(day, time(0), JST).astimezone(UTC)


def end_instant(day: date | None) -> datetime | None:
    """The instant after `day` in Japan (a program's last day is paid in full)."""
    return None if day is None else start_instant(day + timedelta(days=1))


def day_of_start(at: datetime | None) -> date | None:
    """The JST day a start instant stands for."""
    return None if at is None else at.astimezone(JST).date()


def day_of_end(at: datetime | None) -> date | None:
    """The last JST day an end instant pays on."""
    return None if at is None else (at.astimezone(JST) - timedelta(days=1)).date()


class _Dated(FlaskForm):
    starts_on = DateField(_l("First day (optional)"), validators=[Optional()])
    ends_on = DateField(_l("Last day (optional)"), validators=[Optional()])

    def validate_ends_on(self, field: DateField) -> None:
        """The last day is on or after the first day."""
        if field.data and self.starts_on.data and field.data < self.starts_on.data:
            raise ValidationError(_l("The last day must be on or after the first day."))


class ProgramEditForm(_Dated):
    """A program's terms that may change."""

    name = StringField(_l("Name"), validators=_name)
    points_per_grant = _points(_l("Points per grant"))
    expiry_days = _days(_l("Points valid for (days)"))
    cap_points_per_citizen = _points(
        _l("At most this many points per person (optional)"), optional=True
    )
    cap_grants_per_citizen = IntegerField(
        _l("At most this many grants per person (optional)"),
        validators=[
            Optional(),
            NumberRange(
                min=1, max=1_000_000, message=_l("Enter a whole number from 1 to 1,000,000.")
            ),
        ],
    )


class ProgramForm(ProgramEditForm):
    """A new program."""

    code = StringField(_l("Code"), validators=_code)
    category = SelectField(
        _l("Kind"), choices=options(PROGRAM_KINDS.items()), validators=[DataRequired()]
    )
    budget = _points(_l("Budget (points)"))


class BudgetForm(FlaskForm):
    """Add points to a program's budget."""

    points = _points(_l("Points to add"))
    key = HiddenField(validators=[DataRequired(), PlainText(64)])


class ActionForm(FlaskForm):
    """A button: pause, resume, issue a key, make a pairing code (only the CSRF token)."""


class MerchantEditForm(FlaskForm):
    """A merchant's name, category and whether it takes points."""

    name = StringField(_l("Name"), validators=_name)
    category = SelectField(
        _l("Category"), choices=options(MERCHANT_CATEGORIES.items()), validators=[DataRequired()]
    )
    active = BooleanField(_l("Takes points"))


class MerchantForm(FlaskForm):
    """A new merchant."""

    code = StringField(_l("Code"), validators=_code)
    name = StringField(_l("Name"), validators=_name)
    category = SelectField(
        _l("Category"), choices=options(MERCHANT_CATEGORIES.items()), validators=[DataRequired()]
    )


class TillForm(FlaskForm):
    """A new till for the merchant."""

    till_name = StringField(_l("Till name"), validators=_name)


class BindTillForm(FlaskForm):
    """Bind another of the municipality's tills to this merchant."""

    terminal_id = SelectField(_l("Till"), coerce=int, choices=[])


class MerchantStaffForm(FlaskForm):
    """A staff account for the merchant."""

    login = StringField(
        _l("Login"),
        validators=[
            DataRequired(message=_l("Please enter a login.")),
            PlainText(LOGIN_LENGTH),
            Length(min=3, message=_l("A login has 3 to 64 characters.")),
        ],
    )
    password = PasswordField(
        _l("First password"),
        validators=[
            DataRequired(message=_l("Please enter a password.")),
            PlainText(MAX_PASSWORD_LENGTH),
            Length(
                min=MIN_PASSWORD_LENGTH,
                max=MAX_PASSWORD_LENGTH,
                message=_l("Passwords need at least %(n)s characters.", n=MIN_PASSWORD_LENGTH),
            ),
            PlainText(MAX_PASSWORD_LENGTH),
        ],
    )


class PartnerForm(FlaskForm):
    """A new partner company."""

    code = StringField(_l("Code"), validators=_code)
    name = StringField(_l("Name"), validators=_name)
    kind = SelectField(
        _l("Kind"), choices=options(PARTNER_KINDS.items()), validators=[DataRequired()]
    )


class TermsForm(FlaskForm):
    """The municipality's terms for a partner."""

    rate_num = IntegerField(
        _l("City points"),
        validators=[
            InputRequired(),
            NumberRange(min=1, max=1_000_000, message=_l("Enter 1 to 1,000,000.")),
        ],
    )
    rate_den = IntegerField(
        _l("for this many partner points"),
        validators=[
            InputRequired(),
            NumberRange(min=1, max=1_000_000, message=_l("Enter 1 to 1,000,000.")),
        ],
    )
    bonus_bp = IntegerField(
        _l("Bonus (basis points: 100 = 1 %)"),
        validators=[
            InputRequired(),
            NumberRange(min=0, max=MAX_BP, message=_l("Enter 0 to 100,000 (1,000 %).")),
        ],
    )
    bonus_program_id = SelectField(_l("Bonus paid from"), coerce=int, choices=[])
    min_unit = IntegerField(
        _l("Minimum unit (partner points)"),
        validators=[InputRequired(), NumberRange(min=1, max=10**9, message=_l("Enter 1 or more."))],
    )
    hold_days = _days(_l("Holding period (days)"), low=0)
    expiry_days = _days(_l("Converted points valid for (days)"))
    active = BooleanField(_l("Accept conversions"))


class RevokeKeyForm(FlaskForm):
    """Revoke one API key by its public id."""

    key_id = HiddenField(validators=[DataRequired(), PlainText(16), Length(min=16)])


class PolicyForm(FlaskForm):
    """The municipality's expiry policy and refund window (blank: the platform's)."""

    default_expiry_days = _days(_l("New points are valid for (days)"))
    refund_window_days = IntegerField(
        _l("Refunds possible for (days)"),
        validators=[
            Optional(),
            NumberRange(
                min=0,
                max=MAX_DAYS,
                message=_l(
                    "Enter a number of days from %(low)s to %(high)s.", low=0, high=MAX_DAYS
                ),
            ),
        ],
    )


CAUSE_KINDS = {
    CauseKind.CAUSE.value: _l("Donations (social contribution)"),
    CauseKind.PROJECT.value: _l("Crowdfunding project"),
}
MISS_POLICIES = {
    MissPolicy.RETURN.value: _l("Return the points to the citizens"),
    MissPolicy.KEEP.value: _l("Keep the points for the project"),
}
CAUSE_STATUSES = {
    CauseStatus.OPEN.value: _l("Taking donations"),
    CauseStatus.CLOSED.value: _l("Closed"),
    CauseStatus.MET.value: _l("Goal met"),
    CauseStatus.MISSED_KEPT.value: _l("Goal missed: points kept"),
    CauseStatus.MISSED_RETURNED.value: _l("Goal missed: points returned"),
}


class CauseEditForm(FlaskForm):
    """A cause's or project's name, description, open or closed, and missed-goal policy."""

    name = StringField(_l("Name"), validators=_name)
    description = TextAreaField(
        _l("Description (optional)"), validators=[PlainText(1000, multiline=True)]
    )
    open = BooleanField(_l("Taking donations"))
    miss_policy = SelectField(
        _l("If a project misses its goal"),
        choices=options(MISS_POLICIES.items()),
        validators=[DataRequired()],
    )
    fresh_days = _days(_l("Returned points whose expiry has passed are valid for (days)"))


class CauseForm(FlaskForm):
    """A new cause or project."""

    code = StringField(_l("Code"), validators=_code)
    name = StringField(_l("Name"), validators=_name)
    description = TextAreaField(
        _l("Description (optional)"), validators=[PlainText(1000, multiline=True)]
    )
    kind = SelectField(
        _l("Kind"), choices=options(CAUSE_KINDS.items()), validators=[DataRequired()]
    )
    goal_points = _points(_l("Goal (points; projects only)"), optional=True)
    ends_on = DateField(_l("Last day (projects only)"), validators=[Optional()])
    miss_policy = SelectField(
        _l("If a project misses its goal"),
        choices=options(MISS_POLICIES.items()),
        validators=[DataRequired()],
    )
    fresh_days = _days(_l("Returned points whose expiry has passed are valid for (days)"))

    def validate(self, extra_validators: Any = None) -> bool:
        """The fields, then what a project needs: a goal, and a last day today or later
        (checked here: the fields' Optional() stops their own chains when empty)."""
        valid = super().validate(extra_validators)
        if self.kind.data != CauseKind.PROJECT.value:
            return valid
        if not self.goal_points.data and not self.goal_points.errors:
            self.goal_points.errors = [*self.goal_points.errors, _l("A project needs a goal.")]
            valid = False
        if self.ends_on.data is None and not self.ends_on.errors:
            self.ends_on.errors = [*self.ends_on.errors, _l("A project needs a last day.")]
            valid = False
        elif self.ends_on.data is not None and self.ends_on.data < datetime.now(JST).date():
            self.ends_on.errors = [
                *self.ends_on.errors,
                _l("The last day must be today or later."),
            ]
            valid = False
        return valid


class ShopForm(FlaskForm):
    """An online shop's checkout settings: its origins and its webhook URL."""

    origins = TextAreaField(
        _l("Shop origins (one per line)"),
        validators=[DataRequired(), PlainText(1100, multiline=True)],
    )
    webhook_url = StringField(_l("Webhook URL"), validators=[Optional(), PlainText(500)])
