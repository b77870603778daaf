"""The counter (窓口端末): the librarian's tab shows the library's own user number."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register /counter, the counter's purposes and the pushed lookup (after cardflow)."""
    from ..cardflow import flows_for
    from ..terminals import get_registry
    from . import views
    from .purposes import LinkPurpose, LookupPurpose, VerifyPurpose
    from .push import CounterPush

    service = flows_for(app)
    service.register(LookupPurpose())
    service.register(LinkPurpose())
    service.register(VerifyPurpose())
    push = CounterPush(app, service)
    app.extensions["counter_push"] = push
    get_registry(app).card_listeners.append(push)
    app.register_blueprint(views.bp)
