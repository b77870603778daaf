"""Languages: Japanese by default, English on request (Flask-Babel).

Source strings are English; webapp/translations/ja holds the Japanese catalog (.po and
its compiled .mo, both committed; a test fails when the .mo lags the .po). The choice:
?lang=ja|en (remembered in the session) > the session > Accept-Language > ja.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, has_request_context, request, session
from flask_babel import Babel, get_locale

LOCALES = ("ja", "en")
DEFAULT_LOCALE = "ja"
TRANSLATIONS = Path(__file__).resolve().parent / "translations"

babel = Babel()


def select_locale() -> str:
    """The locale for this request."""
    if not has_request_context():
        return DEFAULT_LOCALE
    asked = request.args.get("lang")
    if asked in LOCALES:
        return asked
    remembered = session.get("lang")
    if remembered in LOCALES:
        return str(remembered)
    return request.accept_languages.best_match(LOCALES, default=DEFAULT_LOCALE) or DEFAULT_LOCALE


def _remember_choice() -> None:
    """A one-tap toggle: ?lang=en (or ja) sticks for the rest of the session."""
    asked = request.args.get("lang")
    if asked in LOCALES and session.get("lang") != asked:
        session["lang"] = asked


def _template_globals() -> dict[str, str]:
    current = str(get_locale() or DEFAULT_LOCALE)
    return {"current_lang": current, "other_lang": "en" if current == "ja" else "ja"}


def init_app(app: Flask) -> None:
    """Set up Flask-Babel with our catalogs and the language toggle."""
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LOCALE)
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(TRANSLATIONS)
    babel.init_app(app, locale_selector=select_locale)
    app.before_request(_remember_choice)
    app.context_processor(_template_globals)
