"""The demo's virtual reader panel (/demo/reader): tap and remove demo cards per terminal.

Demo mode only: the blueprint is registered only when DEMO_MODE is on, and answers 404
unless the demo runner (webapp/demo.py) attached a `DemoReaders` to the app, or serves
them on the bus to the workers of a scaled deployment (`DemoReaders.serve`). In PC/SC mode
a tap inserts the card file into that terminal's vpcd reader (the real PC/SC path through
pcscd and the bridge); in the `--sim` fallback it restarts the terminal's bridge with
the card.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from flask import Blueprint, abort, current_app, redirect, render_template, url_for
from flask.typing import ResponseReturnValue

from .bus import Bus, BusError, Subscription, get_bus

bp = Blueprint("demo_reader", __name__, url_prefix="/demo")
# The demo runner serves its readers on this bus channel: with several workers (gunicorn),
# the panel of whichever worker answers taps the cards of the runner's process.
DEMO_CHANNEL = "demo.readers"
DEMO_TIMEOUT = 30.0


class ReaderSlot(Protocol):
    """One terminal's reader: a card can be put on it and taken off."""

    def put(self, card: Path) -> None:
        """Put the card file on the reader (the previous card was taken off)."""
        ...

    def take(self) -> None:
        """Take the card off the reader (nothing if empty)."""
        ...


@dataclass(frozen=True)
class DemoCardInfo:
    """A demo card: its file and how the panel names it."""

    name: str
    label_ja: str
    label_en: str
    path: Path


@dataclass
class DemoTerminal:
    """A terminal as the panel shows it."""

    terminal_id: int
    kind: str
    name: str
    slot: ReaderSlot
    card: str | None = None


class DemoReaders:
    """The demo's cards and the terminals' readers; one card is in one reader at a time.

    Every reader operation runs on one long-lived worker thread, whoever asks: a card
    process is started with PR_SET_PDEATHSIG (it must not outlive the demo), and Linux
    sends that signal when the *thread* that forked it ends, so a card tapped from a
    short-lived werkzeug request thread would leave the reader as soon as the request
    was answered.
    """

    def __init__(
        self,
        cards: list[DemoCardInfo],
        terminals: list[DemoTerminal],
        *,
        mode: str,
        revoke: Callable[[str], None] | None = None,
    ) -> None:
        self.cards = {c.name: c for c in cards}
        self.terminals = {t.terminal_id: t for t in terminals}
        self.mode = mode
        self._revoke = revoke
        self.revoked: set[str] = set()
        self._lock = threading.Lock()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="demo-readers")

    def tap(self, terminal_id: int, card: str | Path) -> None:
        """Put a demo card (by name, or any card file) on a terminal's reader."""
        self._worker.submit(self._tap, terminal_id, card).result()

    def remove(self, terminal_id: int) -> None:
        """Take the card off a terminal's reader."""
        self._worker.submit(self._remove, terminal_id).result()

    def _tap(self, terminal_id: int, card: str | Path) -> None:
        path = self.cards[card].path if isinstance(card, str) else Path(card)
        name = card if isinstance(card, str) else path.stem
        with self._lock:
            for other in self.terminals.values():
                if other.card is not None and (
                    other.card == name or other.terminal_id == terminal_id
                ):
                    other.slot.take()
                    other.card = None
            target = self.terminals[terminal_id]
            target.slot.put(path)
            target.card = name

    def _remove(self, terminal_id: int) -> None:
        with self._lock:
            target = self.terminals[terminal_id]
            target.slot.take()
            target.card = None

    def revoke(self, card: str) -> None:
        """Report a demo card lost: revoke its certificate (the CRL is refreshed)."""
        if self._revoke is None:
            raise RuntimeError("revocation not wired")
        self._revoke(card)
        self.revoked.add(card)

    def close(self) -> None:
        """Take every card off and stop the worker thread."""
        for terminal in list(self.terminals):
            self.remove(terminal)
        self._worker.shutdown()

    def view(self) -> dict[str, Any]:
        """The panel's state as JSON (for workers that reach the readers over the bus)."""
        return {
            "mode": self.mode,
            "cards": [
                {"name": c.name, "label_ja": c.label_ja, "label_en": c.label_en}
                for c in self.cards.values()
            ],
            "terminals": [
                {"terminal_id": t.terminal_id, "kind": t.kind, "name": t.name, "card": t.card}
                for t in self.terminals.values()
            ],
            "revoked": sorted(self.revoked),
        }

    def serve(self, bus: Bus) -> Subscription:
        """Answer the panel of every worker (gunicorn, several processes) on the bus."""

        def handle(message: dict[str, Any]) -> dict[str, Any]:
            op, terminal, card = message.get("op"), message.get("terminal"), message.get("card")
            if op == "tap" and terminal in self.terminals and card in self.cards:
                self.tap(int(terminal), str(card))
            elif op == "remove" and terminal in self.terminals:
                self.remove(int(terminal))
            elif op == "revoke" and card in self.cards:
                self.revoke(str(card))
            return self.view()

        return bus.serve(DEMO_CHANNEL, handle)


class RemoteDemoReaders:
    """The demo readers of the demo runner's process, as a worker's panel sees them."""

    def __init__(self, bus: Bus, view: dict[str, Any]) -> None:
        self.bus = bus
        self._apply(view)

    @classmethod
    def fetch(cls, bus: Bus) -> RemoteDemoReaders | None:
        """The readers, if the demo runner serves them (None: not a demo runner's platform)."""
        try:
            return cls(bus, bus.request(DEMO_CHANNEL, {"op": "view"}, DEMO_TIMEOUT))
        except BusError:
            return None

    def _apply(self, view: dict[str, Any]) -> None:
        self.mode = str(view.get("mode", ""))
        self.cards = {
            c["name"]: DemoCardInfo(c["name"], c["label_ja"], c["label_en"], Path())
            for c in view.get("cards", [])
        }
        self.terminals = {
            t["terminal_id"]: DemoTerminal(
                t["terminal_id"], t["kind"], t["name"], _NoSlot(), t["card"]
            )
            for t in view.get("terminals", [])
        }
        self.revoked = set(view.get("revoked", []))

    def _ask(self, **message: Any) -> None:
        self._apply(self.bus.request(DEMO_CHANNEL, message, DEMO_TIMEOUT))

    def tap(self, terminal_id: int, card: str) -> None:
        """Put a demo card on a terminal's reader."""
        self._ask(op="tap", terminal=terminal_id, card=card)

    def remove(self, terminal_id: int) -> None:
        """Take the card off a terminal's reader."""
        self._ask(op="remove", terminal=terminal_id)

    def revoke(self, card: str) -> None:
        """Report a demo card lost."""
        self._ask(op="revoke", card=card)


class _NoSlot:
    """A reader slot held by another process (only its state is shown here)."""

    def put(self, card: Path) -> None:
        raise RuntimeError("the reader is the demo runner's")

    def take(self) -> None:
        raise RuntimeError("the reader is the demo runner's")


def _readers() -> DemoReaders | RemoteDemoReaders:
    if not current_app.config.get("DEMO_MODE"):
        abort(404)
    readers = current_app.extensions.get("demo_readers")
    if readers is not None:
        return readers  # type: ignore[no-any-return]
    remote = RemoteDemoReaders.fetch(get_bus(current_app))
    if remote is None:
        abort(404)
    return remote


@bp.get("/reader")
def panel() -> ResponseReturnValue:
    """Per terminal: tap each demo card, or remove the card."""
    readers = _readers()
    return render_template("demo/reader.html", readers=readers)


@bp.post("/reader/<int:terminal_id>/tap/<card>")
def tap(terminal_id: int, card: str) -> ResponseReturnValue:
    """Tap a demo card on a terminal's reader."""
    readers = _readers()
    if terminal_id not in readers.terminals or card not in readers.cards:
        abort(404)
    readers.tap(terminal_id, card)
    return redirect(url_for(".panel"))


@bp.post("/reader/<int:terminal_id>/remove")
def remove(terminal_id: int) -> ResponseReturnValue:
    """Take the card off a terminal's reader."""
    readers = _readers()
    if terminal_id not in readers.terminals:
        abort(404)
    readers.remove(terminal_id)
    return redirect(url_for(".panel"))


@bp.post("/reader/cards/<card>/revoke")
def revoke(card: str) -> ResponseReturnValue:
    """Report a demo card lost (its certificate goes on the demo CRL)."""
    readers = _readers()
    if card not in readers.cards:
        abort(404)
    readers.revoke(card)
    return redirect(url_for(".panel"))


@bp.post("/kiosk/<int:terminal_id>")
def open_kiosk(terminal_id: int) -> ResponseReturnValue:
    """Demo shortcut: open a kiosk terminal in this browser without an admin sign-in."""
    from . import db
    from .cardflow.binding import bind_kiosk
    from .terminals.models import Terminal, TerminalKind

    readers = _readers()
    terminal = db.session().get(Terminal, terminal_id)
    if terminal is None or terminal_id not in readers.terminals:
        abort(404)
    if terminal.kind != TerminalKind.KIOSK:
        abort(400)
    bind_kiosk(terminal)
    return redirect(url_for("kiosk.index"))


def init_app(app: Any) -> None:
    """Register the panel in demo mode only (404 everywhere else)."""
    if app.config.get("DEMO_MODE"):
        app.register_blueprint(bp)
