"""static/js/seal.js in Debian's Chromium, opened by bridge/seal.py: the real pairing.

The page and the module come from a tiny HTTP server on 127.0.0.1 (a secure context,
which WebCrypto needs; about:blank may not be one).
"""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from bridge.seal import (
    SealContext,
    SealError,
    SecretContext,
    b64u_decode,
    b64u_encode,
    generate_device_key,
    open_sealed_pin,
    open_sealed_secret,
    public_key_b64u,
    sip2_target,
)

pytestmark = pytest.mark.e2e

STATIC = Path(__file__).resolve().parents[3] / "static"
CHROMIUM = "/usr/bin/chromium"
PAGE = b"<!doctype html><meta charset=utf-8><title>seal</title><p>seal test</p>"


class _Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/":
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(PAGE)))
            self.end_headers()
            self.wfile.write(PAGE)
            return
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output quiet


@pytest.fixture(scope="module")
def origin() -> Iterator[str]:
    handler = functools.partial(_Handler, directory=str(STATIC))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def page(origin: str) -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page()
        page.goto(origin + "/")
        assert page.evaluate("window.isSecureContext")
        yield page
        browser.close()


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return generate_device_key()


SEAL_JS = """async ([pub, pin, ctx]) => {
  const m = await import("/js/seal.js");
  return await m.sealPin(pub, pin, ctx);
}"""


def seal_in_browser(page: Any, key: ec.EllipticCurvePrivateKey, pin: str, ctx: SealContext) -> Any:
    context = {"bridgeId": ctx.bridge_id, "commandId": ctx.command_id}
    return page.evaluate(SEAL_JS, [public_key_b64u(key.public_key()), pin, context])


CTX = SealContext("bridge-7f3a", "cmd-0001")


def test_python_opens_what_the_browser_sealed(page: Any, key: ec.EllipticCurvePrivateKey) -> None:
    envelope = seal_in_browser(page, key, "0427", CTX)
    assert set(envelope) == {"v", "epk", "salt", "iv", "ct"}
    assert envelope["v"] == 1
    assert [len(b64u_decode(envelope[k])) for k in ("epk", "salt", "iv", "ct")] == [65, 16, 12, 20]
    assert open_sealed_pin(key, envelope, CTX) == "0427"


def test_many_pins_and_unicode_ids(page: Any, key: ec.EllipticCurvePrivateKey) -> None:
    ctx = SealContext("図書館-橋-01", "コマンド-" + "x" * 200)
    for pin in ("0000", "9999", "1234", "5071", "8888", "0420", "3141", "2718"):
        assert open_sealed_pin(key, seal_in_browser(page, key, pin, ctx), ctx) == pin


def test_context_bytes_match(page: Any) -> None:
    ctx = SealContext("図書館-橋", "cmd-ü-1")
    js = page.evaluate(
        """async ([b, c]) => {
          const m = await import("/js/seal.js");
          return Array.from(m.contextBytes({bridgeId: b, commandId: c}));
        }""",
        [ctx.bridge_id, ctx.command_id],
    )
    assert bytes(js) == ctx.encode()


def flip(text: str, index: int = 0) -> str:
    raw = bytearray(b64u_decode(text))
    raw[index] ^= 0x80
    return b64u_encode(bytes(raw))


@pytest.mark.parametrize(
    "tamper",
    [
        lambda e: {**e, "ct": flip(e["ct"])},
        lambda e: {**e, "ct": flip(e["ct"], -1)},
        lambda e: {**e, "iv": flip(e["iv"])},
        lambda e: {**e, "salt": flip(e["salt"])},
        lambda e: {**e, "epk": flip(e["epk"], 40)},
    ],
    ids=["ciphertext", "tag", "iv", "salt", "epk"],
)
def test_tampered_browser_envelope_is_refused(
    page: Any, key: ec.EllipticCurvePrivateKey, tamper: Any
) -> None:
    envelope = seal_in_browser(page, key, "0427", CTX)
    with pytest.raises(SealError):
        open_sealed_pin(key, tamper(envelope), CTX)


@pytest.mark.parametrize(
    "other",
    [
        SealContext("bridge-other", "cmd-0001"),
        SealContext("bridge-7f3a", "cmd-0002"),
        SealContext("bridge-7f3acmd", "-0001"),
    ],
    ids=["other-bridge", "other-command", "same-concatenation"],
)
def test_browser_seal_is_bound_to_its_context(
    page: Any, key: ec.EllipticCurvePrivateKey, other: SealContext
) -> None:
    envelope = seal_in_browser(page, key, "0427", CTX)
    with pytest.raises(SealError):
        open_sealed_pin(key, envelope, other)
    with pytest.raises(SealError):
        open_sealed_pin(generate_device_key(), envelope, CTX)


@pytest.mark.parametrize("pin", ["123", "12345", "12a4", "１２３４", ""])
def test_browser_refuses_a_bad_pin(page: Any, key: ec.EllipticCurvePrivateKey, pin: str) -> None:
    from playwright.sync_api import Error

    with pytest.raises(Error, match="PIN must be 4 digits"):
        seal_in_browser(page, key, pin, CTX)


def test_browser_refuses_a_bad_public_key(page: Any) -> None:
    from playwright.sync_api import Error

    with pytest.raises(Error):
        page.evaluate(SEAL_JS, ["AAAA", "1234", {"bridgeId": "b", "commandId": "c"}])


# -- sealed secrets (library passwords) ------------------------------------------------

SECRET_JS = """async ([pub, secret, ctx]) => {
  const m = await import("/js/seal.js");
  return await m.sealSecret(pub, secret, ctx);
}"""


def seal_secret_in_browser(
    page: Any, key: ec.EllipticCurvePrivateKey, secret: str, ctx: SecretContext
) -> Any:
    context = {"bridgeId": ctx.bridge_id, "purpose": ctx.purpose, "binding": ctx.binding}
    return page.evaluate(SECRET_JS, [public_key_b64u(key.public_key()), secret, context])


@pytest.mark.parametrize("secret", ["x", "s3cret!", "パスワード", "a" * 63, "p|w d\\"])
def test_python_opens_a_secret_the_browser_sealed(
    page: Any, key: ec.EllipticCurvePrivateKey, secret: str
) -> None:
    ctx = SecretContext("bridge-7f3a", "sip2-login", sip2_target("ILS.local", 6001, True))
    envelope = seal_secret_in_browser(page, key, secret, ctx)
    assert [len(b64u_decode(envelope[k])) for k in ("epk", "salt", "iv", "ct")] == [65, 16, 12, 80]
    assert open_sealed_secret(key, envelope, ctx) == secret
    for other in (
        SecretContext("bridge-7f3a", "sip2-patron", ctx.binding),
        SecretContext("bridge-7f3a", "sip2-login", sip2_target("ils.local", 6001, False)),
    ):
        with pytest.raises(SealError):
            open_sealed_secret(key, envelope, other)
    with pytest.raises(SealError):
        open_sealed_pin(key, envelope, CTX)


def test_secret_context_bytes_and_target_match(page: Any) -> None:
    ctx = SecretContext("図書館-橋", "sip2-patron", "cmd-ü-1")
    js = page.evaluate(
        """async ([b, p, c]) => {
          const m = await import("/js/seal.js");
          return [Array.from(m.secretContextBytes({bridgeId: b, purpose: p, binding: c})),
                  m.sip2Target("ILS.Example.JP", 6001, true), m.sip2Target("h", "7", false)];
        }""",
        [ctx.bridge_id, ctx.purpose, ctx.binding],
    )
    assert bytes(js[0]) == ctx.encode()
    assert js[1:] == [sip2_target("ILS.Example.JP", 6001, True), sip2_target("h", 7, False)]


@pytest.mark.parametrize("secret", ["", "a" * 64, "あ" * 22])
def test_browser_refuses_a_bad_secret(
    page: Any, key: ec.EllipticCurvePrivateKey, secret: str
) -> None:
    from playwright.sync_api import Error

    with pytest.raises(Error, match="1-63 bytes"):
        seal_secret_in_browser(page, key, secret, SecretContext("b", "sip2-patron", "c"))


def test_browser_refuses_an_unknown_purpose(page: Any, key: ec.EllipticCurvePrivateKey) -> None:
    from playwright.sync_api import Error

    with pytest.raises(Error, match="unknown purpose"):
        page.evaluate(
            SECRET_JS,
            [
                public_key_b64u(key.public_key()),
                "x",
                {"bridgeId": "b", "purpose": "pin", "binding": "c"},
            ],
        )
