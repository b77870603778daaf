"""Staff forms (CSRF token included by Flask-WTF); labels are translated lazily."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from ..inputs import LOGIN_LENGTH
from ..inputs.web import PlainText
from .models import Role
from .services import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH

# Every text field: its length and no control character (webapp/inputs).
LOGIN = PlainText(LOGIN_LENGTH)
PASSWORD = PlainText(MAX_PASSWORD_LENGTH)


class LoginForm(FlaskForm):
    """Staff sign-in."""

    login = StringField(_l("Login"), validators=[DataRequired(), LOGIN])
    password = PasswordField(_l("Password"), validators=[DataRequired(), PASSWORD])


class PasswordForm(FlaskForm):
    """Change one's own password."""

    current = PasswordField(_l("Current password"), validators=[DataRequired(), PASSWORD])
    new = PasswordField(
        _l("New password"),
        validators=[
            DataRequired(),
            Length(min=MIN_PASSWORD_LENGTH),
            PASSWORD,
        ],
    )
    confirm = PasswordField(
        _l("New password again"),
        validators=[
            DataRequired(),
            PASSWORD,
            EqualTo("new", message=_l("The passwords do not match.")),
        ],
    )


def options(pairs: Iterable[tuple[Any, Any]]) -> list[SelectChoice]:
    """SelectField choices from (value, label) pairs (WTForms 3.3 wants SelectChoice)."""
    return [SelectChoice(value, label) for value, label in pairs]


ROLE_LABELS = {
    Role.PLATFORM_ADMIN.value: _l("Platform administrator"),
    Role.MUNICIPAL_ADMIN.value: _l("Municipal administrator"),
    Role.PROVIDER_ADMIN.value: _l("Provider administrator"),
    Role.COUNTER_STAFF.value: _l("Counter staff"),
    Role.POINTS_OFFICER.value: _l("Points officer"),
    Role.MERCHANT_STAFF.value: _l("Merchant staff"),
}
# The admin form creates provider-scoped accounts; points roles need a municipality or
# merchant scope and are created with `flask staff create-points`.
PROVIDER_ROLES = (Role.PLATFORM_ADMIN, Role.PROVIDER_ADMIN, Role.COUNTER_STAFF)


class StaffForm(FlaskForm):
    """Create a staff account: its provider named by code (ISIL), never a list of every
    provider in the country; or fixed when the form is opened from a provider's row."""

    login = StringField(_l("Login"), validators=[DataRequired(), Length(min=3), LOGIN])
    password = PasswordField(
        _l("Initial password"),
        validators=[
            DataRequired(),
            Length(min=MIN_PASSWORD_LENGTH),
            PASSWORD,
        ],
    )
    role = SelectField(
        _l("Role"), choices=options((r.value, ROLE_LABELS[r.value]) for r in PROVIDER_ROLES)
    )
    provider_code = StringField(
        _l("Provider code (ISIL for libraries)"), validators=[PlainText(32)]
    )
    municipality_code = StringField(
        _l("Municipality (local government code)"), validators=[PlainText(12)]
    )
