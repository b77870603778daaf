"""The bridge for download (/bridge/): its wheel, and how to install it on each system.

`GET /bridge/<wheel>` serves the `ichimai-bridge` wheel built from this platform's
`bridge/` (bridge_wheel.py); `GET /bridge/` is the install page. The same steps appear
on the admin's terminals page and on /home, with the one-time code filled in
(templates/bridge/_install.html, fed by `install_guide`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from flask import Blueprint, Flask, abort, current_app, render_template, send_file
from flask.typing import ResponseReturnValue

from .bridge_wheel import WHEEL_NAME, WheelUnavailable, ensure_wheel

log = logging.getLogger(__name__)

bp = Blueprint("bridge_download", __name__, url_prefix="/bridge")


@dataclass(frozen=True, slots=True)
class InstallGuide:
    """The download and the exact commands, for one platform origin and code."""

    wheel_url: str
    wheel_name: str
    pair: str  # `ichimai-bridge pair ORIGIN CODE`
    pipx: str  # macOS and Linux
    windows: str  # py -m pip install
    code: str | None


def install_guide(origin: str, code: str | None = None) -> InstallGuide:
    """The commands for `origin` (and the one-time `code`, when there is one)."""
    origin = origin.rstrip("/")
    url = f"{origin}/bridge/{WHEEL_NAME}"
    return InstallGuide(
        wheel_url=url,
        wheel_name=WHEEL_NAME,
        pair=f"ichimai-bridge pair {origin} {code or 'CODE'}",
        pipx=f"pipx install {url}",
        windows=f"py -m pip install {url}",
        code=code,
    )


def wheel_dir(app: Flask) -> Path:
    """Where built wheels are cached (BRIDGE_WHEEL_DIR, default instance/bridge-wheel)."""
    configured = app.config.get("BRIDGE_WHEEL_DIR")
    return Path(configured) if configured else Path(app.instance_path) / "bridge-wheel"


@bp.get("/")
def index() -> ResponseReturnValue:
    """How to install the bridge (no code: an admin or /home gives one)."""
    guide = install_guide(current_app.config["PLATFORM_ORIGIN"])
    return render_template("bridge/install.html", guide=guide)


@bp.get("/<filename>")
def wheel(filename: str) -> ResponseReturnValue:
    """The bridge's wheel (built on first use, then from the cache)."""
    if filename != WHEEL_NAME:
        abort(404)
    try:
        path = ensure_wheel(wheel_dir(current_app))
    except WheelUnavailable:
        log.exception("the bridge wheel is unavailable")
        abort(503)
    return send_file(
        path,
        mimetype="application/zip",
        as_attachment=True,
        download_name=WHEEL_NAME,
        max_age=300,
    )
