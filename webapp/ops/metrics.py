"""The platform's Prometheus metrics (the official `prometheus_client`).

    ichimai_taps_total{kind}                    cards put on a terminal's reader
    ichimai_pin_outcomes_total{outcome}         ok, wrong_pin, pin_locked, pin_last_try...
    ichimai_refusals_total{what, code}          what: card, link, payment
    ichimai_bridges_online                      bridges connected, summed over live workers
    ichimai_bridge_connections_total{event}     connect, disconnect
    ichimai_bus_round_trip_seconds{op}          a request over the bus to the worker holding
                                                a bridge and back: `status` (no card I/O)
                                                or `command` (the bridge's card work too)
    ichimai_ledger_transfers_total{kind}        ledger transfers committed

Several gunicorn workers are several processes: prometheus_client's multi-process mode
keeps each worker's values in files under PROMETHEUS_MULTIPROC_DIR (gunicorn.conf.py
sets it up, and marks a dead worker's files), and `/metrics` sums them. The directory
must be set before this module is first imported in a worker, so nothing the gunicorn
master imports may import it. Without the variable (one process: `flask run`, tests) the
default registry serves. Labels never carry a person: codes and kinds only.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

TAPS = Counter("ichimai_taps", "Cards put on a terminal's reader.", ["kind"])
PIN_OUTCOMES = Counter(
    "ichimai_pin_outcomes", "Outcomes of a PIN entered at a terminal.", ["outcome"]
)
REFUSALS = Counter(
    "ichimai_refusals", "Refused cards, links and payments, by code.", ["what", "code"]
)
BRIDGES_ONLINE = Gauge(
    "ichimai_bridges_online", "Bridges connected to this deployment.", multiprocess_mode="livesum"
)
BRIDGE_CONNECTIONS = Counter(
    "ichimai_bridge_connections", "Bridge connects and disconnects.", ["event"]
)
BUS_ROUND_TRIP = Histogram(
    "ichimai_bus_round_trip_seconds",
    "A request to the worker holding a terminal's bridge, and its answer.",
    ["op"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
LEDGER_TRANSFERS = Counter("ichimai_ledger_transfers", "Ledger transfers committed.", ["kind"])


def render() -> tuple[bytes, str]:
    """The exposition text (every worker's values in multi-process mode) and its type."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def count_transfers(kinds: Iterable[str]) -> None:
    """Ledger transfers that were committed (called after the commit)."""
    for kind in kinds:
        LEDGER_TRANSFERS.labels(kind=kind).inc()
