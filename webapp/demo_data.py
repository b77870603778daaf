"""Demo data: a library (ISIL JP-1000001, NW-7 barcodes), a museum, staff, sample numbers.

Used by `python -m webapp.demo` and by tests that need the same world. Never in
production: nothing here runs unless asked for.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from .providers import services as provider_services
from .providers.models import Provider, ProviderKind
from .providers.numbers import compute_check
from .staff.models import Role

LIBRARY_CODE = "JP-1000001"
MUSEUM_CODE = "museum-ichimai"
# Library patron numbers: 10 digits, the last a 7DR check digit (common on NW-7 cards).
LIBRARY_RULE = {"min_length": 10, "max_length": 10, "charset": "digits", "check": "7dr"}
LIBRARY_COUNTER = {"mode": "B", "symbology": "nw7", "nw7_start": "A", "nw7_stop": "A"}
MUSEUM_RULE = {"min_length": 6, "max_length": 8, "charset": "digits", "check": "none"}

# The demo's staff logins (published: `make demo` prints them, and the front page shows
# them in demo mode). Provider staff of the demo library:
LOGINS = {
    "admin": ("ichimai-admin-demo", Role.PLATFORM_ADMIN),
    "library-admin": ("ichimai-library-demo", Role.PROVIDER_ADMIN),
    "counter": ("ichimai-counter-demo", Role.COUNTER_STAFF),
}
# The museum's shop till (加盟店レジ): a merchant staff login of the demo city's museum.
TILL_LOGIN = ("museum-till", "ichimai-till-demo")
# The demo city's points officer (ポイント担当): programs, grants, CSV, reports.
OFFICER_LOGIN = ("city-points", "ichimai-points-demo")
# The demo city's administrator (自治体管理者): its providers, terminals and staff.
CITY_ADMIN_LOGIN = ("city-admin", "ichimai-city-demo")


def demo_logins() -> list[tuple[str, str, Role]]:
    """Every demo login as (login, password, role), in the order `make demo` prints them."""
    rows = [(login, password, role) for login, (password, role) in LOGINS.items()]
    rows.append((*TILL_LOGIN, Role.MERCHANT_STAFF))
    rows.append((*OFFICER_LOGIN, Role.POINTS_OFFICER))
    rows.append((*CITY_ADMIN_LOGIN, Role.MUNICIPAL_ADMIN))
    return rows


LIBRARY_TERMS_JA = (
    "いちまい市立中央図書館 利用規約（デモ）\n\n"
    "1. マイナンバーカードを図書館の利用者カードとして使えます。\n"
    "2. 図書館は貸出の記録をマイキーIDと結び付けて保存しません。\n"
    "3. 登録はいつでもキオスク端末で解除できます。"
)
LIBRARY_TERMS_EN = (
    "Ichimai City Central Library: terms of use (demo)\n\n"
    "1. Your My Number Card works as your library card.\n"
    "2. The library keeps no lending record linked to your MyKey ID.\n"
    "3. You can unlink at a kiosk at any time."
)
MUSEUM_TERMS_JA = "いちまい市立美術館 利用規約（デモ）\n\n年間パスポートの番号を登録できます。"
MUSEUM_TERMS_EN = "Ichimai City Art Museum: terms of use (demo)\n\nLink your annual pass number."


def library_number(serial: int) -> str:
    """A valid demo library patron number: 9 digits + a 7DR check digit."""
    data = f"{serial:09d}"
    return data + compute_check(data, "7dr")


@dataclass(frozen=True)
class DemoProviders:
    """The demo's two providers."""

    library: Provider
    museum: Provider


# The demo city (webapp/demo.py DEMO_CITY): a valid code no real municipality has.
DEMO_PLACE = ("131997", "いちまい市")


def ensure_providers(s: Session) -> DemoProviders:
    """Create the demo library and museum unless they exist."""
    found = {p.code: p for p in s.scalars(select(Provider))}
    library = found.get(LIBRARY_CODE) or provider_services.create_provider(
        s,
        code=LIBRARY_CODE,
        kind=ProviderKind.LIBRARY,
        name_ja="いちまい市立中央図書館",
        name_kana="いちまいしりつちゅうおうとしょかん",
        name_en="Ichimai City Central Library",
        municipality_code=DEMO_PLACE[0],
        municipality_name=DEMO_PLACE[1],
        terms_ja=LIBRARY_TERMS_JA,
        terms_en=LIBRARY_TERMS_EN,
        number_rule_settings=LIBRARY_RULE,
        counter_settings=LIBRARY_COUNTER,
    )
    museum = found.get(MUSEUM_CODE) or provider_services.create_provider(
        s,
        code=MUSEUM_CODE,
        kind=ProviderKind.MUSEUM,
        name_ja="いちまい市立美術館",
        name_kana="いちまいしりつびじゅつかん",
        name_en="Ichimai City Art Museum",
        municipality_code=DEMO_PLACE[0],
        municipality_name=DEMO_PLACE[1],
        terms_ja=MUSEUM_TERMS_JA,
        terms_en=MUSEUM_TERMS_EN,
        number_rule_settings=MUSEUM_RULE,
    )
    return DemoProviders(library, museum)
