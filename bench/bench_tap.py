"""tap_to_number: card on the counter's reader -> the library's number in the counter tab.

The whole product path, at a real card's pace: a virtual card (per-APDU delay and
signature time from the card file: a real My Number Card answers a READ BINARY in
~10-15 ms) inserted into a vpcd reader of a private pcscd; the bridge (PC/SC mode, in
this process, the same code as `python -m bridge run`) sees it and tells the platform;
the platform (the worker holding the bridge) reads the certificate through the bridge in
one batch at once, verifies it (chain, validity, CRL), looks the number up and pushes it
on /ws/terminal to the counter tab in Debian's Chromium, which asks nothing and shows
it. Measured from the moment pcscd first reports the card (a
blocking SCardGetStatusChange, as the bridge's monitor uses) to the tab's own Date.now()
when its state becomes "result:A" (a MutationObserver in the page; same machine clock).

Baseline: the same APDUs sent by raw pyscard (SCardConnect + SCardTransmit) from the
same moment, at the same pace: what the card itself costs. Medians over RUNS taps.

    python -m bench.bench_tap [RUNS] [--apdu-delay S] [--signature-time S]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.run import emit
from bridge import jpki
from bridge.apdu import Response
from bridge.readers import PcscReaders
from bridge.transport import Batch, Transport, drive
from bridge.transports.pcsc import PcscTransport
from bridge.vcard.cardfile import CardFile, card_data_from_issued
from bridge.vcard.jlis import DemoJLIS
from bridge.vcard.pcscd_harness import AttachedCard, Pcscd, VirtualReader

RUNS = 10
WARMUP = 2
NUMBER = "20240001"
PIN = "1234"
PASSWORD = "ABC123"  # noqa: S105 - the fake card's demo signing password
STAFF = ("bench-librarian", "bench counter password")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
OBSERVER = """() => {
  window.__resultAt = null;
  const root = document.getElementById("counter");
  new MutationObserver(() => {
    const shown = root.dataset.state === "result:A";
    if (shown && window.__resultAt === null) window.__resultAt = Date.now();
  }).observe(root, { attributes: true, attributeFilter: ["data-state"] });
}"""


class Recorder:
    """A transport wrapper that records the bytes of every command actually sent."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.commands: list[bytes] = []

    def transmit(self, batch: Batch) -> list[Response]:
        """Send through the wrapped transport; record the commands that got an answer."""
        responses = self.inner.transmit(batch)
        self.commands += [step.command.encode() for step in batch[: len(responses)]]
        return responses


def insert(pcscd: Pcscd, card: Path, reader: VirtualReader) -> tuple[AttachedCard, float]:
    """Insert the card; (the attached card, time.time() when pcscd first reported it).

    The card process is started from this thread (the harness ties its life to the
    thread that started it); a helper thread waits on pcscd's change event meanwhile.
    """
    box: dict[str, float] = {}

    def watch() -> None:
        # Blocking SCardGetStatusChange: woken by pcscd's own change event, as the
        # bridge's pyscard monitor is (no polling delay on either side).
        from smartcard import scard

        rv, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        assert rv == scard.SCARD_S_SUCCESS
        states = [(reader.name, scard.SCARD_STATE_UNAWARE)]
        try:
            while "seen" not in box:
                rv, got = scard.SCardGetStatusChange(ctx, 15_000, states)
                name, event, _atr = got[0]
                if event & scard.SCARD_STATE_PRESENT:
                    box["seen"] = time.time()
                states = [(name, event & ~scard.SCARD_STATE_CHANGED)]
        finally:
            scard.SCardReleaseContext(ctx)

    watcher = threading.Thread(target=watch)
    watcher.start()
    attached = pcscd.attach(card, reader)
    watcher.join()
    return attached, box["seen"]


def raw_connect_and_send(reader: str, apdus: list[list[int]]) -> None:
    """SCardConnect and the APDUs, nothing else (the card's own cost)."""
    from smartcard import scard

    rv, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    assert rv == scard.SCARD_S_SUCCESS
    rv, handle, _ = scard.SCardConnect(
        ctx, reader, scard.SCARD_SHARE_SHARED, scard.SCARD_PROTOCOL_T1
    )
    assert rv == scard.SCARD_S_SUCCESS
    for apdu in apdus:
        rv, answer = scard.SCardTransmit(handle, scard.SCARD_PCI_T1, apdu)
        assert rv == scard.SCARD_S_SUCCESS and len(answer) >= 2, (hex(rv % 2**32), answer)
    scard.SCardDisconnect(handle, scard.SCARD_LEAVE_CARD)
    scard.SCardReleaseContext(ctx)


def baseline(pcscd: Pcscd, card: Path, reader: VirtualReader, runs: int) -> tuple[list[float], int]:
    """Raw pyscard times (ms) from the card's arrival, and the APDU count."""
    attached = pcscd.attach(card, reader)
    with PcscTransport(reader.name) as transport:
        recorder = Recorder(transport)
        drive(jpki.read_certificate(), recorder)
    attached.remove()
    apdus = [list(c) for c in recorder.commands]
    times = []
    for i in range(WARMUP + runs):
        attached, seen = insert(pcscd, card, reader)
        raw_connect_and_send(reader.name, apdus)
        done = time.time()
        attached.remove()
        if i >= WARMUP:
            times.append((done - seen) * 1000)
    return times, len(apdus)


def setup_platform(tmp: Path, jlis: DemoJLIS, card_der: bytes) -> tuple[Any, int]:
    """A live platform with a mode-A counter, a librarian, and the card linked."""
    from datetime import UTC, datetime

    from webapp import db
    from webapp.cardflow import verifier_for
    from webapp.identity import services as identity
    from webapp.providers.models import Provider
    from webapp.staff.models import Role
    from webapp.staff.services import create_staff
    from webapp.terminals.testing import LivePlatform

    extra = {
        "DEMO_MODE": True,
        "DEMO_JLIS_DIR": str(jlis.directory),
        "JPKI_CRL_SOURCES": [str(jlis.directory / "auth.crl")],
        "CARD_KEY_SECRET": "bench tap-to-number: 32+ bytes of secret",
    }
    platform = LivePlatform(tmp, extra=extra).__enter__()
    terminal = platform.terminal("Counter 1", kind="counter")
    with platform.app.app_context(), db.new_session() as s:
        provider = s.get(Provider, platform.provider())
        assert provider is not None
        provider.number_rule = {"min_length": 4, "max_length": 16}
        provider.counter_settings = {"mode": "A", "pin_required": False}
        s.commit()
        create_staff(s, STAFF[0], STAFF[1], Role.COUNTER_STAFF, provider.id)
        key = verifier_for(platform.app).identify(card_der).card_key
        mykey, _ = identity.open_or_create(s, key, datetime(2035, 1, 1, tzinfo=UTC))
        identity.link(s, mykey.id, provider, NUMBER, provider.terms_version)
    return platform, terminal


def product(
    pcscd: Pcscd,
    card: Path,
    reader: VirtualReader,
    tmp: Path,
    jlis: DemoJLIS,
    der: bytes,
    runs: int,
) -> list[float]:
    """Tap-to-number times (ms) through bridge, platform and the Chromium tab."""
    from playwright.sync_api import sync_playwright

    from webapp.terminals.testing import BridgeThread

    platform, terminal = setup_platform(tmp, jlis, der)
    identity = platform.pair_bridge(tmp / "bridge-home", terminal)
    bridge = BridgeThread(identity, PcscReaders(only=reader.name)).start()
    platform.wait_ready(terminal)
    times: list[float] = []
    steps: list[tuple[float, float]] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.goto(f"{platform.url}/staff/login?lang=en")
            page.fill("#login", STAFF[0])
            page.fill("#password", STAFF[1])
            page.click("button[type=submit]")
            page.goto(f"{platform.url}/counter/")
            page.click(f"form[action$='/open/{terminal}'] button")
            page.wait_for_selector("#reader-state[data-online='true']")
            page.evaluate(OBSERVER)
            for i in range(WARMUP + runs):
                page.evaluate("() => { window.__resultAt = null; }")
                attached, seen = insert(pcscd, card, reader)
                page.wait_for_function("() => window.__resultAt !== null", timeout=15_000)
                shown = page.evaluate("() => window.__resultAt") / 1000
                event = page.evaluate("() => window.counter.times.event") / 1000
                answer = page.evaluate("() => window.counter.times.answer") / 1000
                assert page.text_content("#result-number") == NUMBER
                attached.remove()
                page.wait_for_selector("#counter[data-state='removed_after_result']")
                if i >= WARMUP:
                    times.append((shown - seen) * 1000)
                    steps.append(((event - seen) * 1000, (answer - event) * 1000))
            browser.close()
    finally:
        bridge.stop()
        platform.stop()
    print(
        "tap_to_number: card -> tab's card_inserted event median "
        f"{statistics.median(s[0] for s in steps):.1f} ms; event -> number shown median "
        f"{statistics.median(s[1] for s in steps):.1f} ms",
        file=sys.stderr,
    )
    return times


def main(argv: list[str] | None = None) -> None:
    """Measure and print the tap_to_number line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="?", type=int, default=RUNS)
    parser.add_argument("--apdu-delay", type=float, default=0.012, help="seconds per APDU")
    parser.add_argument("--signature-time", type=float, default=0.35, help="seconds")
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="ichimai-bench-tap-") as name,
        Pcscd(readers=1) as pcscd,
    ):
        tmp = Path(name)
        jlis = DemoJLIS.init(tmp / "ca")
        issued = jlis.issue()
        card = tmp / "card.json"
        data = card_data_from_issued(
            issued,
            pin=PIN,
            sign_password=PASSWORD,
            apdu_delay_s=args.apdu_delay,
            signature_time_s=args.signature_time,
        )
        CardFile.create(card, data)
        reader = pcscd.free_reader()
        raw, count = baseline(pcscd, card, reader, args.runs)
        ours = product(pcscd, card, reader, tmp, jlis, issued.auth_cert_der, args.runs)
    value, base = statistics.median(ours), statistics.median(raw)
    print(
        f"tap_to_number: {count} APDUs at {args.apdu_delay * 1000:g} ms each, {args.runs} taps; "
        f"ours min/median/max {min(ours):.1f}/{value:.1f}/{max(ours):.1f} ms, "
        f"raw {min(raw):.1f}/{base:.1f}/{max(raw):.1f} ms; to the tab's DOM",
        file=sys.stderr,
    )
    emit("tap_to_number", value, "ms", base)


if __name__ == "__main__":
    main()
