"""A tiny online shop of local products, separate from the platform: what a real shop
does with the checkout API (docs/checkout.md). `make demo` runs it on its own port
(webapp/demo.py); the tests run it too (tests/e2e/test_checkout_e2e.py).

It lists one product; *Buy* makes a checkout with the shop's API key and sends the
browser to the platform's checkout page; /return checks the signed result before it
believes it; /webhook checks the webhook's signature and its time, and takes each event
once; an order's page refunds part or all of it by the API. Orders live in memory.

Only the standard library talks to the platform (urllib, hmac): nothing here imports
the platform's code, as a shop would not.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, abort, redirect, render_template_string, request

WORDS = {"paid": "お支払いが完了しました (Paid)", "cancelled": "キャンセルしました (Cancelled)"}
PRICE = 300  # points, of the one product (いちまい米 2kg)
TOLERANCE = 300  # seconds: an older signed result or webhook is refused (a replay)

PAGE = """<!doctype html>
<html lang="ja"><head><meta charset="utf-8"><title>{{ title }} | {{ shop }}</title>
<link rel="stylesheet" href="/static/shop.css"></head>
<body><header><a href="/">{{ shop }}</a> <small>(demo shop, not the platform)</small></header>
<main>{{ body|safe }}</main></body></html>"""

CSS = """body{font-family:sans-serif;max-width:46rem;margin:1rem auto;padding:0 1rem;color:#222}
header{border-bottom:2px solid #3a6;padding:.5rem 0;margin-bottom:1rem}
header a{font-weight:bold;color:#264;text-decoration:none;font-size:1.2rem}
.product{border:1px solid #ccc;border-radius:8px;padding:1rem;margin:1rem 0}
button{font-size:1rem;padding:.5rem 1rem}
.ok{background:#e6f4ea;border:1px solid #3a6;padding:.75rem}
.bad{background:#fdecea;border:1px solid #c33;padding:.75rem}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25rem .5rem}"""


@dataclass
class Order:
    """One order as the shop keeps it."""

    reference: str
    amount: int
    status: str = "awaiting payment"
    checkout: str = ""
    refunded: int = 0
    events: list[str] = field(default_factory=list)
    refunds: int = 0


@dataclass
class ShopState:
    """The shop's memory: its orders and the webhook events taken."""

    orders: dict[str, Order] = field(default_factory=dict)
    seen_events: set[str] = field(default_factory=set)
    bad_signatures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    numbers: Any = field(default_factory=lambda: itertools.count(1001))


def result_signature(
    secret: str, checkout: str, order: str, status: str, amount: str, ts: str
) -> str:
    """The return URL's signature, as the platform makes it (docs/checkout.md)."""
    message = "\n".join((checkout, order, status, amount, ts))
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def webhook_ok(secret: str, header: str, body: bytes, now: float | None = None) -> bool:
    """Whether the `Ichimai-Signature` header signs this body, recently."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        ts = int(parts.get("t", ""))
    except ValueError:
        return False
    if abs((now or time.time()) - ts) > TOLERANCE:
        return False
    expected = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", ""))


class PlatformError(Exception):
    """The platform refused a request; `body` is its JSON error."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status}: {body}")
        self.status, self.body = status, body


def create_shop(
    platform_url: str,
    api_key: str,
    signing_secret: str,
    shop_url: str,
    *,
    name: str = "いちまい市 物産オンラインショップ",
) -> Flask:
    """The shop app: it calls the platform at `platform_url` and lives at `shop_url`."""
    app = Flask("demo_shop", static_folder=None)
    state = ShopState()
    app.extensions["demo_shop"] = state

    def api(method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(  # noqa: S310  (the platform's own URL, from settings)
            f"{platform_url}/api/v1/shop{path}",
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as answer:  # noqa: S310
                return dict(json.load(answer))
        except urllib.error.HTTPError as exc:
            raise PlatformError(exc.code, json.load(exc)) from None

    def page(title: str, body: str, status: int = 200) -> tuple[str, int]:
        return render_template_string(PAGE, title=title, shop=name, body=body), status

    @app.get("/static/shop.css")
    def css() -> Any:
        return app.response_class(CSS, mimetype="text/css")

    @app.get("/")
    def index() -> Any:
        with state.lock:
            orders = list(state.orders.values())
        rows = "".join(
            render_template_string(
                '<tr><td><a href="/orders/{{ o.reference }}">{{ o.reference }}</a></td>'
                "<td>{{ o.amount }}</td><td data-status>{{ o.status }}</td>"
                "<td>{{ o.refunded }}</td></tr>",
                o=o,
            )
            for o in orders
        )
        body = render_template_string(
            """<h1>地域の産品</h1>
<div class="product"><h2>いちまい米 2kg</h2><p>{{ price }} ポイント</p>
<form method="post" action="/buy"><input type="hidden" name="sku" value="rice-2kg">
<button type="submit" id="buy">ポイントで買う (Buy with points)</button></form></div>
<h2>Orders</h2><table><tr><th>order</th><th>points</th><th>status</th><th>refunded</th></tr>
{{ rows|safe }}</table>""",
            rows=rows,
            price=PRICE,
        )
        return page("Shop", body)

    @app.post("/buy")
    def buy() -> Any:
        reference = f"order-{next(state.numbers)}"
        try:
            made = api(
                "POST",
                "/checkouts",
                {"amount": PRICE, "reference": reference, "return_url": f"{shop_url}/return"},
            )["checkout"]
        except PlatformError as exc:
            return page("Error", f'<p class="bad">{exc.body}</p>', 502)
        with state.lock:
            state.orders[reference] = Order(reference, PRICE, checkout=made["id"])
        return redirect(made["url"], code=303)

    @app.get("/return")
    def returned() -> Any:
        args = {k: request.args.get(k, "") for k in ("checkout", "order", "status", "amount", "ts")}
        expected = result_signature(signing_secret, *args.values())
        fresh = args["ts"].isdigit() and abs(time.time() - int(args["ts"])) <= TOLERANCE
        with state.lock:
            order = state.orders.get(args["order"])
            valid = (
                fresh
                and hmac.compare_digest(expected, request.args.get("sig", ""))
                and order is not None
                and order.checkout == args["checkout"]
                and str(order.amount) == args["amount"]
            )
            if valid and order is not None and order.status == "awaiting payment":
                order.status = args["status"]
        if not valid:
            return page(
                "Refused",
                '<p class="bad" id="result">The result is not signed by the platform: refused.</p>',
                400,
            )
        body = render_template_string(
            '<p class="ok" id="result" data-status="{{ s }}">{{ msg }}</p>'
            '<p>Order <a id="order-link" href="/orders/{{ o }}">{{ o }}</a></p>',
            s=args["status"],
            o=args["order"],
            msg={
                "paid": "お支払いが完了しました (Paid)",
                "cancelled": "キャンセルしました (Cancelled)",
            }.get(args["status"], args["status"]),
        )
        return page("Thank you", body)

    @app.post("/webhook")
    def webhook() -> Any:
        raw = request.get_data()
        if not webhook_ok(signing_secret, request.headers.get("Ichimai-Signature", ""), raw):
            with state.lock:
                state.bad_signatures += 1
            abort(400)
        event = json.loads(raw)
        with state.lock:
            if event["id"] in state.seen_events:
                return {"ok": True, "repeat": True}
            state.seen_events.add(event["id"])
            data = event["data"]
            order = state.orders.get(data["reference"])
            if order is not None and order.checkout == data["checkout"]:
                order.events.append(event["type"])
                order.status = data["status"]
                order.refunded = int(data.get("refunded", order.refunded))
        return {"ok": True}

    @app.get("/orders/<reference>")
    def order_page(reference: str) -> Any:
        with state.lock:
            order = state.orders.get(reference)
        if order is None:
            abort(404)
        body = render_template_string(
            """<h1>Order {{ o.reference }}</h1>
<dl><dt>points</dt><dd id="amount">{{ o.amount }}</dd>
<dt>status</dt><dd id="status">{{ o.status }}</dd>
<dt>refunded</dt><dd id="refunded">{{ o.refunded }}</dd>
<dt>webhooks received</dt><dd id="events">{{ o.events|join(", ") }}</dd></dl>
{% if msg %}<p class="{{ cls }}" id="refund-result">{{ msg }}</p>{% endif %}
<form method="post" action="/orders/{{ o.reference }}/refund">
<label for="refund-amount">Refund points</label>
<input id="refund-amount" name="amount" type="number" min="1" value="{{ o.amount - o.refunded }}">
<button type="submit" id="refund">Refund</button></form>""",
            o=order,
            msg=request.args.get("msg", ""),
            cls=request.args.get("cls", "ok"),
        )
        return page(f"Order {reference}", body)

    @app.post("/orders/<reference>/refund")
    def refund(reference: str) -> Any:
        with state.lock:
            order = state.orders.get(reference)
            if order is None:
                abort(404)
            order.refunds += 1
            refund_ref = f"{reference}-r{order.refunds}"
        try:
            points = int(request.form.get("amount", "0"))
            done = api(
                "POST",
                f"/checkouts/{order.checkout}/refunds",
                {"amount": points, "reference": refund_ref},
            )["refund"]
        except (ValueError, PlatformError) as exc:
            message = exc.body["error"]["message"] if isinstance(exc, PlatformError) else str(exc)
            return redirect(f"/orders/{reference}?cls=bad&msg={urllib.request.quote(message)}", 303)
        with state.lock:
            order.refunded = max(order.refunded, int(done["refunded"]))
        message = f"Refunded {done['amount']} points ({done['refundable']} still refundable)"
        return redirect(f"/orders/{reference}?msg={urllib.request.quote(message)}", 303)

    return app
