"""What an operator runs and watches: log lines, /metrics, a clean stop.

- `logs`: one JSON object per log line (gunicorn.conf.py and `init_app` install it).
- `events`: the structured line (and metric) per refused card, link, payment and bridge
  connect/disconnect; never a person's data.
- `metrics`: the Prometheus metrics (prometheus_client, multi-process under gunicorn).
- `views`: GET /metrics, refused unless a token or addresses are configured.
- `going_away`: a stopping worker closes its WebSockets at once with 1001.

docs/operations.md is the operator's page. This package's `__init__` imports nothing
of prometheus_client: gunicorn's master imports `webapp` (and `ops.logs`), and the
multi-process directory must be known before prometheus_client is first imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # plain-Python callers (cardflow.flows) import ops.events without Flask
    from flask import Flask


def init_app(app: Flask) -> None:
    """Read the metrics settings (malformed addresses stop start-up), register /metrics,
    and count ledger transfers as their transactions commit."""
    from . import views

    app.config["METRICS_NETWORKS"] = views.parse_allow(app.config.get("METRICS_ALLOW"))
    app.register_blueprint(views.bp)
    _count_committed_transfers()


def _count_committed_transfers() -> None:
    """Once per process: a committed session's ledger transfers count in the metrics."""
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    from ..points.ledger.write import WRITTEN_KINDS

    if event.contains(Session, "after_commit", _after_commit):
        return

    def _after_rollback(session: Session, previous: Any) -> None:
        if previous.parent is None:  # the whole transaction, not a savepoint
            session.info.pop(WRITTEN_KINDS, None)

    event.listen(Session, "after_commit", _after_commit)
    event.listen(Session, "after_soft_rollback", _after_rollback)


def _after_commit(session: object) -> None:
    from ..points.ledger.write import WRITTEN_KINDS
    from . import metrics

    kinds = session.info.pop(WRITTEN_KINDS, None)  # type: ignore[attr-defined]
    if kinds:
        metrics.count_transfers(kinds)
