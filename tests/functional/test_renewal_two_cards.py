""" "I have a new card": the two-card renewal step at the kiosk, in process (platform,
bus, a bridge in this process, virtual cards of the fake J-LIS), and what a script
holding the kiosk's cookie can try against it: skip the old card's PIN, use the old card
for anything else, tap the same card twice, bring a lost card's old card, push either
card past its last try."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from bridge.vcard.cardfile import CardFile, card_data_from_issued
from bridge.vcard.jlis import DemoJLIS
from tests.fixtures.cardflow import Kiosk, kiosk
from tests.fixtures.privacy import scan
from tests.support.flows import begin, card_and_pin, complete, error_code
from webapp import db
from webapp.cardflow import verifier_for
from webapp.demo_data import ensure_providers, library_number
from webapp.identity.models import CardBinding, MyKeyID, RebindConflict
from webapp.points import programs
from webapp.points.demo import build_city
from webapp.terminals.models import TerminalKind

__all__ = ["kiosk"]

PIN = "1234"
RENEW = "kiosk_renew"


def new_card(jlis: DemoJLIS, path: Path, *, tries: int | None = None, **issue: Any) -> Path:
    data = card_data_from_issued(jlis.issue(**issue), pin=PIN, sign_password="ABC123")
    if tries is not None:
        data.auth_pin.tries_left = tries
    CardFile.create(path, data)
    return path


def successor(
    jlis: DemoJLIS, old: Path, new: Path, *, lost: bool = False, tries: int | None = None
) -> Path:
    issued = (jlis.reissue if lost else jlis.renew)(CardFile.load(old).data)
    data = card_data_from_issued(issued, pin=PIN, sign_password="ABC123")
    if tries is not None:
        data.auth_pin.tries_left = tries
    CardFile.create(new, data)
    return new


@pytest.fixture
def client(kiosk: Kiosk) -> FlaskClient:
    return kiosk_client(kiosk)


def kiosk_client(kiosk: Kiosk) -> FlaskClient:
    client = kiosk.platform.app.test_client()
    with client.session_transaction() as sess:
        sess["terminal_id"] = kiosk.terminal_id
        sess["terminal_kind"] = TerminalKind.KIOSK
    return client


def refresh_crls(kiosk: Kiosk) -> None:
    verifier_for(kiosk.platform.app).revocation.refresh_all()


def citizen(
    kiosk: Kiosk, client: FlaskClient, card: Path, number: int = 41, *, points: bool = True
) -> str:
    """Sign in with `card`, link a library number and get 500 points: the MyKey ID."""
    kiosk.insert(card)
    me = card_and_pin(client, "kiosk").get_json()["result"]
    app = kiosk.platform.app
    with app.app_context(), db.new_session() as s:
        library = ensure_providers(s).library.id
        if points:
            city = build_city(s)
            programs.grant(
                s,
                city.volunteering.id,
                me["mykey_id"],
                key=f"renewal-{number}",
                directory=app.extensions["points_directory"],
            )
        s.commit()
    body = {"provider_id": library, "customer_number": library_number(number), "accepted": True}
    assert client.post("/flow/do/link", json={**body, "terms_version": 1}).status_code == 200
    assert client.post("/flow/cancel").status_code == 200
    return str(me["mykey_id"])


def old_card_verified(kiosk: Kiosk, client: FlaskClient, old: Path) -> None:
    kiosk.insert(old)
    reply = card_and_pin(client, RENEW)
    assert reply.status_code == 200, reply.get_json()
    assert reply.get_json()["result"] == {"stage": "new_card"}


def counts(kiosk: Kiosk) -> tuple[int, int]:
    with kiosk.platform.app.app_context(), db.new_session() as s:
        return (
            s.scalar(select(func.count()).select_from(CardBinding)) or 0,
            s.scalar(select(func.count()).select_from(MyKeyID)) or 0,
        )


def test_the_two_card_step_moves_the_id_with_its_links_and_points(
    kiosk: Kiosk, demo_jlis: DemoJLIS, tmp_path: Path, client: FlaskClient
) -> None:
    old = new_card(demo_jlis, tmp_path / "old.json")
    mykey = citizen(kiosk, client, old)
    new = successor(demo_jlis, old, tmp_path / "new.json")
    refresh_crls(kiosk)
    # The old card is revoked (superseded) for everything but this step; the citizen is
    # told it was renewed (use the new card), not that it was lost.
    kiosk.insert(old)
    alone = begin(client, "kiosk", lang="en")
    assert error_code(alone) == "revoked" and alone.get_json()["error"]["renewed"]
    assert alone.get_json()["error"]["final"]

    old_card_verified(kiosk, client, old)
    # Nothing else can be done with the old card alone.
    for step in ("me", "points", "reroll", "unlink", "link"):
        refused = client.post(f"/flow/do/{step}", json={"provider_id": 1})
        assert refused.status_code == 409 and error_code(refused) == "out_of_order", step
    assert client.get("/flow").get_json()["result"] == {"stage": "new_card"}
    # The old card still on the reader is not a second card.
    same = client.post("/flow/next")
    assert same.status_code == 409 and error_code(same) == "same_card"
    assert not same.get_json()["error"]["final"]
    # The bridge gone for a moment (a home reader restarted): the flow waits.
    kiosk.stop()
    assert error_code(client.post("/flow/next")) == "bridge_offline"

    kiosk.insert(new)
    prompt = client.post("/flow/next")
    assert prompt.status_code == 200, prompt.get_json()
    assert prompt.get_json()["flow"]["state"] == "pin_prompted"
    moved = complete(client, prompt.get_json()["pin"])
    assert moved.status_code == 200, moved.get_json()
    result = moved.get_json()["result"]
    assert result["stage"] == "moved" and result["moved"] and result["mykey_id"] == mykey
    assert [link["number"] for link in result["links"]] == [library_number(41)]
    assert result["certificate"]["not_after"]
    points = client.get("/flow/do/points").get_json()["result"]["municipalities"]
    assert [m["spendable"] for m in points] == [500]
    assert counts(kiosk) == (1, 1)
    # From now on the new card opens the same MyKey ID at the kiosk; the old one nothing.
    client.post("/flow/cancel")
    again = card_and_pin(client, "kiosk").get_json()["result"]
    assert again["mykey_id"] == mykey and not again["created"]
    kiosk.insert(old)
    assert error_code(begin(client, "kiosk")) == "revoked"
    client.post("/flow/cancel")
    nothing = card_and_pin(client, RENEW)
    assert error_code(nothing) == "renew_nothing_to_move"
    cards = [CardFile.load(old).data, CardFile.load(new).data]
    assert scan(kiosk.platform.app.extensions["db_engine"], cards) == []  # type: ignore[arg-type]


def test_the_old_card_pin_cannot_be_skipped_and_the_second_card_cannot_be_revoked(
    kiosk: Kiosk, demo_jlis: DemoJLIS, tmp_path: Path, client: FlaskClient
) -> None:
    old = new_card(demo_jlis, tmp_path / "old.json")
    mykey = citizen(kiosk, client, old)
    new = successor(demo_jlis, old, tmp_path / "new.json")
    other_old = new_card(demo_jlis, tmp_path / "other-old.json")
    successor(demo_jlis, other_old, tmp_path / "other-new.json")  # other_old: superseded
    refresh_crls(kiosk)
    # No /flow/next before the old card's PIN: on the prompt, and with no flow at all.
    assert error_code(client.post("/flow/next")) == "session_ended"
    kiosk.insert(old)
    started = begin(client, RENEW)
    assert started.status_code == 200 and "pin" in started.get_json()
    kiosk.insert(new)
    skipped = client.post("/flow/next")
    assert skipped.status_code == 409 and error_code(skipped) == "out_of_order"
    # The prompt is the old card's: with the new card on the reader, it goes nowhere.
    swapped = complete(client, started.get_json()["pin"])
    assert swapped.status_code in (409, 422) and swapped.get_json()["error"]["final"]
    assert counts(kiosk) == (1, 1)
    # Another session cannot use this session's flow.
    old_card_verified(kiosk, client, old)
    stranger = kiosk_client(kiosk)
    kiosk.insert(new)
    assert error_code(stranger.post("/flow/next")) == "session_ended"
    # A renewed card's old card is never a "new" card (revoked, the flow ends).
    kiosk.insert(other_old)
    revoked = client.post("/flow/next")
    assert error_code(revoked) == "revoked" and revoked.get_json()["error"]["final"]
    kiosk.insert(new)
    assert error_code(client.post("/flow/next")) == "revoked"  # ended: start again
    with kiosk.platform.app.app_context(), db.new_session() as s:
        assert s.get(CardBinding, kiosk.verifier.identify(_auth(new)).card_key) is None
    # The same card taken off and tapped again is not a second card either.
    old_card_verified(kiosk, client, old)
    kiosk.insert(old)
    assert error_code(client.post("/flow/next")) == "same_card"
    kiosk.insert(new)
    prompt = client.post("/flow/next").get_json()["pin"]
    assert complete(client, prompt).get_json()["result"]["mykey_id"] == mykey


def _auth(card: Path) -> bytes:
    return CardFile.load(card).data.auth_cert_der


def test_a_lost_cards_old_card_never_moves_the_id_only_the_linkage_does(
    kiosk: Kiosk, demo_jlis: DemoJLIS, tmp_path: Path, client: FlaskClient
) -> None:
    old = new_card(demo_jlis, tmp_path / "old.json")
    mykey = citizen(kiosk, client, old)
    new = successor(demo_jlis, old, tmp_path / "new.json", lost=True)
    refresh_crls(kiosk)
    kiosk.insert(old)
    refused = begin(client, RENEW)
    assert refused.status_code == 422 and error_code(refused) == "old_card_revoked"
    body = refused.get_json()["error"]
    assert body["final"] and "pin" not in refused.get_json()
    assert "lost" in body["message"] or "紛失" in body["message"]
    client.post("/flow/cancel")
    lost_alone = begin(client, "kiosk").get_json()["error"]
    assert lost_alone["code"] == "revoked" and "renewed" not in lost_alone
    assert error_code(client.post("/flow/next")) == "out_of_order"  # no card verified
    # The new card alone opens a new, empty ID; the linkage folds it back.
    kiosk.insert(new)
    client.post("/flow/cancel")
    fresh = card_and_pin(client, "kiosk").get_json()["result"]
    assert fresh["created"] and fresh["mykey_id"] != mykey
    runner = kiosk.platform.app.test_cli_runner()
    result = runner.invoke(
        args=["jpki", "import-linkage", str(demo_jlis.directory / "linkage.json")]
    )
    assert result.exit_code == 0, result.output
    client.post("/flow/cancel")
    linked = card_and_pin(client, "kiosk").get_json()["result"]
    assert linked["mykey_id"] == mykey and [x["number"] for x in linked["links"]] == [
        library_number(41)
    ]


def test_a_new_card_holding_its_own_links_goes_to_staff_and_nothing_changes(
    kiosk: Kiosk, demo_jlis: DemoJLIS, tmp_path: Path, client: FlaskClient
) -> None:
    old = new_card(demo_jlis, tmp_path / "old.json")
    mykey = citizen(kiosk, client, old, 41)
    new = successor(demo_jlis, old, tmp_path / "new.json")
    refresh_crls(kiosk)
    # The new card was used, and linked, first.
    other = citizen(kiosk, client, new, 42, points=False)
    old_card_verified(kiosk, client, old)
    kiosk.insert(new)
    prompt = client.post("/flow/next").get_json()["pin"]
    refused = complete(client, prompt)
    assert error_code(refused) == "renew_new_card_in_use"
    assert refused.get_json()["error"]["final"]
    assert counts(kiosk) == (2, 2)
    with kiosk.platform.app.app_context(), db.new_session() as s:
        assert s.scalar(select(func.count()).select_from(RebindConflict)) == 0
        bound = s.get(CardBinding, kiosk.verifier.identify(_auth(new)).card_key)
        assert bound is not None and bound.mykey_id == other != mykey


def test_the_last_try_guard_holds_for_both_cards(
    kiosk: Kiosk, demo_jlis: DemoJLIS, tmp_path: Path, client: FlaskClient
) -> None:
    old = new_card(demo_jlis, tmp_path / "old.json")
    citizen(kiosk, client, old)
    loaded = CardFile.load(old)
    loaded.data.auth_pin.tries_left = 1
    loaded.save()
    new = successor(demo_jlis, old, tmp_path / "new.json", tries=1)
    refresh_crls(kiosk)
    kiosk.insert(old)
    retap = begin(client, RENEW)
    assert error_code(retap) == "pin_retap" and CardFile.load(old).data.auth_pin.tries_left == 1
    loaded = CardFile.load(old)
    loaded.data.auth_pin.tries_left = 3
    loaded.save()
    old_card_verified(kiosk, client, old)
    kiosk.insert(new)
    guarded = client.post("/flow/next")
    assert error_code(guarded) == "pin_retap" and guarded.get_json()["error"]["final"]
    assert CardFile.load(new).data.auth_pin.tries_left == 1


def test_the_certificate_end_and_what_renewal_will_do(
    kiosk: Kiosk, demo_jlis: DemoJLIS, tmp_path: Path, client: FlaskClient
) -> None:
    soon = datetime.now(UTC) + timedelta(days=40)
    kiosk.insert(new_card(demo_jlis, tmp_path / "soon.json", not_after=soon))
    cert = card_and_pin(client, "kiosk").get_json()["result"]["certificate"]
    assert cert["renew_soon"] and not cert["linkage"]
    assert cert["not_after"] == (soon + timedelta(hours=9)).date().isoformat()
    kiosk.platform.app.config["JPKI_LINKAGE_SOURCES"] = ["https://jlis.example/linkage"]
    try:
        assert client.get("/flow/do/me").get_json()["result"]["certificate"]["linkage"]
    finally:
        kiosk.platform.app.config["JPKI_LINKAGE_SOURCES"] = []
    client.post("/flow/cancel")
    kiosk.insert(new_card(demo_jlis, tmp_path / "later.json"))
    later = card_and_pin(client, "kiosk").get_json()["result"]["certificate"]
    assert not later["renew_soon"]
