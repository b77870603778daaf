"""Finding a facility among 5,000 at the kiosk: the flow's `facilities` and `facility`
read steps (search, browse, bounds, pagination, odd input from a script)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import event, select, update

from bridge.vcard.jlis import DemoJLIS
from tests.fixtures.cardflow import Kiosk, db_session, kiosk
from tests.functional.test_kiosk_api import make_card, sign_in_with_card
from tests.support.facilities import TARGET, generate_providers
from webapp import db
from webapp.cardflow.purposes import FlowContext
from webapp.kiosk import purposes
from webapp.providers import search
from webapp.providers.models import Provider
from webapp.terminals.models import Terminal, TerminalKind

__all__ = ["db_session", "kiosk"]


@pytest.fixture
def client(kiosk: Kiosk, demo_jlis: DemoJLIS, tmp_path: Path) -> FlaskClient:
    """A kiosk in 千代田区 among 5,000 libraries, with a citizen's card signed in."""
    with kiosk.platform.app.app_context(), db.new_session() as s:
        generate_providers(s, 5000)
        own = s.scalar(select(Terminal.provider_id).where(Terminal.id == kiosk.terminal_id))
        s.execute(
            update(Provider)
            .where(Provider.id == own)
            .values(
                prefecture_code="130001", municipality_code="131016", municipality_name="千代田区"
            )
        )
        s.commit()
    client = kiosk.platform.app.test_client()
    with client.session_transaction() as sess:
        sess["terminal_id"] = kiosk.terminal_id
        sess["terminal_kind"] = TerminalKind.KIOSK
    kiosk.insert(make_card(demo_jlis, tmp_path / "c.json"))
    me = sign_in_with_card(client).get_json()
    assert me["flow"]["state"] == "verified"
    return client


def find(client: FlaskClient, **params: Any) -> Any:
    reply = client.post("/flow/do/facilities", json=params)
    assert reply.status_code == 200, reply.get_json()
    return reply.get_json()["result"]


def test_the_kiosk_town_comes_first_and_the_list_is_bounded(client: FlaskClient) -> None:
    me = client.get("/flow/do/me", content_type="application/json").get_json()["result"]
    assert me["near"] == {"code": "131016", "prefecture": "13", "name": "千代田区"}
    names = [p["name"] for p in me["providers"]]
    assert TARGET.name in names and len(names) <= 30  # not the 5,000
    assert all(p["place"] == "千代田区" for p in me["providers"])


@pytest.mark.parametrize(
    "typed", ["ひびや", "ヒビヤ", "ﾋﾋﾞﾔ", "日比谷", "jp-1000123", "ＪＰ－１０００１２３"]
)
def test_search_by_kana_name_or_isil(client: FlaskClient, typed: str) -> None:
    found = find(client, q=typed)
    assert found["view"] == "search" and found["total"] == 1
    assert [p["code"] for p in found["results"]] == [TARGET.code]
    assert "terms" not in found["results"][0]  # terms come with the one chosen
    chosen = client.post("/flow/do/facility", json={"provider_id": found["results"][0]["id"]})
    assert chosen.get_json()["result"]["terms"].startswith(TARGET.name)


def test_search_pages_are_bounded(client: FlaskClient) -> None:
    first = find(client, q="図書")
    assert first["total"] == search.COUNT_CAP and first["capped"] and first["more"]
    assert len(first["results"]) == search.PAGE_SIZE
    second = find(client, q="図書", page=1)
    assert not {p["id"] for p in first["results"]} & {p["id"] for p in second["results"]}
    # The own town (千代田区) first.
    assert first["results"][0]["code"] == TARGET.code
    far = find(client, q="図書", page=10_000)
    assert far["page"] == search.MAX_PAGE and len(far["results"]) == search.PAGE_SIZE
    assert not far["more"]  # the 500th is the last a page reaches


@pytest.mark.parametrize(
    "params",
    [
        {"q": ""},
        {"q": 42},
        {"q": None},
        {"q": ["ひびや"]},
        {"q": {"$ne": 1}},
        {"q": "%"},
        {"q": "_"},
        {"q": "\\"},
        {"q": "' OR 1=1 --"},
        {"q": "ひびや", "page": -3},
        {"q": "ひびや", "page": "2"},
        {"q": "ひびや", "page": True},
        {"q": "ひびや", "page": 1.5},
    ],
)
def test_odd_input_changes_nothing_and_never_fails(client: FlaskClient, params: Any) -> None:
    found = find(client, **params)
    assert found["page"] == 0 and len(found["results"]) <= search.PAGE_SIZE
    if isinstance(params["q"], str) and params["q"] not in ("ひびや",):
        assert found["total"] == 0  # LIKE's wildcards are escaped: "%" finds nothing


@pytest.mark.parametrize("q", ["あ" * 5000, "\x00", "ひびや\u202e"])
def test_a_long_or_control_query_is_cut_or_refused_never_a_500(client: FlaskClient, q: str) -> None:
    reply = client.post("/flow/do/facilities", json={"q": q})
    assert reply.status_code in (200, 400)
    if reply.status_code == 200:
        assert reply.get_json()["result"]["total"] == 0
    else:
        assert reply.get_json()["error"]["code"] == "input_refused"


def test_browse_prefecture_then_municipality_then_facility(client: FlaskClient) -> None:
    prefectures = find(client)
    assert prefectures["view"] == "prefectures" and len(prefectures["results"]) == 47
    tokyo = next(p for p in prefectures["results"] if p["name"] == "東京都")
    municipalities = find(client, prefecture=tokyo["code"])
    chiyoda = next(m for m in municipalities["results"] if m["code"] == TARGET.municipality)
    assert chiyoda["name"] == "千代田区" and municipalities["total"] < 300
    facilities = find(client, municipality=chiyoda["code"])
    assert TARGET.code in [p["code"] for p in facilities["results"]]


@pytest.mark.parametrize(
    "params",
    [
        {"prefecture": "131016"},  # a municipality, not a prefecture
        {"prefecture": "130002"},  # wrong check digit
        {"prefecture": "990009"},
        {"prefecture": 130001},
        {"municipality": "131017"},
        {"municipality": ["131016"]},
        {"municipality": "x" * 100},
    ],
)
def test_unknown_places_are_refused(client: FlaskClient, params: Any) -> None:
    reply = client.post("/flow/do/facilities", json=params)
    assert reply.status_code == 404 and reply.get_json()["error"]["code"] == "unknown_place"


@pytest.mark.parametrize("provider_id", [0, -1, "1", None, True, 10**12])
def test_facility_needs_a_real_provider(client: FlaskClient, provider_id: Any) -> None:
    reply = client.post("/flow/do/facility", json={"provider_id": provider_id})
    assert reply.status_code == 404


def test_without_a_card_there_is_no_search(kiosk: Kiosk) -> None:
    anonymous = kiosk.platform.app.test_client()
    assert anonymous.post("/flow/do/facilities", json={"q": "ひびや"}).status_code == 401


def test_typing_a_character_at_a_time_stays_fast(client: FlaskClient) -> None:
    """A generous bound for a shared test machine (bench-scale measures the p99)."""
    took = []
    for n in range(1, len(TARGET.kana) + 1):
        start = time.perf_counter()
        find(client, q=TARGET.kana[:n])
        took.append(time.perf_counter() - start)
    assert sorted(took)[len(took) // 2] < 0.25


def test_me_is_two_reads_and_a_keystroke_two(client: FlaskClient, kiosk: Kiosk) -> None:
    """The `me` step reads the ID with its links, then the town's facilities with their
    SIP2 mark; a search keystroke reads one page with its count (one scan), then which
    of its rows are linked or have SIP2. Each statement is a round trip (docs/scale.md)."""
    mykey = client.get("/flow/do/me", content_type="application/json").get_json()["result"][
        "mykey_id"
    ]
    app = kiosk.platform.app
    with app.app_context(), db.new_session() as s:
        terminal = s.get(Terminal, kiosk.terminal_id)
        s.expunge_all()  # a fresh request's session holds nothing yet
        ctx = FlowContext(s, terminal, "x", app.config, None, time.time())  # type: ignore[arg-type]
        seen: list[str] = []

        me_thread = threading.get_ident()

        def listen(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
            if threading.get_ident() == me_thread:  # not the platform's own threads
                seen.append(statement)

        engine = db.engine()
        event.listen(engine, "before_cursor_execute", listen)
        try:
            shown = purposes.me(ctx, {"mykey": mykey}, "ja")
            me_reads, seen[:] = len(seen), []
            found = purposes.facilities(ctx, {"mykey": mykey}, {"q": "ひびや"}, "ja")
            search_reads, seen[:] = len(seen), []
            many = purposes.facilities(ctx, {"mykey": mykey}, {"q": "図書", "page": 1}, "ja")
            page_reads = len(seen)
        finally:
            event.remove(engine, "before_cursor_execute", listen)
    assert shown["near"]["code"] == "131016" and shown["providers"]
    assert me_reads == 2
    assert found["total"] == 1 and found["results"][0]["code"] == TARGET.code
    assert search_reads == 2
    assert many["total"] == search.COUNT_CAP and many["capped"] and len(many["results"]) == 10
    assert page_reads == 2
