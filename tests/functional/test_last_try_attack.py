"""No sequence of requests locks a card left on the reader (rule 5, "never lock a card").

The attacker here is a script holding what a counter tab holds: a signed-in staff
member's cookies (two sessions, so two flows can race) and the bridge's sealing key
(every PIN prompt names it). It talks to a live platform over real HTTP and WebSocket,
in any order, in parallel, twice, with prompts saved from earlier, with envelopes it
sealed itself for command ids it made up, with `confirm_last_try` always on. It never
knows the citizen's PIN. The card sits on a vpcd reader of the session's pcscd, served
by a real bridge (PC/SC mode); nobody takes it off. Whatever the script does, the card
keeps at least one try: the last one needs the card to leave the reader and come back,
which only a person's hand does.

A scripted battery first (the attacks one would try by hand, from 3 tries down to the
last), then a Hypothesis state machine that interleaves them at random.
"""

from __future__ import annotations

import http.cookiejar
import json
import re
import secrets
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import websocket
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from bridge.readers import PcscReaders
from bridge.seal import SealContext, seal_pin
from bridge.vcard.cardfile import CardFile, card_data_from_issued
from bridge.vcard.jlis import DemoJLIS
from bridge.vcard.pcscd_harness import AttachedCard, Pcscd
from tests.fixtures.cardflow import platform_config
from webapp import db
from webapp.providers.models import Provider
from webapp.staff.models import Role
from webapp.staff.services import create_staff
from webapp.terminals.testing import BridgeThread, LivePlatform

PIN = "1234"  # the citizen's; the script never sends it
STAFF = ("rogue", "a staff member gone bad")


class Tab:
    """One browser session as a script drives it: real HTTP with its own cookie jar."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.csrf = ""
        self.prompts: list[dict[str, Any]] = []  # every prompt this tab has seen
        self.sent: list[dict[str, Any]] = []  # every completion body it sent

    def request(self, method: str, path: str, body: Any = None, form: bool = False) -> Any:
        data, headers = None, {"Accept": "application/json", "X-CSRFToken": self.csrf}
        if form:
            data = urllib.parse.urlencode(body).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.url + path, data, headers, method=method)  # noqa: S310
        try:
            with self.opener.open(request, timeout=30) as response:
                text = response.read().decode()
                status = response.status
        except urllib.error.HTTPError as error:
            text, status = error.read().decode(), error.code
        try:
            payload = json.loads(text)
        except ValueError:
            payload = text
        if isinstance(payload, dict):
            found = payload.get("pin") or (payload.get("error") or {}).get("pin")
            if isinstance(found, dict):
                self.prompts.append(found)
        return status, payload

    def sign_in(self, terminal: int) -> None:
        _, page = self.request("GET", "/staff/login")
        self.csrf = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page)[1]
        login, password = STAFF
        self.request(
            "POST",
            "/staff/login",
            {"login": login, "password": password, "csrf_token": self.csrf},
            form=True,
        )
        _, page = self.request("GET", "/counter/")
        self.csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', page)[1]
        self.request("POST", f"/counter/open/{terminal}", {"csrf_token": self.csrf}, form=True)
        _, page = self.request("GET", "/counter/")
        assert 'id="counter"' in page, "the counter did not open"

    def complete(self, prompt: dict[str, Any], *, command_id: str | None = None) -> Any:
        """A wrong PIN sealed to the prompt's bridge key (or for a made-up command id)."""
        wrong = f"{secrets.randbelow(10_000):04d}"
        while wrong == PIN:
            wrong = f"{secrets.randbelow(10_000):04d}"
        command = command_id or prompt["command_id"]
        body = {
            "sealed": seal_pin(
                prompt["seal_public_key"], wrong, SealContext(prompt["bridge_id"], command)
            ),
            "command_id": command,
            "confirm_last_try": True,
        }
        self.sent.append(body)
        return self.request("POST", "/flow/pin/complete", body)

    def listen(self, messages: int = 2) -> list[Any]:
        """Open /ws/terminal with this session's cookie, read a little, close."""
        cookie = "; ".join(f"{c.name}={c.value}" for c in self.jar)
        ws = websocket.create_connection(
            self.url.replace("http", "ws") + "/ws/terminal", cookie=cookie, timeout=5
        )
        try:
            return [json.loads(ws.recv()) for _ in range(messages)]
        except websocket.WebSocketTimeoutException:
            return []
        finally:
            ws.close()


@dataclass
class Counter:
    """A PIN-mode counter with a real bridge on a vpcd reader, and a card on it."""

    platform: LivePlatform
    pcscd: Pcscd
    terminal: int
    jlis: DemoJLIS
    tmp: Path
    tabs: list[Tab] = field(default_factory=list)
    card_path: Path | None = None
    attached: AttachedCard | None = None

    def place(self, tries: int = 3) -> Path:
        """A fresh card with `tries` left, placed on the reader (and left there)."""
        if self.attached is not None:
            self.attached.remove()
        path = self.tmp / f"card-{secrets.token_hex(3)}.json"
        data = card_data_from_issued(self.jlis.issue(), pin=PIN, sign_password="ABC123")
        data.auth_pin.tries_left = tries
        CardFile.create(path, data)
        self.attached = self.pcscd.attach(path, self.pcscd.readers[1])
        self.card_path = path
        return path

    def tries(self) -> int:
        """The card's own count (from its persisted state)."""
        assert self.card_path is not None
        return int(CardFile.load(self.card_path).data.auth_pin.tries_left)


@pytest.fixture
def counter(pcscd: Pcscd, private_jlis: DemoJLIS, tmp_path: Path) -> Iterator[Counter]:
    extra = {**platform_config(private_jlis), "WTF_CSRF_ENABLED": True}
    with LivePlatform(tmp_path, extra=extra) as platform:
        terminal = platform.terminal("Counter 1", kind="counter")
        with platform.app.app_context(), db.new_session() as s:
            provider = s.get(Provider, platform.provider())
            assert provider is not None
            provider.counter_settings = {"mode": "A", "pin_required": True}
            s.commit()
            create_staff(s, STAFF[0], STAFF[1], Role.COUNTER_STAFF, provider.id)
        identity = platform.pair_bridge(tmp_path / "bridge-home", terminal)
        reader = pcscd.readers[1]
        bridge = BridgeThread(
            identity, PcscReaders(only=reader.name), backoff_base=0.05, backoff_cap=0.2
        ).start()
        platform.wait_ready(terminal)
        made = Counter(platform, pcscd, terminal, private_jlis, tmp_path)
        for _ in range(2):
            tab = Tab(platform.url)
            tab.sign_in(terminal)
            made.tabs.append(tab)
        try:
            yield made
        finally:
            if made.attached is not None:
                made.attached.remove()
            bridge.stop()


def parallel(*calls: Any) -> list[Any]:
    """Run the calls at once (threads released together)."""
    start = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int, call: Any) -> None:
        start.wait()
        results[i] = call()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def wait_for_card(counter: Counter, tab: Tab) -> None:
    for _ in range(200):
        status, body = tab.request("GET", "/terminal/status")
        if status == 200 and body.get("card"):
            return
        threading.Event().wait(0.05)
    raise AssertionError("the card never showed on the counter")


def test_a_script_with_the_staff_cookie_cannot_lock_the_card(counter: Counter) -> None:
    a, b = counter.tabs
    counter.place(tries=3)
    wait_for_card(counter, a)
    # Down to the last try the honest way (two wrong PINs), then every trick for the last.
    status, reply = a.request("POST", "/flow/begin", {"purpose": "counter_lookup"})
    assert status == 200, reply
    status, wrong = a.complete(reply["pin"])
    assert wrong["error"]["code"] == "wrong_pin" and counter.tries() == 2
    status, retap = a.complete(wrong["error"]["pin"])
    assert retap["error"]["code"] == "pin_retap" and counter.tries() == 1
    for tab in (a, b):
        for purpose, extra in (("counter_lookup", {}), ("counter_link", {"number": "20240001"})):
            status, reply = tab.request(
                "POST", "/flow/begin", {"purpose": purpose, "terms_accepted": True, **extra}
            )
            assert status == 409 and reply["error"]["code"] == "pin_retap", reply
        assert tab.request("POST", "/flow/pin/begin")[1]["error"]["code"] == "pin_retap"
    # Every prompt ever seen, with made-up command ids too, all at once, twice.
    prompts = a.prompts + b.prompts
    attempts = [lambda p=p: a.complete(p) for p in prompts]
    attempts += [
        lambda p=p: b.complete(p, command_id="forged-" + secrets.token_hex(4)) for p in prompts
    ]
    attempts += [lambda body=body: b.request("POST", "/flow/pin/complete", body) for body in a.sent]
    for _ in range(2):
        for status, _reply in parallel(*attempts):
            assert status >= 400
    a.listen()
    b.request("POST", "/flow/cancel")
    assert a.request("GET", "/terminal/status")[0] == 200
    assert counter.tries() == 1  # the last try was never spent
    # A person takes the card off and puts it back: now the last try may be used (once).
    counter.attached.process.terminate()  # type: ignore[union-attr]
    counter.attached.remove()  # type: ignore[union-attr]
    counter.attached = counter.pcscd.attach(counter.card_path, counter.pcscd.readers[1])  # type: ignore[arg-type]
    wait_for_card(counter, a)
    status, reply = a.request("POST", "/flow/begin", {"purpose": "counter_lookup"})
    assert status == 200 and reply["pin"]["last_try"], reply


def test_the_bridge_alone_holds_the_last_try(
    counter: Counter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As if the platform were broken (it prompts for the last try whatever the bridge
    says), the bridge still sends no VERIFY at one try left without a re-tap."""
    from webapp.cardflow import machine

    original = machine._HANDLERS[machine.PinPrompted]

    def careless(flow: machine.Flow, event: machine.PinPrompted) -> None:
        armed = machine.PinPrompted(
            event.tries_left, True, event.command_id, event.bridge_id, event.seal_key, event.nonce
        )
        original(flow, armed)

    monkeypatch.setitem(machine._HANDLERS, machine.PinPrompted, careless)
    a, b = counter.tabs
    counter.place(tries=2)
    wait_for_card(counter, a)
    status, reply = a.request("POST", "/flow/begin", {"purpose": "counter_lookup"})
    status, wrong = a.complete(reply["pin"])
    assert wrong["error"]["code"] == "wrong_pin" and counter.tries() == 1
    last = wrong["error"]["pin"]
    assert last["last_try"]  # the broken platform offers the last try...
    for status, body in parallel(
        lambda: a.complete(last), lambda: b.complete(last), lambda: a.complete(last)
    ):
        assert status >= 400, body
    status, again = b.request("POST", "/flow/begin", {"purpose": "counter_lookup"})
    status, refused = b.complete(again["pin"])
    assert refused["error"]["code"] == "pin_retap"  # ...the bridge refuses it
    assert counter.tries() == 1


class Attack(RuleBasedStateMachine):
    """Random interleavings of everything the script can send; the card never locks."""

    counter: Counter

    def __init__(self) -> None:
        super().__init__()
        self.counter.place(tries=3)
        wait_for_card(self.counter, self.counter.tabs[0])
        for tab in self.counter.tabs:
            tab.prompts.clear()
            tab.sent.clear()

    def tab(self, i: int) -> Tab:
        return self.counter.tabs[i]

    @rule(i=st.integers(0, 1), purpose=st.sampled_from(["counter_lookup", "counter_link"]))
    def begin(self, i: int, purpose: str) -> None:
        body = {"purpose": purpose, "number": "20240001", "terms_accepted": True}
        self.tab(i).request("POST", "/flow/begin", body)

    @rule(i=st.integers(0, 1))
    def prompt(self, i: int) -> None:
        self.tab(i).request("POST", "/flow/pin/begin")

    @rule(i=st.integers(0, 1), which=st.integers(0, 20), forge=st.booleans())
    def complete(self, i: int, which: int, forge: bool) -> None:
        prompts = self.tab(0).prompts + self.tab(1).prompts
        if prompts:
            command = f"forged-{which}" if forge else None
            self.tab(i).complete(prompts[-1 - which % len(prompts)], command_id=command)

    @rule()
    def burst(self) -> None:
        prompts = (self.tab(0).prompts + self.tab(1).prompts)[-3:]
        calls = [lambda t=t, p=p: t.complete(p) for p in prompts for t in self.counter.tabs]
        if calls:
            parallel(*calls)

    @rule(i=st.integers(0, 1))
    def replay(self, i: int) -> None:
        for body in self.tab(1 - i).sent[-2:]:
            self.tab(i).request("POST", "/flow/pin/complete", body)

    @rule(i=st.integers(0, 1))
    def cancel(self, i: int) -> None:
        self.tab(i).request("POST", "/flow/cancel")

    @rule(i=st.integers(0, 1))
    def listen(self, i: int) -> None:
        self.tab(i).listen(1)

    @invariant()
    def the_card_keeps_a_try(self) -> None:
        assert self.counter.tries() >= 1


def test_random_interleavings_never_lock_the_card(counter: Counter) -> None:
    Attack.counter = counter
    state = Attack.TestCase
    state.settings = settings(max_examples=6, stateful_step_count=15, deadline=None)
    state().runTest()
