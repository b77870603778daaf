"""The pure rules of bounded input (webapp/inputs/rules.py) and the wire's own depth bound
(bridge/wire.py): deep JSON is refused before it is parsed, never a RecursionError."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import pytest
from flask import request
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.fields.core import UnboundField

from bridge import wire
from webapp import create_app
from webapp.inputs import (
    MAX_JSON_BYTES,
    MAX_JSON_DEPTH,
    InputRefused,
    check_text,
    parse_json,
    text_problem,
)
from webapp.inputs.rules import json_depth
from webapp.inputs.web import PlainText


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("1", 0),
        ("[]", 1),
        ('{"a": [1, {"b": []}]}', 4),
        ('["[[[[", "]]", "\\"[["]', 1),  # brackets inside strings do not count
        ("[" * 50_000, 50_000),
    ],
)
def test_json_depth(text: str, depth: int) -> None:
    assert json_depth(text) == depth


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("[" * 50_000 + "]" * 50_000, "too_large"),
        ("[" * 30_000 + "]" * 30_000, "too_deep"),
        ("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1), "too_deep"),
        ("[" * 50_000, "too_deep"),
        ("{", "not_json"),
        (b"\xff\xfe", "not_json"),
        ('{"name": "a\\u0000b"}', "control_character"),
        ('{"a\\u001bb": 1}', "control_character"),
        ('["\\ud800"]', "control_character"),  # a lone surrogate
    ],
)
def test_parse_json_refuses(raw: str | bytes, reason: str) -> None:
    with pytest.raises(InputRefused) as refused:
        parse_json(raw)
    assert refused.value.reason == reason


def test_parse_json_keeps_what_is_in_bounds() -> None:
    nested = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert json.dumps(parse_json(nested)) == nested.replace("][", "], [")
    assert parse_json('{"terms": "a\\nb\\tc"}') == {"terms": "a\nb\tc"}
    assert parse_json(b'{"n": 1}', max_bytes=MAX_JSON_BYTES) == {"n": 1}


@pytest.mark.parametrize(
    ("value", "multiline", "problem"),
    [
        ("中央図書館", False, None),
        ("a\x00b", False, "control_character"),
        ("a\x00b", True, "control_character"),
        ("a\nb", False, "control_character"),
        ("a\r\nb\tc", True, None),
        ("a\x7f", True, "control_character"),
        ("a\x9b", True, "control_character"),  # C1
        ("x" * 11, False, "too_long"),
    ],
)
def test_text_problem(value: str, multiline: bool, problem: str | None) -> None:
    assert text_problem(value, max_length=10, multiline=multiline) == problem


def test_check_text_names_the_field() -> None:
    with pytest.raises(InputRefused) as refused:
        check_text("x" * 3, "name", max_length=2)
    assert (refused.value.field, refused.value.reason, refused.value.limit) == (
        "name",
        "too_long",
        2,
    )


@pytest.mark.parametrize(
    "text",
    ["[" * 50_000, "[" * 30_000 + "]" * 30_000, '{"v": 1, "x": ' + "[" * 16 + "]" * 16 + "}"],
)
def test_the_wire_refuses_deep_frames_as_the_peers_fault(text: str) -> None:
    with pytest.raises(wire.RemoteProtocolError, match="deeper"):
        wire.decode(text)


def test_the_wire_still_reads_its_deepest_frame() -> None:
    snapshot = wire.Snapshot(
        (wire.ReaderState("Reader 0", wire.CardState(b"\x3b\x8c", 1)),), id="s"
    )
    assert wire.decode(wire.encode(snapshot)) == snapshot


def test_every_text_field_of_every_form_is_bounded(tmp_path: Path) -> None:
    """A rule kept by a test: each text field of every form of the platform checks its
    length and refuses control characters (webapp.inputs.web.PlainText)."""
    create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 't.db'}", "TESTING": True})

    def subclasses(cls: type) -> list[type]:
        return [c for sub in cls.__subclasses__() for c in (sub, *subclasses(sub))]

    forms = [f for f in subclasses(FlaskForm) if f.__module__.startswith("webapp.")]
    assert len(forms) >= 8
    unbounded = [
        f"{form.__module__}.{form.__name__}.{name}"
        for form in forms
        for name, field in inspect.getmembers(form, lambda v: isinstance(v, UnboundField))
        if issubclass(field.field_class, StringField)
        and not any(isinstance(v, PlainText) for v in field.kwargs.get("validators") or ())
    ]
    assert not unbounded


def test_request_get_json_keeps_the_bounds_and_responses_do_not(tmp_path: Path) -> None:
    """Any view's `request.get_json()` is bounded (webapp.inputs.web.BoundedRequest);
    reading a large response is not."""
    config = {"DATABASE_URL": f"sqlite:///{tmp_path / 't.db'}", "TESTING": True}
    app = create_app({**config, "WTF_CSRF_ENABLED": False})

    @app.post("/echo")
    def echo() -> Any:
        return {"got": request.get_json(), "big": ["x" * 100] * 1000}

    client = app.test_client()
    deep = client.post("/echo", data="[" * 40 + "]" * 40, content_type="application/json")
    assert deep.status_code == 400 and deep.get_json()["error"]["reason"] == "too_deep"
    with app.app_context():
        answer = client.post("/echo", json={"a": 1})
        assert answer.get_json()["got"] == {"a": 1}  # a 100 KB body read in an app context
