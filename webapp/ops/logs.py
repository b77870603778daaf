"""One JSON object per log line, for the platform's own loggers (`webapp.*`, `ichimai.*`).

gunicorn.conf.py hands this formatter to the root logger of every worker; a platform run
without gunicorn (`flask run`) gets it from `ops.init_app` when nothing else configured
logging. An operator's log pipeline then parses every line the same way:

    {"ts": "2026-12-07T10:00:00.123Z", "level": "info", "logger": "ichimai.events",
     "event": "card_refused", "code": "revoked", "terminal": 3, "provider": 1, "pid": 812}

Events (`ops.events`) put their fields at the top level; other records carry `msg`.
An exception's traceback is one string field (`exc`), so a line stays one line.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime

EVENT_FIELDS = "ichimai_event"  # the LogRecord attribute an event's fields travel in


class JsonLineFormatter(logging.Formatter):
    """A LogRecord as one line of JSON."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one JSON object (event fields at the top level)."""
        line: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        fields = getattr(record, EVENT_FIELDS, None)
        if isinstance(fields, dict):
            line.update(fields)
        else:
            line["msg"] = record.getMessage()
        line["pid"] = os.getpid()
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


# The platform's own loggers speak from INFO; everyone else's from WARNING.
OWN_LOGGERS = ("webapp", "ichimai")


def configure_if_unset() -> None:
    """JSON lines on stderr (the platform's loggers from INFO, the rest from WARNING),
    unless logging is configured already (gunicorn.conf.py, a test runner, an
    operator's own dictConfig)."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLineFormatter())
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)
