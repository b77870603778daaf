"""gunicorn reads this from the working directory: the platform's start-up checks
(webapp/deployment.py), once in the master, and the one that needs the number of workers;
JSON log lines; the metrics' multi-process directory; a quick, clean stop.

Several worker processes with the in-process bus would keep card flows, challenges,
bridge sockets and limits per worker, each worker silently wrong for the others' tabs:
gunicorn refuses to start, with what to set instead.

Stopping (SIGTERM to the master: a deploy, `systemctl stop`): each worker closes its
WebSockets at once with 1001 "going away" (webapp/ops/going_away.py), so bridges
reconnect to a worker that stays and the worker exits in a second or two; the graceful
timeout below only bounds a card step still running. A worker told to stop while it
was still booting (respawned just before the deploy) stops too (post_fork).
docs/operations.md.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Any

# gevent workers hold a bridge's socket as a greenlet: one worker holds thousands
# (docs/operations.md: `ulimit -n` above worker_connections). Command-line flags win.
worker_class = "gevent"
worker_connections = 10000
# A card step in flight (at most ~10 s through a bridge) may finish; sockets go at once.
graceful_timeout = 10
# gunicorn 25+'s control socket (`gunicornc`) sits at one path per user (two deployments
# on a machine would share it) and takes up to 4 s to stop: off; signals do the work.
control_socket_disable = True

# prometheus_client's multi-process mode (webapp/ops/metrics.py): each worker writes its
# values under this directory and /metrics sums them. It must be set before any worker
# imports prometheus_client, so here, when gunicorn reads this file. An operator's own
# directory is emptied at start (values of a previous run would be summed in).
_OWN_METRICS_DIR = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _OWN_METRICS_DIR:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="ichimai-metrics-")


def _json_logging() -> dict[str, Any]:
    """gunicorn's own logging, plus the platform's loggers as JSON lines on stderr."""
    from gunicorn.glogging import CONFIG_DEFAULTS

    config = json.loads(json.dumps(CONFIG_DEFAULTS))
    config["formatters"]["json_lines"] = {"()": "webapp.ops.logs.JsonLineFormatter"}
    config["handlers"]["json_console"] = {
        "class": "logging.StreamHandler",
        "formatter": "json_lines",
        "stream": "ext://sys.stderr",
    }
    # gunicorn's own lines stay as gunicorn writes them (not twice); requests are the
    # reverse proxy's to log (its access log), so gunicorn's access log is off.
    config["loggers"]["gunicorn.error"]["propagate"] = False
    config["loggers"]["gunicorn.access"] = {"level": "WARNING", "handlers": [], "propagate": False}
    config["root"] = {"level": "WARNING", "handlers": ["json_console"]}
    for name in ("webapp", "ichimai"):  # the platform's own loggers speak from INFO
        config["loggers"][name] = {"level": "INFO"}
    return dict(config)


logconfig_dict = _json_logging()


def on_starting(server: Any) -> None:
    """Before any worker starts: refuse an unsafe set-up once, with a clean message
    (rather than every worker failing to boot with a traceback)."""
    from webapp import config
    from webapp.deployment import refuse_many_workers_on_memory, refuse_unsafe

    settings = config.from_environment(os.path.join(os.getcwd(), "instance"))
    # webapp.scaled's factory takes its settings from ICHIMAI_SETTINGS (tests, benches).
    given = json.loads(os.environ.get("ICHIMAI_SETTINGS") or "{}")
    settings.update(given)
    if "SECRET_KEY" in given:  # one key for every worker, given with the settings
        settings["SECRET_KEY_FROM_ENV"] = True
    if not given:
        refuse_unsafe(settings)
    refuse_many_workers_on_memory(settings, int(server.cfg.workers))
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()


_STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGQUIT})


def post_fork(server: Any, worker: Any) -> None:
    """In the new worker, before it has signal handlers of its own: keep where a stop
    signal lands meanwhile. Until the worker's handlers are in, the master's handler
    (inherited with fork) answers a signal by queueing it on this process's copy of the
    master's queue, which no one reads: a SIGTERM sent just after a worker was
    respawned (a deploy right after a worker's restart) was lost, and that worker served
    on until the master killed it at the graceful timeout."""
    worker.signals_while_booting = server.SIG_QUEUE


def _stopped_while_booting(worker: Any) -> int | None:
    """The stop signal (TERM, INT, QUIT) that reached the worker before its handlers."""
    queued = getattr(worker, "signals_while_booting", None)
    found = None
    while queued is not None and not queued.empty():
        sig = queued.get_nowait()
        if sig in _STOP_SIGNALS:
            found = sig
    return found


def post_worker_init(worker: Any) -> None:
    """In each worker: on SIGTERM, close every WebSocket with 1001 at once, then let
    gunicorn's own handler stop the worker as usual. A stop signal that came while the
    worker booted (post_fork) is acted on now."""
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: Any) -> None:
        from webapp.ops.going_away import going_away_soon

        going_away_soon()
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)
    signal.siginterrupt(signal.SIGTERM, False)  # as gunicorn has it: requests go on
    early = _stopped_while_booting(worker)
    if early is not None:
        worker.log.info(
            "Worker told to stop while booting (%s): stopping", signal.Signals(early).name
        )
        on_sigterm(signal.SIGTERM, None)


def worker_exit(server: Any, worker: Any) -> None:
    """The worker has stopped serving: leave now. Its sockets are closed and its
    requests done; what is left is the interpreter's own teardown (collecting the
    heap, a second or two of CPU per worker on a busy machine), which nothing needs.
    The lookup counts this worker holds are written first (os._exit runs no atexit)."""
    import logging
    import sys

    from webapp.identity import counts

    try:
        counts.flush()
    except Exception:
        logging.getLogger("webapp").exception("lookup counts lost at worker exit")

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def child_exit(server: Any, worker: Any) -> None:
    """A worker is gone: its live gauges (bridges online) stop counting."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    """The master stops: remove the metrics directory this file made."""
    if _OWN_METRICS_DIR:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
