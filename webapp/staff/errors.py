"""Friendly, bilingual error pages (400, 403, 404, 429, 500): never a traceback.

JSON clients (paths under /api/, or Accept: application/json) get the API error shape
`{"error": {"code": "not_found", "message": "..."}}` instead of a page.
"""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

PAGES = (400, 403, 404, 429, 500)


def _wants_json() -> bool:
    return request.path.startswith("/api/") or (request.accept_mimetypes.best == "application/json")


def _page_for(code: int) -> int:
    if code in PAGES:
        return code
    if code == 401:
        return 403
    return 500 if code >= 500 else 400


def handle(error: HTTPException) -> ResponseReturnValue:
    """Render the error's page, or a small JSON body for API clients."""
    code = error.code or 500
    if _wants_json():
        name = (error.name or "error").lower().replace(" ", "_").replace("'", "")
        # Werkzeug's descriptions are generic texts: never the exception behind a 500.
        return jsonify(error={"code": name, "message": error.description}), code
    return render_template(
        f"errors/{_page_for(code)}.html", csrf=isinstance(error, CSRFError), error_page=True
    ), code


def init_app(app: Flask) -> None:
    """Register the error pages for every HTTP error (Flask skips routing redirects)."""
    app.register_error_handler(HTTPException, handle)
