"""A country's shape in PostgreSQL, built with COPY (not the ORM), for `make bench-scale`.

    .venv/bin/python -m bench.scale_data --ids 1000000 [--url URL] [--keep]

Drops and re-creates the database named in URL (default bench_scale_<n>, e.g.
bench_scale_1m), creates the schema with the platform's migrations (alembic upgrade head),
then fills it:

- 1,741 municipalities (the real count per prefecture, 23 Tokyo wards included), each a
  valid 全国地方公共団体コード (webapp/places/codes.py), one points tenant each, with an
  issuance and an expired account, 2 grant programs and 5 merchants (one a bus operator
  taking half of the town's spending);
- 5,000 providers (public and university libraries, museums, other kinds), each in a
  municipality, with a name, its kana reading and the search keys the platform computes
  (webapp/providers/services.set_search_keys); 4 terminals each (20,000);
- N MyKey IDs, each with a card binding whose key is the platform's keyed hash
  (webapp.jpki.card_key with CARD_KEY_SECRET over ISSUER_DER + the card's serial, so a
  bench can compute the key of card i and look it up for real), 1.5·N service links
  (every ID a link to a library of its town, every other ID a second one elsewhere), and a
  citizen account in its town;
- 2·N ledger transfers, one year of them in time order: each citizen is granted points by
  a program (a lot with its expiry) and spends part of them at a merchant (a lot move),
  plus each program's funding. Balances, running balances (debit_balance/credit_balance),
  lots and lot moves agree with the transfers: webapp/points/invariants.py holds.

Citizens are spread over municipalities by a Zipf-like weight (exponent 0.7: the largest
town holds about 3.5% of IDs, like Yokohama's share of Japan). Everything is a function of
the row's number (no random state), so a bench can find "citizen i" again.

Speed: secondary indexes and non-referenced unique keys are dropped before COPY and built
after, foreign-key triggers are off during COPY (session_replication_role = replica: the
rows are made consistent here, and the invariant check at the end reads them), then ANALYZE.
"""

from __future__ import annotations

import argparse
import bisect
import hmac
import importlib
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from webapp.places import codes
from webapp.places.kana import search_key
from webapp.providers.models import ProviderKind

ROOT = Path(__file__).resolve().parent.parent
SERVER = "postgresql://postgres@127.0.0.1:5432"

# The card key secret of the scale data (a bench computes card keys with it).
CARD_KEY_SECRET = b"ichimai-bench-scale-card-key-secret-0001"
# The issuer Name DER of the scale data's certificates (a stand-in: any fixed bytes do).
ISSUER_DER = bytes.fromhex("3031310b3009060355040613024a50") + b"JPKI-scale-issuer"

MYKEY_ALPHABET = "23456789ABCDEFGHJKMNPQRSTWXYZ"  # webapp.identity.services.ALPHABET
MYKEY_SPACE = len(MYKEY_ALPHABET) ** 8
MAX_IDS = 100_000_000  # the stride keeps IDs sorted and unique up to this many

PROVIDERS = 5_000
TERMINALS_PER_PROVIDER = 4
PROGRAMS_PER_TOWN = 2
MERCHANTS_PER_TOWN = 5
BUSY_MERCHANT = 2  # index of the bus operator (transport): half of each town's spending
FUNDING = 10**10  # each program's budget (never runs out at 100M IDs)
T0 = datetime(2025, 12, 1, tzinfo=UTC)  # the year of transfers: T0 .. T0 + 365 days
YEAR = timedelta(days=365)
CHUNK = 50_000  # citizens per chunk: their grants, then their spends

# Municipalities per prefecture (JIS X 0401 order): 1,718 + Tokyo's 23 wards = 1,741.
TOWNS = (
    179, 40, 33, 35, 25, 35, 59, 44, 25, 35, 63, 54, 62, 33, 30, 15, 19, 17, 27, 77, 42,
    35, 54, 29, 19, 26, 43, 41, 39, 30, 19, 19, 27, 23, 19, 24, 17, 20, 34, 60, 20, 21,
    45, 18, 26, 43, 41,
)  # fmt: skip
TOKYO_WARDS = 23
# Place-name syllables (kanji, reading) for synthetic town names.
PARTS = (
    ("山", "やま"), ("川", "かわ"), ("田", "た"), ("中", "なか"), ("本", "もと"),
    ("北", "きた"), ("南", "みなみ"), ("東", "ひがし"), ("西", "にし"), ("大", "おお"),
    ("小", "こ"), ("高", "たか"), ("松", "まつ"), ("森", "もり"), ("林", "はやし"),
    ("石", "いし"), ("原", "はら"), ("井", "い"), ("野", "の"), ("村", "むら"),
    ("島", "しま"), ("岡", "おか"), ("上", "かみ"), ("下", "しも"), ("新", "にい"),
    ("宮", "みや"), ("浜", "はま"), ("崎", "さき"), ("沢", "さわ"), ("谷", "たに"),
    ("坂", "さか"), ("橋", "はし"), ("池", "いけ"), ("尾", "お"), ("津", "つ"),
    ("富", "とみ"), ("日", "ひ"), ("長", "なが"), ("吉", "よし"), ("清", "きよ"),
)  # fmt: skip
# Provider kinds by share of the 5,000 (public libraries first, as the country has them).
KIND_SHARES = (
    (ProviderKind.LIBRARY, 2300), (ProviderKind.UNIVERSITY_LIBRARY, 1000),
    (ProviderKind.MUSEUM, 600), (ProviderKind.SPORTS, 400), (ProviderKind.COMMUNITY_PLAZA, 250),
    (ProviderKind.LECTURE, 150), (ProviderKind.BIKE_PARK, 150), (ProviderKind.SHOPPING_STREET, 100),
    (ProviderKind.OTHER, 50),
)  # fmt: skip
KIND_WORDS = {
    ProviderKind.LIBRARY: ("図書館", "としょかん"),
    ProviderKind.UNIVERSITY_LIBRARY: ("大学図書館", "だいがくとしょかん"),
    ProviderKind.MUSEUM: ("美術館", "びじゅつかん"),
    ProviderKind.SPORTS: ("体育館", "たいいくかん"),
    ProviderKind.COMMUNITY_PLAZA: ("市民広場", "しみんひろば"),
    ProviderKind.LECTURE: ("市民講座", "しみんこうざ"),
    ProviderKind.BIKE_PARK: ("駐輪場", "ちゅうりんじょう"),
    ProviderKind.SHOPPING_STREET: ("商店街", "しょうてんがい"),
    ProviderKind.OTHER: ("会館", "かいかん"),
}
BRANCHES = (("中央", "ちゅうおう"), ("北", "きた"), ("南", "みなみ"), ("東", "ひがし"),
            ("西", "にし"), ("駅前", "えきまえ"))  # fmt: skip

# The models modules (webapp/migrations/env.py MODEL_MODULES), for create_all.
MODEL_MODULES = (
    "webapp.providers.models", "webapp.identity.models", "webapp.staff.models",
    "webapp.terminals.models", "webapp.points.models", "webapp.sessions.models",
    "webapp.sip2.models",
)  # fmt: skip
# Tables loaded in bulk: their secondary indexes are built after the COPY.
BULK_TABLES = (
    "mykey_ids", "card_bindings", "service_links", "points_accounts", "points_transfers",
    "points_lots", "points_lot_moves",
)  # fmt: skip


def note(message: str) -> None:
    """Progress on stderr."""
    print(message, file=sys.stderr, flush=True)


def merchant_word(n: int) -> str:
    """What the town's n-th merchant is called after the town's name."""
    return "バス" if n == BUSY_MERCHANT else f"加盟店{n}"


def mix(i: int, salt: int) -> int:
    """A cheap deterministic hash of (i, salt) in 0 .. 2**32-1 (Knuth multiplicative)."""
    return ((i + 1) * 2654435761 + salt * 40503) * 2246822519 % 4294967291


def mykey_id(i: int) -> str:
    """The i-th MyKey ID: 8 characters of the platform's alphabet, sorted by i."""
    n = i * (MYKEY_SPACE // MAX_IDS) + mix(i, 7) % (MYKEY_SPACE // MAX_IDS)
    out = []
    for _ in range(8):
        n, r = divmod(n, len(MYKEY_ALPHABET))
        out.append(MYKEY_ALPHABET[r])
    return "".join(reversed(out))


def card_serial(i: int) -> bytes:
    """The certificate serial (INTEGER content) of citizen i's card."""
    return (0x10_0000_0000 + i).to_bytes(6, "big")


def card_key_of(i: int) -> bytes:
    """Citizen i's card key, as webapp.jpki.card_key computes it."""
    return hmac.digest(CARD_KEY_SECRET, ISSUER_DER + card_serial(i), "sha256")


@dataclass
class Town:
    """One municipality and its points accounts, programs and merchants."""

    id: int
    code: str
    name: str
    kana: str
    weight: float
    issuance: int = 0
    expired: int = 0
    programs: list[tuple[int, int]] = field(default_factory=list)  # (program id, account id)
    merchants: list[tuple[int, int]] = field(default_factory=list)  # (merchant id, account id)
    library: int = 0  # its first public library's provider id
    providers: list[int] = field(default_factory=list)


def town_codes() -> list[str]:
    """1,741 valid local government codes: Tokyo's wards 131 01-23, cities from x x 201."""
    out = []
    for n, count in enumerate(TOWNS, start=1):
        pref = f"{n:02d}"
        if pref == "13":
            out += [codes.with_check_digit(f"13{100 + k}") for k in range(1, TOKYO_WARDS + 1)]
            count -= TOKYO_WARDS
        out += [codes.with_check_digit(f"{pref}{200 + k}") for k in range(1, count + 1)]
    return out


def build_towns() -> list[Town]:
    """The municipalities with names, readings and Zipf-like weights (deterministic)."""
    towns = []
    all_codes = town_codes()
    for k, code in enumerate(all_codes):
        a, b = PARTS[k % 40], PARTS[(k // 40 + k) % 40]
        extra = PARTS[(k * 7) % 40] if k >= 1600 else ("", "")
        ward = code[:2] == "13" and code[2] == "1"
        suffix = ("区", "く") if ward else (("市", "し") if k % 3 else ("町", "まち"))
        name = a[0] + b[0] + extra[0] + suffix[0]
        kana = a[1] + b[1] + extra[1] + suffix[1]
        rank = (k * 1009) % len(all_codes) + 1  # a fixed shuffle of ranks
        towns.append(Town(k + 1, code, name, kana, rank**-0.7))
    return towns


class Picker:
    """Citizen i -> town index, by the towns' weights (a cumulative table)."""

    def __init__(self, towns: list[Town]) -> None:
        total = sum(t.weight for t in towns)
        acc, self.cum = 0.0, []
        for t in towns:
            acc += t.weight / total
            self.cum.append(acc)

    def __call__(self, i: int) -> int:
        return min(bisect.bisect(self.cum, mix(i, 1) / 4294967291), len(self.cum) - 1)


# --- COPY helpers -----------------------------------------------------------------------


def ts(moment: datetime) -> str:
    """A timestamptz literal for COPY text format."""
    return moment.isoformat()


def copy_rows(cur: psycopg.Cursor, table: str, columns: str, lines: Iterator[str]) -> int:
    """COPY `lines` (tab-separated text, one row each, no newline) into `table`."""
    n = 0
    with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        buf: list[str] = []
        for line in lines:
            buf.append(line)
            if len(buf) >= 20_000:
                copy.write("\n".join(buf) + "\n")
                n += len(buf)
                buf = []
        if buf:
            copy.write("\n".join(buf) + "\n")
            n += len(buf)
    return n


def drop_secondary(cur: psycopg.Cursor) -> list[str]:
    """Drop the bulk tables' secondary indexes and the unique keys no foreign key needs;
    return the statements that build them again."""
    rebuild: list[str] = []
    cur.execute(
        """SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)
           FROM pg_constraint c
           WHERE c.conrelid::regclass::text = ANY(%s) AND c.contype IN ('u', 'p')
             AND NOT EXISTS (SELECT 1 FROM pg_constraint f
                             WHERE f.contype = 'f' AND f.conindid = c.conindid)""",
        (list(BULK_TABLES),),
    )
    for table, name, definition in cur.fetchall():
        cur.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        rebuild.append(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
    cur.execute(
        """SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
           FROM pg_index i
           WHERE i.indrelid::regclass::text = ANY(%s)
             AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)""",
        (list(BULK_TABLES),),
    )
    for name, definition in cur.fetchall():
        cur.execute(f'DROP INDEX "{name}"')
        rebuild.append(definition)
    return rebuild


# --- The build --------------------------------------------------------------------------


@dataclass
class Built:
    """What was built: counts and the ids a bench needs."""

    ids: int
    seconds: float
    counts: dict[str, int]
    towns: list[Town]


def create_database(url: str, *, migrate: bool = True) -> None:
    """Drop and create the database of `url`, then the schema: by the migrations
    (alembic upgrade head), or with `migrate=False` by the app's create path
    (Base.metadata.create_all, as the tests and the embedded demo make it: faster)."""
    server, name = url.rsplit("/", 1)
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    if not migrate:
        from webapp.db import Base, make_engine

        for module in MODEL_MODULES:  # every table known, as the migrations' env has it
            importlib.import_module(module)
        engine = make_engine(sa_url(url))
        Base.metadata.create_all(engine)
        engine.dispose()
        return
    subprocess.run(
        [str(ROOT / ".venv/bin/alembic"), "-x", f"url={sa_url(url)}", "upgrade", "head"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )


def sa_url(url: str) -> str:
    """The SQLAlchemy form of a libpq URL."""
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def build(url: str, ids: int) -> Built:
    """Fill the (fresh) database at `url` with `ids` MyKey IDs and the country around them."""
    if not 1 <= ids <= MAX_IDS:
        raise ValueError(f"ids: 1 .. {MAX_IDS}")
    started = time.monotonic()
    towns = build_towns()
    pick = Picker(towns)
    counts: dict[str, int] = {}
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SET synchronous_commit = off")
        cur.execute("SET maintenance_work_mem = '1GB'")
        rebuild = drop_secondary(cur)
        cur.execute("SET session_replication_role = replica")  # no FK triggers in COPY

        # Accounts: per town issuance, expired, programs, merchants; then citizens.
        acct = 0
        program_id = merchant_id = 0
        system_rows: list[tuple[int, int, str, str]] = []  # id, town, kind, owner
        for t in towns:
            acct += 1
            t.issuance = acct
            system_rows.append((acct, t.id, "issuance", ""))
            acct += 1
            t.expired = acct
            system_rows.append((acct, t.id, "expired", ""))
            for _ in range(PROGRAMS_PER_TOWN):
                acct += 1
                program_id += 1
                t.programs.append((program_id, acct))
                system_rows.append((acct, t.id, "program", str(program_id)))
            for _ in range(MERCHANTS_PER_TOWN):
                acct += 1
                merchant_id += 1
                t.merchants.append((merchant_id, acct))
                system_rows.append((acct, t.id, "merchant", str(merchant_id)))
        first_citizen_account = acct + 1
        t0 = ts(T0)
        counts["points_municipalities"] = copy_rows(
            cur,
            "points_municipalities",
            "id, code, name, refund_window_days, default_expiry_days, created_at",
            (f"{t.id}\t{t.code}\t{t.name}\t30\t365\t{t0}" for t in towns),
        )
        copy_rows(
            cur,
            "points_accepted_categories",
            "municipality_id, category",
            (f"{t.id}\t{c}" for t in towns for c in ("museum", "shop", "transport", "tourism")),
        )
        categories = ("museum", "shop", "transport", "tourism", "shop")
        counts["points_programs"] = copy_rows(
            cur,
            "points_programs",
            "id, municipality_id, code, name, category, points_per_grant, expiry_days,"
            " account_id, active, created_at",
            (
                f"{pid}\t{t.id}\t{'VOL' if n == 0 else 'EVT'}\t"
                f"{'ボランティア' if n == 0 else 'イベント参加'}\t"
                f"{'volunteering' if n == 0 else 'event'}\t100\t365\t{aid}\tt\t{t0}"
                for t in towns
                for n, (pid, aid) in enumerate(t.programs)
            ),
        )
        counts["points_merchants"] = copy_rows(
            cur,
            "points_merchants",
            "id, municipality_id, code, name, category, account_id, active, created_at",
            (
                f"{mid}\t{t.id}\tM{n}\t{t.name}{merchant_word(n)}\t{categories[n]}\t{aid}\tt\t{t0}"
                for t in towns
                for n, (mid, aid) in enumerate(t.merchants)
            ),
        )

        # Providers: each town a public library first, the rest by share and weight.
        provider_rows = []
        town_of_provider: list[int] = []
        order = sorted(range(len(towns)), key=lambda k: -towns[k].weight)
        extra = PROVIDERS - len(towns)
        total_w = sum(t.weight for t in towns)
        share = [int(extra * towns[k].weight / total_w) for k in range(len(towns))]
        short = extra - sum(share)
        for k in order[:short]:
            share[k] += 1
        lib_budget = dict(KIND_SHARES)[ProviderKind.LIBRARY] - len(towns)
        others = [k for k, n in KIND_SHARES if k != ProviderKind.LIBRARY for _ in range(n)]
        pool = [ProviderKind.LIBRARY] * lib_budget + others
        pool = [pool[(j * 7919) % len(pool)] for j in range(len(pool))]  # a fixed shuffle
        taken = 0
        for k, t in enumerate(towns):
            for n in range(1 + share[k]):
                kind = ProviderKind.LIBRARY if n == 0 else pool[taken]
                if n:
                    taken += 1
                provider_rows.append((t, kind, n))
                town_of_provider.append(k)
        lines = []
        seen_names: dict[str, int] = {}
        for pid, (t, kind, n) in enumerate(provider_rows, start=1):
            word, word_kana = KIND_WORDS[kind]
            branch, branch_kana = BRANCHES[n % len(BRANCHES)] if n else ("中央", "ちゅうおう")
            name = (
                f"{t.name}立{branch}{word}" if n < len(BRANCHES) else f"{t.name}{branch}第{n}{word}"
            )
            kana = f"{t.kana}りつ{branch_kana}{word_kana}"
            if name in seen_names:
                seen_names[name] += 1
                name += str(seen_names[name])
            seen_names.setdefault(name, 1)
            isil = kind in ProviderKind.LIBRARIES
            code = f"JP-{1000000 + pid}" if isil else f"FAC-{pid:05d}"
            name_en = f"{t.code} {kind} {pid}"
            search_name = search_key(kana or name)[:200]
            search_text = search_key(f"{name} {kana} {name_en} {code}")[:500]
            pref = codes.LocalGovCode(t.code).prefecture
            lines.append(
                f"{pid}\t{code}\t{kind}\t{name}\t{name_en}\t利用規約\tTerms\t1\t{{}}\t{{}}\t{t0}"
                f"\t{pref}\t{t.code}\t{t.name}\t{kana}\t{search_name}\t{search_text}"
            )
            if not t.library:
                t.library = pid
            t.providers.append(pid)
        counts["providers"] = copy_rows(
            cur,
            "providers",
            "id, code, kind, name_ja, name_en, terms_ja, terms_en, terms_version, number_rule,"
            " counter_settings, created_at, prefecture_code, municipality_code,"
            " municipality_name, name_kana, search_name, search_text",
            iter(lines),
        )
        counts["terminals"] = copy_rows(
            cur,
            "terminals",
            "id, provider_id, kind, name, created_at",
            (
                f"{(pid - 1) * TERMINALS_PER_PROVIDER + n + 1}\t{pid}\t"
                + ("kiosk\tキオスク" if n == 0 else f"counter\tカウンター{n}")
                + f"\t{t0}"
                for pid in range(1, len(provider_rows) + 1)
                for n in range(TERMINALS_PER_PROVIDER)
            ),
        )
        note(f"scale_data: towns, providers, terminals in {time.monotonic() - started:.1f} s")

        # Citizens: IDs, bindings, links, accounts (one pass each, all functions of i).
        created = ts(T0 - timedelta(days=30))
        not_after = ts(datetime(2030, 3, 31, tzinfo=UTC))
        ids_of = [mykey_id(i) for i in range(ids)]
        town_of = [pick(i) for i in range(ids)]
        counts["mykey_ids"] = copy_rows(
            cur, "mykey_ids", "id, created_at, rerolls_used", (f"{m}\t{created}\t0" for m in ids_of)
        )
        counts["card_bindings"] = copy_rows(
            cur,
            "card_bindings",
            "card_key, mykey_id, cert_not_after, created_at",
            (
                f"\\\\x{card_key_of(i).hex()}\t{ids_of[i]}\t{not_after}\t{created}"
                for i in range(ids)
            ),
        )
        note(f"scale_data: IDs and bindings in {time.monotonic() - started:.1f} s")

        def links() -> Iterator[str]:
            link = 0
            for i in range(ids):
                t = towns[town_of[i]]
                link += 1
                yield (
                    f"{link}\t{ids_of[i]}\t{t.library}\t2{i:010d}\t1\t{created}\tstaff\t{created}"
                )
                if i % 2:
                    other = mix(i, 3) % len(provider_rows) + 1
                    if other == t.library:
                        other = other % len(provider_rows) + 1
                    link += 1
                    yield f"{link}\t{ids_of[i]}\t{other}\t3{i:010d}\t1\t{created}\tstaff\t{created}"

        counts["service_links"] = copy_rows(
            cur,
            "service_links",
            "id, mykey_id, provider_id, customer_number, accepted_terms_version, created_at,"
            " verification, verified_at",
            links(),
        )
        note(f"scale_data: links in {time.monotonic() - started:.1f} s")

        # The ledger: per chunk of citizens, their grants then their spends, in time order.
        fundings = [(t, pid, aid) for t in towns for pid, aid in t.programs]
        n_transfers = len(fundings) + 2 * ids
        step = YEAR / n_transfers
        balances: dict[int, int] = {}
        grant = [100 * (1 + mix(i, 4) % 10) for i in range(ids)]
        spend = [1 + mix(i, 5) % (g - 1) for i, g in enumerate(grant)]

        def transfers() -> Iterator[str]:
            for n, (t, pid, aid) in enumerate(fundings, start=1):
                balances[t.issuance] = balances.get(t.issuance, 0) - FUNDING
                balances[aid] = balances.get(aid, 0) + FUNDING
                yield (
                    f"{n}\t{t.id}\tfunding\tposted\t{t.issuance}\t{aid}\t{FUNDING}\tscale:f{n}"
                    f"\t{n:064x}\t\\N\t\\N\t{pid}\t\\N\t\\N\t\\N\t{ts(T0 + step * (n - 1))}"
                )
            n = len(fundings)
            for lo in range(0, ids, CHUNK):
                hi = min(lo + CHUNK, ids)
                for i in range(lo, hi):
                    n += 1
                    t = towns[town_of[i]]
                    pid, aid = t.programs[mix(i, 6) % PROGRAMS_PER_TOWN]
                    g = grant[i]
                    balances[aid] -= g
                    yield (
                        f"{n}\t{t.id}\tgrant\tposted\t{aid}\t{first_citizen_account + i}\t{g}"
                        f"\tscale:{n}\t{n:064x}\t\\N\t\\N\t{pid}\t\\N\t\\N\t{g}"
                        f"\t{ts(T0 + step * (n - 1))}"
                    )
                for i in range(lo, hi):
                    n += 1
                    t = towns[town_of[i]]
                    h = mix(i, 8)
                    m = BUSY_MERCHANT if h % 2 else (h >> 1) % MERCHANTS_PER_TOWN
                    aid = t.merchants[m][1]
                    s = spend[i]
                    after = balances.get(aid, 0) + s
                    balances[aid] = after
                    yield (
                        f"{n}\t{t.id}\tspend\tposted\t{first_citizen_account + i}\t{aid}\t{s}"
                        f"\tscale:{n}\t{n:064x}\t\\N\t\\N\t\\N\t\\N\t{grant[i] - s}\t{after}"
                        f"\t{ts(T0 + step * (n - 1))}"
                    )

        counts["points_transfers"] = copy_rows(
            cur,
            "points_transfers",
            "id, municipality_id, kind, status, debit_account_id, credit_account_id, amount,"
            " idempotency_key, payload_hash, reversal_of, pending_id, program_id, hold_until,"
            " debit_balance, credit_balance, created_at",
            transfers(),
        )
        note(f"scale_data: transfers in {time.monotonic() - started:.1f} s")

        def grant_id(i: int) -> int:
            lo = i - i % CHUNK
            return len(fundings) + 2 * lo + (i - lo) + 1

        def spend_id(i: int) -> int:
            lo = i - i % CHUNK
            return grant_id(i) + min(CHUNK, ids - lo)

        counts["points_lots"] = copy_rows(
            cur,
            "points_lots",
            "id, account_id, transfer_id, amount, remaining, expires_at",
            (
                f"{i + 1}\t{first_citizen_account + i}\t{grant_id(i)}\t{grant[i]}"
                f"\t{grant[i] - spend[i]}\t{ts(T0 + step * (grant_id(i) - 1) + YEAR)}"
                for i in range(ids)
            ),
        )
        counts["points_lot_moves"] = copy_rows(
            cur,
            "points_lot_moves",
            "id, lot_id, transfer_id, delta",
            (f"{i + 1}\t{i + 1}\t{spend_id(i)}\t{-spend[i]}" for i in range(ids)),
        )
        counts["points_accounts"] = copy_rows(
            cur,
            "points_accounts",
            "id, municipality_id, kind, owner, balance, debits_pending, credits_pending,"
            " created_at",
            (
                *(
                    f"{a}\t{m}\t{k}\t{o}\t{balances.get(a, 0)}\t0\t0\t{t0}"
                    for a, m, k, o in system_rows
                ),
                *(
                    f"{first_citizen_account + i}\t{towns[town_of[i]].id}\tcitizen\t{ids_of[i]}"
                    f"\t{grant[i] - spend[i]}\t0\t0\t{created}"
                    for i in range(ids)
                ),
            ),
        )
        note(f"scale_data: lots and accounts in {time.monotonic() - started:.1f} s")
        cur.execute("SET session_replication_role = DEFAULT")
        conn.commit()
        for statement in rebuild:
            cur.execute(statement)
            conn.commit()
        note(f"scale_data: indexes in {time.monotonic() - started:.1f} s")
        for table, column in (
            ("points_municipalities", "id"), ("points_programs", "id"),
            ("points_merchants", "id"), ("providers", "id"), ("terminals", "id"),
            ("service_links", "id"), ("points_accounts", "id"), ("points_transfers", "id"),
            ("points_lots", "id"), ("points_lot_moves", "id"),
        ):  # fmt: skip
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'),"  # noqa: S608
                f" (SELECT MAX({column}) FROM {table}))"
            )
        conn.commit()
        conn.autocommit = True
        cur.execute("VACUUM ANALYZE")
        # The mark a bench reads to know the database is complete (scale_run.complete).
        cur.execute(f"COMMENT ON DATABASE \"{conn.info.dbname}\" IS '{marker(ids)}'")
    seconds = time.monotonic() - started
    note(f"scale_data: {ids:,} IDs built in {seconds:.1f} s")
    return Built(ids, seconds, counts, towns)


def marker(ids: int) -> str:
    """The database comment of a complete build of `ids` IDs."""
    return f"ichimai scale data: {ids} ids, complete"


def database_url(ids: int) -> str:
    """The default database of a size: bench_scale_1m, bench_scale_10m, bench_scale_1000."""
    tag = f"{ids // 1_000_000}m" if ids % 1_000_000 == 0 else str(ids)
    return f"{SERVER}/bench_scale_{tag}"


def main(argv: list[str] | None = None) -> int:
    """Build one scale database."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ids", type=int, default=1_000_000)
    parser.add_argument("--url", help="libpq URL of the database (dropped and re-created)")
    parser.add_argument("--check", action="store_true", help="run the ledger invariants after")
    args = parser.parse_args(argv)
    url = args.url or database_url(args.ids)
    started = time.monotonic()
    create_database(url)
    built = build(url, args.ids)
    note(f"scale_data: schema + data in {time.monotonic() - started:.1f} s: {built.counts}")
    if args.check:
        from sqlalchemy.orm import Session

        from webapp.db import make_engine
        from webapp.points.invariants import violations

        engine = make_engine(sa_url(url))
        with Session(engine) as s:
            found = violations(s)
        engine.dispose()
        note(f"scale_data: invariants: {found or 'all hold'}")
        return 1 if found else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
