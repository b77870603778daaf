"""The kiosk's purpose of the one card flow (at a kiosk and at home): the citizen's own
MyKey ID, its links and points.

After the card and the PIN the citizen's MyKey ID is opened (or made): it is kept in the
flow on the server, never sent as anything but the ID shown on screen. Further steps
(`/flow/do/<step>`), each only while the same card is on the reader and the kiosk has
not sat idle: `me` (the ID, its links, the kiosk's own town's facilities), `facilities`
(search and browse: webapp/providers/search.py), `facility` (one, with its terms),
`points`, `reroll` (a new ID, a few times, before any link), `link` (a claim: shown
once at the counter before use), `unlink`, and for a library with SIP2 `link_prepare`
then `link_verify`: the number verified by the library's own system with the password
the citizen uses there, sealed by the page to the library's connector bridge
(webapp/sip2/verify.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from flask import current_app
from sqlalchemy import ColumnElement, func, literal, select, union_all
from sqlalchemy.orm import aliased

from bridge.wire import new_id

from ..cardflow.purposes import BasePurpose, FlowContext, Outcome, PurposeError
from ..identity import services as identity
from ..identity.models import MyKeyID, ServiceLink, Verification
from ..jpki import VerifiedCard
from ..providers import search as facility_search
from ..providers.models import Provider
from ..sip2 import gateway_of, throttle_of
from ..sip2 import services as sip2
from ..sip2.models import LibrarySip2
from ..sip2.verify import PasswordCheck, PasswordCheckFailed, check_password
from ..terminals.models import TerminalKind
from ..terminals.remote import Sip2Failed
from .points import give_confirm, give_prepare, my_points, open_causes

PURPOSE = "kiosk"
# The kiosk's own municipality's facilities offered first on the link screen; the
# others are found by the search box or by browsing (the `facilities` step).
PROVIDERS_SHOWN = 30
# Within this of the certificate's end, the citizen is told what happens at renewal.
RENEWAL_NOTICE = timedelta(days=92)  # three months
_JST = timezone(timedelta(hours=9))  # the date a citizen reads is Japan's


def certificate_notice(
    ctx: FlowContext, not_after: str | None, now: datetime | None = None
) -> dict[str, Any] | None:
    """When the card's certificate ends (the day, in Japan) and, in its last 3 months,
    what will happen at renewal: nothing to do where the municipality's linkage is taken
    in here (JPKI_LINKAGE_SOURCES), else the two-card step ("I have a new card")."""
    if not not_after:
        return None
    try:
        end = datetime.fromisoformat(not_after)
    except ValueError:
        return None
    if end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    moment = now or datetime.now(UTC)
    return {
        "not_after": end.astimezone(_JST).date().isoformat(),
        "renew_soon": end - moment <= RENEWAL_NOTICE,
        "linkage": bool(ctx.config.get("JPKI_LINKAGE_SOURCES")),
    }


def _name(p: Provider, locale: str) -> str:
    return p.name_en if locale == "en" and p.name_en else p.name_ja


def me(ctx: FlowContext, data: dict[str, Any], locale: str) -> dict[str, Any]:
    """The MyKey ID of this card session, its links and the providers to link.

    Two reads: the ID with its links and their providers; the kiosk's own town's
    facilities with their SIP2 mark (the kiosk's municipality joined, not read first).
    """
    s = ctx.s
    rows = s.execute(
        select(MyKeyID, ServiceLink, Provider)
        .outerjoin(ServiceLink, ServiceLink.mykey_id == MyKeyID.id)
        .outerjoin(Provider, Provider.id == ServiceLink.provider_id)
        .where(MyKeyID.id == data["mykey"])
        .order_by(ServiceLink.id)
    ).all()
    if not rows:
        raise PurposeError("session_ended", status=409, final=True)
    mykey = rows[0][0]
    linked = [(row, p) for _, row, p in rows if row is not None]
    linked_ids = {p.id for _, p in linked}
    near, nearby, with_sip2 = _nearby(ctx)
    created = bool(data.get("created"))
    return {
        "mykey_id": mykey.id,
        "created": created,
        "can_reroll": created and identity.can_reroll(s, mykey, has_links=bool(linked)),
        "moved": bool(data.get("moved")),
        "certificate": certificate_notice(ctx, data.get("not_after")),
        "rerolls_left": identity.MAX_REROLLS - mykey.rerolls_used,
        "links": _links(linked, locale),
        "near": _place(near, nearby),
        "providers": _entries(
            s, nearby, locale, terms=True, linked_ids=linked_ids, with_sip2=with_sip2
        ),
    }


def _nearby(ctx: FlowContext) -> tuple[str, list[Provider], set[int]]:
    """(the kiosk's municipality, its facilities by reading, those with SIP2): one read
    joining the kiosk's own facility. A kiosk whose facility has no place yet (and home)
    offers the first facilities, as before."""
    s = ctx.s
    shown = (
        select(Provider, LibrarySip2.provider_id)
        .outerjoin(LibrarySip2, LibrarySip2.provider_id == Provider.id)
        .order_by(Provider.search_name, Provider.id)
        .limit(PROVIDERS_SHOWN)
    )
    rows: list[Any] = []
    if ctx.terminal.provider_id is not None:
        kiosk = aliased(Provider)
        rows = s.execute(
            shown.join(
                kiosk,
                (kiosk.municipality_code == Provider.municipality_code)
                & (kiosk.municipality_code != ""),
            ).where(kiosk.id == ctx.terminal.provider_id)
        ).all()
    near = rows[0][0].municipality_code if rows else ""
    if not rows:
        rows = s.execute(shown).all()
    return near, [row[0] for row in rows], {row[1] for row in rows if row[1] is not None}


def linked_one(data: dict[str, Any], row: Any, provider: Provider, locale: str) -> dict[str, Any]:
    """The answer to a link just verified: that link alone, which the page merges into the
    screen it shows (the other links and the facilities to link have not changed)."""
    return {"mykey_id": data["mykey"], "link": _links([(row, provider)], locale)[0]}


def _links(linked: Any, locale: str) -> list[dict[str, Any]]:
    return [
        {
            "provider_id": p.id,
            "provider": _name(p, locale),
            "number": row.customer_number,
            "verified": row.verified,
        }
        for row, p in linked
    ]


def _home_municipality(ctx: FlowContext) -> ColumnElement[str] | str:
    """The municipality of the kiosk's own facility as a scalar subquery (read within
    the query that uses it); '' at home. NULL when the facility has no place yet."""
    if ctx.terminal.provider_id is None:
        return ""
    return (
        select(func.nullif(Provider.municipality_code, ""))
        .where(Provider.id == ctx.terminal.provider_id)
        .scalar_subquery()
    )


def _place(code: str, providers: Any) -> dict[str, str] | None:
    names = [p.municipality_name for p in providers if p.municipality_name]
    return (
        None
        if not code
        else {"code": code, "prefecture": code[:2], "name": names[0] if names else ""}
    )


def _marks(s: Any, ids: list[int], mykey: str) -> tuple[set[int], set[int]]:
    """Of these providers, (those the MyKey ID is linked to, those with SIP2): one read."""
    if not ids:
        return set(), set()
    found = s.execute(
        union_all(
            select(ServiceLink.provider_id, literal("link")).where(
                ServiceLink.mykey_id == mykey, ServiceLink.provider_id.in_(ids)
            ),
            select(LibrarySip2.provider_id, literal("sip2")).where(
                LibrarySip2.provider_id.in_(ids)
            ),
        )
    ).all()
    return (
        {pid for pid, mark in found if mark == "link"},
        {pid for pid, mark in found if mark == "sip2"},
    )


def _entries(
    s: Any,
    providers: Any,
    locale: str,
    *,
    terms: bool,
    mykey: str = "",
    linked_ids: set[int] | None = None,
    with_sip2: set[int] | None = None,
) -> list[dict[str, Any]]:
    """Providers as the link screen shows them (with their terms when `terms`); which
    are linked and which have SIP2 read in one query unless given."""
    providers = list(providers)
    if linked_ids is None or with_sip2 is None:
        linked_ids, with_sip2 = _marks(s, [p.id for p in providers], mykey)
    en = locale == "en"
    out = []
    for p in providers:
        entry: dict[str, Any] = {
            "id": p.id,
            "name": _name(p, locale),
            "kana": p.name_kana,
            "kind": p.kind,
            "code": p.code,
            "place": p.municipality_name,
            "linked": p.id in linked_ids,
            "digits_only": p.number_rule.get("charset", "digits") == "digits",
            # The library checks its own password (SIP2): the link is verified at once.
            "sip2": p.id in with_sip2,
        }
        if terms:
            entry["terms"] = p.terms_en if en and p.terms_en else p.terms_ja
            entry["terms_version"] = p.terms_version
        out.append(entry)
    return out


def facilities(
    ctx: FlowContext, data: dict[str, Any], params: Mapping[str, Any], locale: str
) -> dict[str, Any]:
    """Search (`q`), or browse: no parameter gives the prefectures, `prefecture` its
    municipalities, `municipality` its facilities; one bounded page at a time."""
    s = ctx.s
    page = facility_search.clean_page(params.get("page"))
    mykey = data["mykey"]
    if "q" in params:
        query = facility_search.clean_query(params.get("q"))
        found = facility_search.search(s, query, page, _home_municipality(ctx))
        return _found("search", found, s, mykey, locale, query=query)
    if "municipality" in params:
        code = facility_search.valid_code(params.get("municipality"))
        if not code:
            raise PurposeError("unknown_place", status=404)
        in_town = facility_search.in_municipality(s, code, page)
        return _found("facilities", in_town, s, mykey, locale, municipality=code)
    if "prefecture" in params:
        code = facility_search.valid_code(params.get("prefecture"))
        if not code or code[2:5] != "000":
            raise PurposeError("unknown_place", status=404)
        rows = facility_search.municipalities(s, code)
        return {
            "view": "municipalities",
            "prefecture": code,
            "results": [{"code": c, "name": n, "count": k} for c, n, k in rows],
            "total": len(rows),
        }
    prefectures = facility_search.prefectures()
    return {
        "view": "prefectures",
        "results": [{"code": c, "name": n, "kana": k} for c, n, k in prefectures],
        "total": len(prefectures),
    }


def _found(
    view: str, found: facility_search.Page, s: Any, mykey: str, locale: str, **extra: str
) -> dict[str, Any]:
    return {
        "view": view,
        **extra,
        "results": _entries(s, found.providers, locale, terms=False, mykey=mykey),
        "total": found.total,
        "capped": found.capped,
        "page": found.page,
        "more": found.more,
        "page_size": facility_search.PAGE_SIZE,
    }


class KioskPurpose(BasePurpose):
    """A citizen's own MyKey ID at a kiosk or at home."""

    name = PURPOSE
    terminal_kinds = frozenset({TerminalKind.KIOSK, TerminalKind.HOME})
    reads = frozenset({"me", "points", "causes", "facilities", "facility"})

    def __init__(self, locale: Any) -> None:
        # The page's language, asked at each step (a callable: the web layer's).
        self._locale = locale

    def idle_seconds(self, ctx: FlowContext) -> float:
        """A public kiosk forgets the citizen after a minute; their own reader later."""
        if ctx.terminal.kind == TerminalKind.HOME:
            return float(ctx.config.get("HOME_IDLE_SECONDS", 600))
        return float(ctx.config.get("KIOSK_IDLE_SECONDS", 60))

    def verified(self, ctx: FlowContext, card: VerifiedCard, data: dict[str, Any]) -> Outcome:
        """Open the card's MyKey ID, or make one."""
        mykey, created = identity.open_or_create(ctx.s, card.card_key, card.not_after)
        data = {"mykey": mykey.id, "created": created, "not_after": card.not_after.isoformat()}
        return Outcome(me(ctx, data, self._locale()), data)

    def act(
        self, ctx: FlowContext, name: str, data: dict[str, Any], params: Mapping[str, Any]
    ) -> Outcome:
        """me, points, causes, give_prepare, give_confirm, reroll, link, unlink."""
        locale = self._locale()
        if name == "me":
            return Outcome(me(ctx, data, locale), data)
        if name == "facilities":
            return Outcome(facilities(ctx, data, params, locale), data)
        if name == "facility":
            provider = _provider(ctx, params)
            entry = _entries(ctx.s, [provider], locale, terms=True, mykey=data["mykey"])[0]
            return Outcome(entry, data)
        if name == "points":
            return Outcome({"municipalities": my_points(ctx.s, data["mykey"])}, data)
        if name == "causes":
            return Outcome(open_causes(ctx.s, data["mykey"]), data)
        if name == "give_prepare":
            body, pending = give_prepare(ctx.s, data["mykey"], params)
            return Outcome(body, {**data, "give": pending})
        if name == "give_confirm":
            pending = data.get("give")
            if not isinstance(pending, dict):
                raise PurposeError("out_of_order", status=409)
            body, pending = give_confirm(ctx.s, data["mykey"], pending)
            return Outcome(body, {**data, "give": pending})
        if name == "reroll":
            if not data.get("created"):
                raise PurposeError("reroll_closed")
            data = {**data, "mykey": identity.reroll(ctx.s, data["mykey"]).id}
            return Outcome(me(ctx, data, locale), data)
        if name == "link":
            provider = _provider(ctx, params)
            identity.link(ctx.s, data["mykey"], provider, _number(params), _terms(params))
            data = {**data, "created": False}  # linked: no more re-rolls
            return Outcome(me(ctx, data, locale), data)
        if name == "link_prepare":
            return self._link_prepare(ctx, data, params)
        if name == "link_verify":
            return self._link_verify(ctx, data, params, locale)
        if name == "unlink":
            provider_id = params.get("provider_id")
            if not isinstance(provider_id, int) or isinstance(provider_id, bool):
                raise PurposeError("unknown_provider", status=404)
            identity.unlink(ctx.s, data["mykey"], provider_id)
            return Outcome(me(ctx, data, locale), data)
        raise PurposeError("unknown_step", status=404)

    def _link_prepare(
        self, ctx: FlowContext, data: dict[str, Any], params: Mapping[str, Any]
    ) -> Outcome:
        """Check the number and the terms (nothing written); give the page what it seals
        the library password to: the connector bridge's key and a fresh command id."""
        provider = _provider(ctx, params)
        terms = _terms(params)
        number = identity.check_link(ctx.s, data["mykey"], provider, _number(params), terms)
        row = sip2.settings_of(ctx.s, provider.id)
        if row is None:
            raise PurposeError("library_system_unavailable")
        try:
            connector = sip2.current_connector(ctx.s, row)
            # Before the citizen's password is sealed: the connector has its settings and
            # the library system answers (a bridge that restarted is given them again).
            gateway_of(current_app).ready(row)
        except (sip2.Sip2SettingsError, Sip2Failed):
            raise PurposeError("library_system_unavailable") from None
        command_id = new_id()
        pending = {
            "provider_id": provider.id,
            "number": number,
            "terms_version": terms,
            "command_id": command_id,
            "bridge_id": connector.bridge_id,
        }
        body = {
            "seal": {
                "bridge_id": connector.bridge_id,
                "seal_key": connector.seal_key,
                "command_id": command_id,
                "purpose": "sip2-patron",
            }
        }
        return Outcome(body, {**data, "sip2": pending})

    def _link_verify(
        self, ctx: FlowContext, data: dict[str, Any], params: Mapping[str, Any], locale: str
    ) -> Outcome:
        """Ask the library system with the sealed password; link verified, or refuse
        (nothing written)."""
        pending = data.get("sip2")
        sealed = params.get("sealed")
        if not isinstance(pending, dict) or not isinstance(sealed, dict):
            raise PurposeError("library_password_start_again")
        data = {k: v for k, v in data.items() if k != "sip2"}
        provider, row = sip2.provider_with_settings(ctx.s, pending["provider_id"])
        if provider is None or row is None or row.bridge_id != pending["bridge_id"]:
            raise PurposeError("library_password_start_again")
        check = PasswordCheck(pending["number"], sealed, pending["command_id"], ctx.terminal.id)
        try:
            check_password(gateway_of(current_app), throttle_of(current_app), row, check)
        except PasswordCheckFailed as exc:
            extra = {"retry_after": exc.retry_after} if exc.retry_after else {}
            raise PurposeError(exc.code.value, extra=extra) from None
        row = identity.link(
            ctx.s,
            data["mykey"],
            provider,
            pending["number"],
            pending["terms_version"],
            Verification.LIBRARY,
        )
        data = {**data, "created": False}
        return Outcome(linked_one(data, row, provider, locale), data)

    def view(self, ctx: FlowContext, data: dict[str, Any]) -> dict[str, Any]:
        """The MyKey ID screen again."""
        return me(ctx, data, self._locale()) if "mykey" in data else {}


def _provider(ctx: FlowContext, params: Mapping[str, Any]) -> Provider:
    provider_id = params.get("provider_id")
    valid = isinstance(provider_id, int) and not isinstance(provider_id, bool)
    provider = ctx.s.get(Provider, provider_id) if valid else None
    if provider is None:
        raise PurposeError("unknown_provider", status=404)
    return provider


def _number(params: Mapping[str, Any]) -> str:
    return str(params.get("customer_number") or "")[:64]


def _terms(params: Mapping[str, Any]) -> int | None:
    terms = params.get("terms_version") if params.get("accepted") is True else None
    return terms if isinstance(terms, int) and not isinstance(terms, bool) else None
