"""Forms of the points staff pages (CSRF token included by Flask-WTF)."""

from __future__ import annotations

import uuid

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import HiddenField, IntegerField, SelectField, StringField
from wtforms.validators import DataRequired, NumberRange

from ..inputs.web import PlainText


def new_key() -> str:
    """A fresh idempotency key for a form: a double submit of one form is one transfer."""
    return uuid.uuid4().hex


class GrantForm(FlaskForm):
    """Grant one program's points to one MyKey ID."""

    mykey_id = StringField(_l("MyKey ID"), validators=[DataRequired(), PlainText(32)])
    program_id = SelectField(_l("Program"), coerce=int, choices=[])
    key = HiddenField(validators=[DataRequired(), PlainText(64)])


class CsvForm(FlaskForm):
    """Upload a grant file."""

    file = FileField(_l("CSV file"), validators=[FileRequired()])


class RefundForm(FlaskForm):
    """Refund part or all of one payment."""

    spend_id = IntegerField(_l("Payment number"), validators=[DataRequired()])
    points = IntegerField(_l("Points to refund"), validators=[DataRequired(), NumberRange(min=1)])
    key = HiddenField(validators=[DataRequired(), PlainText(64)])
