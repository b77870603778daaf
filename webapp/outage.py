"""A backing service down (PostgreSQL, Redis): 503 "temporarily unavailable, try again",
never a 500 with a traceback.

While PostgreSQL restarts, every request that needs it (and most do: sessions are rows)
fails with a disconnect; while Redis restarts, the bus, the flow and nonce stores and the
attempt limits fail. Either way the request changed nothing that survives (a database
transaction that did not commit is rolled back by the server; the card flow saves its
state with compare-and-set after the work), so the honest answer is "not now, try again
shortly": 503 with `Retry-After`, in the terminal APIs' one error format
(`catalogue.error_body("service_unavailable")`) for JSON clients, and a page in both
languages for browsers. One warning line per failed request names the service; no
traceback (an outage is an operations event, not a bug). docs/faults.md says what each
person sees and what the operator does.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from flask import Flask, Response, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import InternalServerError

from .bus.interfaces import BusError
from .catalogue import error_body

log = logging.getLogger(__name__)

CODE = "service_unavailable"
# Seconds a client should wait before trying again: a restart of either service takes
# a few seconds, and the pages retry on their own.
RETRY_AFTER = 5
# The 503 page for when even the error page cannot be drawn (templates need the session,
# and the session needs the database): the same words and classes, no template.
FALLBACK_PAGE = """<!doctype html>
<html lang="ja"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>503 一時的にご利用いただけません | 一枚</title>
<link rel="stylesheet" href="{css}"></head>
<body><main id="main"><div class="wrap">
<section class="card narrow error-page" aria-labelledby="error-heading">
<p class="error-code">503</p>
<div lang="ja" class="primary-lang"><h1 id="error-heading">一時的にご利用いただけません</h1>
<p>システムの一部が再起動中です。何も変更されていません。しばらく待ってから、もう一度お試しください。</p></div>
<div lang="en" class="secondary-lang"><h2>Temporarily unavailable</h2>
<p>Part of the system is restarting. Nothing was changed. Please wait a moment and try again.</p>
</div></section></div></main></body></html>"""


def service_of(error: BaseException | None) -> str | None:
    """ "database" or "redis" when `error` means that service is unreachable, else None."""
    if isinstance(error, sa_exc.DBAPIError) and (
        error.connection_invalidated
        or isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError)
    ):
        return "database"
    if isinstance(error, sa_exc.DisconnectionError | sa_exc.TimeoutError):
        return "database"
    if isinstance(error, redis.ConnectionError | redis.TimeoutError):
        return "redis"
    if type(error) is BusError:
        return "redis"  # the bus's own wrapping of a Redis failure (not a timeout, no server)
    return None


def _wants_json() -> bool:
    return request.path.startswith(("/api/", "/flow", "/terminal/")) or (
        request.accept_mimetypes.best == "application/json"
    )


def _locale() -> str:
    try:
        from flask_babel import get_locale

        return str(get_locale() or "ja")
    except Exception:  # the session (the chosen language) may be what is down
        return "ja"


def unavailable(service: str) -> ResponseReturnValue:
    """The 503 answer: the error format for JSON clients, the 503 page for browsers."""
    log.warning("%s unavailable: %s %s answered 503", service, request.method, request.path)
    if _wants_json():
        response: Response = jsonify(error=error_body(CODE, _locale(), final=False))
    else:
        try:
            response = Response(render_template("errors/503.html", error_page=True))
        except Exception:
            css = f"{request.script_root}/static/css/app.css"
            response = Response(FALLBACK_PAGE.format(css=css), mimetype="text/html")
    response.status_code = 503
    response.headers["Retry-After"] = str(RETRY_AFTER)
    response.headers["Cache-Control"] = "no-store"
    return response


def _on_outage(error: Exception) -> ResponseReturnValue:
    service = service_of(error)
    if service is None:
        raise error  # not an outage after all: Flask's 500 handling
    return unavailable(service)


def unavailable_words() -> dict[str, object]:
    """The error format's words for "try again shortly", in the page's language: what a
    terminal page shows when its request got no answer (a worker gone, a proxy's 502)."""
    return error_body(CODE, _locale(), final=False)


def init_app(app: Flask) -> None:
    """Answer 503 for an unreachable database or Redis, wherever the request was."""
    app.jinja_env.globals["unavailable_words"] = unavailable_words
    for cls in (
        sa_exc.OperationalError,
        sa_exc.InterfaceError,
        sa_exc.DisconnectionError,
        sa_exc.TimeoutError,
        redis.ConnectionError,
        redis.TimeoutError,
        BusError,
    ):
        app.register_error_handler(cls, _on_outage)

    def on_500(error: InternalServerError) -> ResponseReturnValue:
        # Errors before the view (opening the session: a database read) reach Flask as a
        # 500 whose original exception is the outage.
        service = service_of(error.original_exception)
        if service is not None:
            return unavailable(service)
        from .staff.errors import handle

        return handle(error)

    app.register_error_handler(500, on_500)

    log_exception = app.log_exception

    def log_unless_outage(exc_info: Any) -> None:
        # Flask logs an error before the view (the session's read) with its traceback;
        # an outage gets its one warning line in `unavailable` instead.
        if service_of(exc_info[1]) is None:
            log_exception(exc_info)

    app.log_exception = log_unless_outage  # type: ignore[method-assign]
