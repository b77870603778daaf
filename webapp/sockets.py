"""The app's one flask-sock extension: /ws/bridge (terminals) and /ws/terminal (cardflow)."""

from __future__ import annotations

from flask_sock import Sock

sock = Sock()
