"""Staff forms (CSRF token included by Flask-WTF); labels are translated lazily."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from .models import Role
from .services import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH


class LoginForm(FlaskForm):
    """Staff sign-in."""

    login = StringField(_l("Login"), validators=[DataRequired(), Length(max=64)])
    password = PasswordField(
        _l("Password"), validators=[DataRequired(), Length(max=MAX_PASSWORD_LENGTH)]
    )


class PasswordForm(FlaskForm):
    """Change one's own password."""

    current = PasswordField(_l("Current password"), validators=[DataRequired()])
    new = PasswordField(
        _l("New password"),
        validators=[DataRequired(), Length(min=MIN_PASSWORD_LENGTH, max=MAX_PASSWORD_LENGTH)],
    )
    confirm = PasswordField(
        _l("New password again"),
        validators=[DataRequired(), EqualTo("new", message=_l("The passwords do not match."))],
    )


def options(pairs: Iterable[tuple[Any, Any]]) -> list[SelectChoice]:
    """SelectField choices from (value, label) pairs (WTForms 3.3 wants SelectChoice)."""
    return [SelectChoice(value, label) for value, label in pairs]


ROLE_LABELS = {
    Role.PLATFORM_ADMIN.value: _l("Platform administrator"),
    Role.PROVIDER_ADMIN.value: _l("Provider administrator"),
    Role.COUNTER_STAFF.value: _l("Counter staff"),
    Role.POINTS_OFFICER.value: _l("Points officer"),
    Role.MERCHANT_STAFF.value: _l("Merchant staff"),
}
# The admin form creates provider-scoped accounts; points roles need a municipality or
# merchant scope and are created with `flask staff create-points`.
PROVIDER_ROLES = (Role.PLATFORM_ADMIN, Role.PROVIDER_ADMIN, Role.COUNTER_STAFF)


class StaffForm(FlaskForm):
    """Create a staff account."""

    login = StringField(_l("Login"), validators=[DataRequired(), Length(min=3, max=64)])
    password = PasswordField(
        _l("Initial password"),
        validators=[DataRequired(), Length(min=MIN_PASSWORD_LENGTH, max=MAX_PASSWORD_LENGTH)],
    )
    role = SelectField(
        _l("Role"), choices=options((r.value, ROLE_LABELS[r.value]) for r in PROVIDER_ROLES)
    )
    provider_id = SelectField(_l("Provider"), coerce=int, choices=[])
