""" "I have a new card" (新しいカードを持っています): the two-card renewal step at a kiosk
and at home, for a new card that arrives before the municipality's linkage is imported.

One flow of the card-flow machine with two cards (`cards = 2`): the OLD card and its PIN,
then (`POST /flow/next`) the NEW card and its PIN, in one session kept on the server. The
old card may be one whose certificate was revoked as *superseded* (a renewal): accepted
for this purpose, for its first card only (the flow service asks the verifier for it);
a lost card's key-compromise revocation, or any other, is refused (OLD_CARD_REVOKED):
a lost card's MyKey ID follows the new card only through J-LIS's linkage. Nothing can be
done with the old card alone: every further step waits for the new card.

The move itself is `identity.renewal.rebind` with the two verified cards' keys, so the
rules of the linkage import hold (never a merge of two MyKey IDs that both hold
something). Refused before anything changes, with words for the citizen:

- the old card opens no MyKey ID here (`renew_nothing_to_move`: nothing to move, or the
  linkage moved it already);
- the new card already opens another MyKey ID holding links or points
  (`renew_new_card_in_use`: staff sort it out; the conflict is reported).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..cardflow.purposes import FlowContext, Outcome, PurposeError
from ..identity import renewal
from ..identity.models import CardBinding
from ..jpki import VerifiedCard
from .purposes import KioskPurpose, me

PURPOSE = "kiosk_renew"


class RenewPurpose(KioskPurpose):
    """The old card, then the new one: the MyKey ID moves to the new card."""

    name = PURPOSE
    cards = 2
    accepts_superseded = True

    def verified(self, ctx: FlowContext, card: VerifiedCard, data: dict[str, Any]) -> Outcome:
        """The old card: remember its key (server side) and ask for the new card; the new
        card: move the binding, then the citizen's MyKey ID as at the kiosk."""
        old = data.get("old")
        if old is None:
            binding = ctx.s.get(CardBinding, card.card_key)
            if binding is None:
                raise PurposeError("renew_nothing_to_move", final=True)
            return Outcome({"stage": "new_card"}, {"old": card.card_key.hex()})
        old_key = bytes.fromhex(str(old))
        if card.superseded or card.card_key == old_key:  # the flow service refuses both
            raise PurposeError("same_card", final=True)
        self._check_new_card(ctx, old_key, card.card_key)
        move = renewal.Move(old_key, card.card_key, card.not_after)
        report = renewal.rebind(ctx.s, [move])
        if report.conflicts:
            raise PurposeError("renew_new_card_in_use", final=True)
        binding = ctx.s.get(CardBinding, card.card_key)
        if binding is None:  # the old binding went meanwhile (nothing was moved)
            raise PurposeError("renew_nothing_to_move", final=True)
        data = {
            "mykey": binding.mykey_id,
            "created": False,
            "moved": True,
            "not_after": card.not_after.isoformat(),
        }
        return Outcome({**me(ctx, data, self._locale()), "stage": "moved"}, data)

    def _check_new_card(self, ctx: FlowContext, old_key: bytes, new_key: bytes) -> None:
        """Refuse (nothing changed) when the new card opens another MyKey ID that holds
        links or points of its own: two citizens' worth of data is for staff to judge."""
        old = ctx.s.get(CardBinding, old_key)
        new = ctx.s.get(CardBinding, new_key)
        if new is None or (old is not None and old.mykey_id == new.mykey_id):
            return
        if old is None:
            return  # moved already (the linkage came first): rebind changes nothing
        if renewal.holds_anything(ctx.s, new.mykey_id):
            raise PurposeError("renew_new_card_in_use", final=True)

    def act(
        self, ctx: FlowContext, name: str, data: dict[str, Any], params: Mapping[str, Any]
    ) -> Outcome:
        """The kiosk's steps, once the MyKey ID has moved to the new card; nothing before
        (the old card alone is good for nothing else)."""
        if "mykey" not in data:
            raise PurposeError("out_of_order", status=409)
        return super().act(ctx, name, data, params)

    def view(self, ctx: FlowContext, data: dict[str, Any]) -> dict[str, Any]:
        """The MyKey ID screen once moved; the next card's screen before."""
        if "mykey" in data:
            return {**super().view(ctx, data), "stage": "moved"}
        return {"stage": "new_card"} if "old" in data else {}
