"""Bounded input on every request: body size, JSON, query and form characters.

`init_app(app)` (before any other layer's before_request, so before CSRF reads a form):

- sets `MAX_CONTENT_LENGTH` and answers 413 at once, from the Content-Length header,
  when a body is larger than the endpoint allows: nothing of it is read. An endpoint
  that takes a file says so with `@allow_body(bytes)`. A body without a length (chunked)
  is cut off by Werkzeug at the same limit while it is read.
- refuses a query string or form holding a control character (400, before any view).
- parses every JSON body within `rules.MAX_JSON_BYTES` and `rules.MAX_JSON_DEPTH`
  (`json_body()`, and `request.get_json()` through the app's request class).

`InputRefused` raised anywhere in a view is answered 400 (413 for `too_large`): JSON
clients get the terminals' error shape (`catalogue.error_body`), pages the 400 page
with the reason in words. Forms check each text field with the `PlainText` validator.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from flask import Flask, current_app, jsonify, render_template, request
from flask import json as flask_json
from flask.typing import ResponseReturnValue
from flask.wrappers import Request
from flask_babel import force_locale, get_locale
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import RequestEntityTooLarge
from wtforms import Field, Form
from wtforms.validators import ValidationError

from ..catalogue import error_body
from . import rules
from .rules import InputRefused

F = TypeVar("F", bound=Callable[..., Any])

REASONS = {
    "too_large": _l("The request is too large."),
    "too_deep": _l("The request is nested too deeply."),
    "not_json": _l("The request is not valid JSON."),
    "control_character": _l(
        "The input contains a control character (such as NUL or a line break where "
        "none is allowed). Remove it and try again."
    ),
    "too_long": _l("The input is too long."),
}


def words(exc: InputRefused) -> str:
    """What was refused, in the request's language."""
    return str(REASONS.get(exc.reason, REASONS["not_json"]))


def allow_body(max_bytes: int) -> Callable[[F], F]:
    """Let this view take a body of up to `max_bytes` (an upload); apply under the route."""

    def mark(view: F) -> F:
        view.max_content_length = max_bytes  # type: ignore[attr-defined]
        return view

    return mark


def json_body(max_bytes: int = rules.MAX_JSON_BYTES) -> Any:
    """The request's JSON body within the bounds; None if it is not JSON (by its
    Content-Type); InputRefused if it is malformed, too large, too deep or has a control
    character."""
    if not request.is_json:
        return None
    if request.content_length is not None and request.content_length > max_bytes:
        raise InputRefused("too_large", limit=max_bytes)
    data = request.get_data(cache=True)
    if not data:  # a GET (or an empty POST) sent with the JSON content type: no body
        return None
    return rules.parse_json(data, max_bytes=max_bytes)


class _BoundedJSON:
    """The JSON module requests parse their bodies with: `rules.parse_json`'s bounds."""

    @staticmethod
    def loads(s: str | bytes, **kwargs: Any) -> Any:
        """Parse within MAX_JSON_BYTES and MAX_JSON_DEPTH; InputRefused otherwise."""
        return rules.parse_json(s, **kwargs)

    @staticmethod
    def dumps(obj: Any, **kwargs: Any) -> str:
        """Flask's own serialisation."""
        return flask_json.dumps(obj, **kwargs)


class BoundedRequest(Request):
    """Flask's request whose `get_json()` keeps the bounds (responses are not touched)."""

    @property  # type: ignore[override]
    def json_module(self) -> Any:
        """`rules.parse_json` for the body, whatever Flask hands each request."""
        return _BoundedJSON

    @json_module.setter
    def json_module(self, value: Any) -> None:
        """Flask sets `app.json` on every request (flask/ctx.py); requests keep ours."""

    def on_json_loading_failed(self, e: ValueError | None) -> Any:
        """A refusal keeps its reason (answered by `_refused`); anything else is Flask's 400."""
        if isinstance(e, InputRefused):
            raise e
        return super().on_json_loading_failed(e)


class PlainText:
    """WTForms validator: at most `max_length` characters, no control character (line
    breaks only where `multiline`)."""

    def __init__(self, max_length: int, *, multiline: bool = False) -> None:
        self.max_length = max_length
        self.multiline = multiline
        self.field_flags = {"maxlength": max_length}

    def __call__(self, form: Form, field: Field) -> None:
        value = field.data
        if not isinstance(value, str):
            return
        problem = rules.text_problem(value, max_length=self.max_length, multiline=self.multiline)
        if problem == "too_long":
            raise ValidationError(str(_l("At most %(count)s characters.", count=self.max_length)))
        if problem is not None:
            raise ValidationError(str(REASONS[problem]))


FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _has_control(pairs: Iterable[tuple[str, str]]) -> bool:
    """Whether a key or value of a query or form holds a control character."""
    return any(
        rules.control_character(key, multiline=True)
        or rules.control_character(value, multiline=True)
        for key, value in pairs
    )


def _check_request() -> None:
    """Before any view: the body's size (from its header), the query's and form's text."""
    view = current_app.view_functions.get(request.endpoint or "")
    allowed = getattr(view, "max_content_length", None)
    if allowed is not None:
        request.max_content_length = allowed
    limit = request.max_content_length
    if limit is not None and (request.content_length or 0) > limit:
        raise RequestEntityTooLarge()
    if _has_control(request.args.items(True)):
        raise InputRefused("control_character", "query")
    if request.mimetype in FORM_TYPES and _has_control(request.form.items(True)):
        raise InputRefused("control_character", "form")


def _wants_json() -> bool:
    return (
        request.is_json
        or request.path.startswith(("/api/", "/flow", "/terminal/"))
        or request.accept_mimetypes.best == "application/json"
    )


def _refused(exc: InputRefused) -> ResponseReturnValue:
    status = 413 if exc.reason == "too_large" else 400
    if _wants_json():
        message = words(exc)
        body = error_body("input_refused", str(get_locale() or "ja"), final=False)
        body.update(message=message, reason=exc.reason)
        if exc.field:
            body["field"] = exc.field
        return jsonify(error=body), status
    messages = {}
    for lang in ("ja", "en"):
        with force_locale(lang):
            messages[lang] = words(exc)
    return render_template("errors/400.html", error_page=True, csrf=False, message=messages), status


def init_app(app: Flask) -> None:
    """The request size limit, the early checks and the JSON bounds (call first)."""
    if app.config.get("MAX_CONTENT_LENGTH") is None:  # Flask's default: no limit
        app.config["MAX_CONTENT_LENGTH"] = rules.MAX_CONTENT_LENGTH
    app.request_class = BoundedRequest
    app.before_request(_check_request)
    app.register_error_handler(InputRefused, _refused)
