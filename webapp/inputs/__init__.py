"""Bounded input: one place for every limit on what a client sends (sizes, JSON depth,
text lengths, control characters).

`webapp.inputs` (this package, `rules.py`) is pure, importable by domain services;
`webapp.inputs.web` applies the rules to every request (`init_app`), parses JSON bodies
(`json_body`) and checks form fields (`PlainText`).
"""

from __future__ import annotations

from .rules import (
    LOGIN_LENGTH,
    MAX_CONTENT_LENGTH,
    MAX_JSON_BYTES,
    MAX_JSON_DEPTH,
    NAME_LENGTH,
    TERMS_LENGTH,
    UPLOAD_CONTENT_LENGTH,
    InputRefused,
    check_text,
    control_character,
    parse_json,
    text_problem,
)

__all__ = [
    "LOGIN_LENGTH",
    "MAX_CONTENT_LENGTH",
    "MAX_JSON_BYTES",
    "MAX_JSON_DEPTH",
    "NAME_LENGTH",
    "TERMS_LENGTH",
    "UPLOAD_CONTENT_LENGTH",
    "InputRefused",
    "check_text",
    "control_character",
    "parse_json",
    "text_problem",
]
