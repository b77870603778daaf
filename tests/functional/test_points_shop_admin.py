"""The officer's online shop settings by direct requests (CSRF on): origins checked with
the reason shown and nothing saved, the signing secret and the API key shown once,
another municipality's merchant not found, a till merchant has no shop section, a
failed webhook sent again on the officer's word (audited), other roles refused."""

from __future__ import annotations

import re

from sqlalchemy import select

from tests.functional.test_points_admin import World, log, sign_in, token, world
from webapp import db
from webapp.points.checkout import services
from webapp.points.checkout.models import Shop, WebhookDelivery
from webapp.points.models import AcceptedCategory, Merchant, MerchantCategory
from webapp.points.officer import Officer
from webapp.points.officer.merchants import add_merchant
from webapp.points.officer.shops import save_settings

__all__ = ["world"]


def _shop_merchant(world: World, municipality: int, code: str = "NET") -> int:
    with world.app.app_context(), db.new_session() as s:
        if s.get(AcceptedCategory, (municipality, "online_goods")) is None:
            s.add(AcceptedCategory(municipality_id=municipality, category="online_goods"))
            s.commit()
        merchant = add_merchant(
            s, Officer(municipality, "setup"), code=code, name="ネット物産",
            category=MerchantCategory.ONLINE_GOODS,
        )  # fmt: skip
        return merchant.id


def test_shop_settings_secret_and_keys_shown_once(world: World) -> None:
    merchant = _shop_merchant(world, world.b)
    client, csrf = sign_in(world, "officer-b")
    base = f"/points/merchants/{merchant}"
    assert 'id="online-shop"' in client.get(base).get_data(as_text=True)
    assert 'id="online-shop"' not in client.get(f"/points/merchants/{world.b_merchant}").get_data(
        as_text=True
    )  # a till merchant

    refused = client.post(
        f"{base}/shop?lang=en",
        data={"csrf_token": csrf, "origins": "http://shop.example.jp", "webhook_url": ""},
    )
    assert refused.status_code == 400
    assert "https://host" in refused.get_data(as_text=True)
    off_origin = client.post(
        f"{base}/shop",
        data={"csrf_token": csrf, "origins": "https://shop.example.jp",
              "webhook_url": "https://elsewhere.example.jp/hook"},
    )  # fmt: skip
    assert off_origin.status_code == 400
    no_token = client.post(f"{base}/shop", data={"origins": "https://shop.example.jp"})
    assert no_token.status_code == 400
    with world.app.app_context(), db.new_session() as s:
        assert s.get(Shop, merchant) is None

    saved = client.post(
        f"{base}/shop",
        data={"csrf_token": csrf, "origins": "https://shop.example.jp\nhttps://shop.example.jp",
              "webhook_url": "https://shop.example.jp/hook"},
    )  # fmt: skip
    assert saved.status_code == 200
    secret = re.search(r'data-testid="signing-secret">(whsec_[^<]+)<', saved.get_data(as_text=True))
    assert secret
    page = client.get(base).get_data(as_text=True)
    assert secret.group(1) not in page
    issued = client.post(f"{base}/shop/keys", data={"csrf_token": csrf}).get_data(as_text=True)
    key = re.search(r'data-testid="api-key">(icm_[^<]+)<', issued)
    assert key
    assert key.group(1) not in client.get(base).get_data(as_text=True)
    key_id = key.group(1).split("_")[1]
    revoked = client.post(f"{base}/shop/keys/revoke", data={"csrf_token": csrf, "key_id": key_id})
    assert revoked.status_code == 302
    with world.app.app_context(), db.new_session() as s:
        shop = s.get(Shop, merchant)
        assert shop is not None and shop.origins == ["https://shop.example.jp"]
        assert shop.signing_secret == secret.group(1)
    actions = [e.action for e in log(world, world.b)]
    assert actions == ["merchant.create", "shop.settings", "shop.key_issue", "shop.key_revoke"]


def test_another_municipality_and_other_roles(world: World) -> None:
    merchant = _shop_merchant(world, world.b)
    client, csrf = sign_in(world, "officer-a")
    for path in ("/shop", "/shop/keys", "/shop/secret"):
        answer = client.post(
            f"/points/merchants/{merchant}{path}",
            data={"csrf_token": csrf, "origins": "https://a.example.jp"},
        )
        assert answer.status_code == 404, path
    staff, csrf = sign_in(world, "museum-staff")
    answer = staff.post(f"/points/merchants/{merchant}/shop/keys", data={"csrf_token": csrf})
    assert answer.status_code in (302, 403)
    assert [e.action for e in log(world, world.b)] == ["merchant.create"]  # the set-up only


def test_a_failed_webhook_is_sent_again_on_the_officers_word(world: World) -> None:
    merchant = _shop_merchant(world, world.b)
    with world.app.app_context(), db.new_session() as s:
        save_settings(
            s, Officer(world.b, "setup"), merchant, origins_text="https://shop.example.jp",
            webhook_url="https://shop.example.jp/hook", allow_loopback=False,
        )  # fmt: skip
        row = s.get(Merchant, merchant)
        assert row is not None
        made = services.create(
            s, row, amount=5, order="o-1", return_url="https://shop.example.jp/r"
        )
        services.cancel(s, made.id)
        delivery = s.scalars(select(WebhookDelivery)).one()
        delivery.status, delivery.attempts, delivery.last_error = "failed", 8, "HTTP 500"
        s.commit()
        delivery_id = delivery.id
    client, csrf = sign_in(world, "officer-b")
    page = client.get(f"/points/merchants/{merchant}?lang=en").get_data(as_text=True)
    assert "checkout.cancelled" in page and "HTTP 500" in page and "Given up" in page
    other, other_csrf = sign_in(world, "officer-a")
    assert (
        other.post(
            f"/points/merchants/{merchant}/shop/webhooks/{delivery_id}/retry",
            data={"csrf_token": other_csrf},
        ).status_code
        == 404
    )
    again = client.post(
        f"/points/merchants/{merchant}/shop/webhooks/{delivery_id}/retry",
        data={"csrf_token": csrf},
    )
    assert again.status_code == 302
    with world.app.app_context(), db.new_session() as s:
        row = s.get(WebhookDelivery, delivery_id)
        assert row is not None and (row.status, row.attempts) == ("pending", 0)
    assert [e.action for e in log(world, world.b)][-1] == "shop.webhook_retry"
    assert token(client.get("/staff/").get_data(as_text=True))
