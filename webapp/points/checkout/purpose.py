"""The checkout page's purpose of the one card flow (`checkout`, at home only).

`start` takes the checkout id from the page and checks it is open (the id is kept in
the flow on the server: nothing the page sends later changes what is paid or to whom);
after the card and the PIN `verified` shows the shop, the amount and what the citizen
can spend; `pay` pays (services.pay: once, whatever is repeated) and answers the shop's
return URL with the signed result. The citizen's MyKey ID stays in the flow.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...cardflow.purposes import BasePurpose, FlowContext, Outcome, PurposeError
from ...identity.models import CardBinding
from ...identity.services import card_key_bytes
from ...jpki import VerifiedCard
from ...terminals.models import TerminalKind
from ..errors import PointsError
from ..models import Merchant
from ..spend import spendable
from . import services
from .results import signed_result

PURPOSE = "checkout"


def _checkout(ctx: FlowContext, checkout_id: object) -> tuple[services.Checkout, Merchant]:
    try:
        c = services.get(ctx.s, checkout_id)
    except PointsError as exc:
        raise PurposeError(exc.code.value, status=exc.status, final=True) from None
    merchant = ctx.s.get(Merchant, c.merchant_id)
    assert merchant is not None  # noqa: S101  (a foreign key)
    return c, merchant


class CheckoutPurpose(BasePurpose):
    """Paying an online shop's checkout with the card and PIN at home."""

    name = PURPOSE
    terminal_kinds = frozenset({TerminalKind.HOME})

    def idle_seconds(self, ctx: FlowContext) -> float:
        """As long as the checkout itself may wait."""
        return float(ctx.config.get("CHECKOUT_TTL_SECONDS", 900))

    def start(self, ctx: FlowContext, params: Mapping[str, Any]) -> dict[str, Any]:
        """The checkout to pay, open now."""
        c, _ = _checkout(ctx, params.get("checkout"))
        status = services.status_of(c, services.utc_now())
        if status != "open":
            raise PurposeError(f"checkout_{status}", status=409, final=True)
        return {"checkout": c.id}

    def verified(self, ctx: FlowContext, card: VerifiedCard, data: dict[str, Any]) -> Outcome:
        """The shop, the amount, and what this citizen can spend there."""
        binding = ctx.s.get(CardBinding, card_key_bytes(card.card_key))
        if binding is None:
            raise PurposeError("not_registered", final=True)
        c, merchant = _checkout(ctx, data["checkout"])
        balance = spendable(ctx.s, merchant.municipality_id, binding.mykey_id)
        body = {
            "shop": merchant.name,
            "points": c.amount,
            "reference": c.reference,
            "balance": balance,
            "enough": balance >= c.amount,
        }
        return Outcome(body, {**data, "mykey": binding.mykey_id})

    def act(
        self, ctx: FlowContext, name: str, data: dict[str, Any], params: Mapping[str, Any]
    ) -> Outcome:
        """`pay`: pay once; the answer has the shop's signed return URL."""
        if name != "pay":
            raise PurposeError("unknown_step", status=404)
        if "mykey" not in data:
            raise PurposeError("out_of_order", status=409)
        paid = services.pay(ctx.s, data["checkout"], data["mykey"])
        c, merchant = _checkout(ctx, data["checkout"])
        left = spendable(ctx.s, merchant.municipality_id, data["mykey"])
        body = {
            "points": paid.amount,
            "balance": left,
            "replayed": paid.replayed,
            "redirect": signed_result(ctx.s, c),
        }
        return Outcome(body, {**data, "paid": True}, True)

    def view(self, ctx: FlowContext, data: dict[str, Any]) -> dict[str, Any]:
        """The checkout's id only (the page shows the rest)."""
        return {"checkout": data.get("checkout")}
