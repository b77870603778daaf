"""What the platform and a bridge say to each other about SIP2: settings, answers, codes.

Standard library only (imported by the bridge and the platform alike, through
`bridge.wire`). The platform sends a bridge its connection settings (`Sip2Config`, the
passwords in it sealed to the bridge) and SIP2 requests as frame text; the bridge
answers with a projection of the library system's reply, never the reply itself:

- 98 ACS Status -> `Sip2Status`: online, supported messages (BX decoded), institution
  id, library name, protocol version (not: screen messages, print lines, dates, ...);
- 64 Patron Information / 24 Patron Status -> `Sip2Patron`: valid patron (BL), valid
  password (CQ), the patron-status flags that are set, by name (not: the name AE, fees,
  items, counts, limits, addresses, e-mail, phone, screen messages);
- 94 Login -> `Sip2Login`: ok; 36 End Session -> `Sip2EndSession`: ended.

Bounds: host names 253 characters (DNS); SIP2 field values of the settings 64
characters (institution ids, login users and location codes are short codes; SIP2's own
limit is 255 bytes); a CA bundle 16 KiB (a few PEM certificates); timeouts 0.1-60 s.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

# The library system's character sets: UTF-8, Shift_JIS (as Windows-31J, what Japanese
# systems call Shift_JIS), and cp850, SIP2's default.
CHARSETS = ("utf-8", "shift_jis", "cp850")
MAX_HOST = 253
MAX_FIELD = 64
MAX_CA_PEM = 16 * 1024
MAX_SIP2_FRAME = 1024  # a 63 request is under 100 characters
MIN_TIMEOUT, MAX_TIMEOUT = 0.1, 60.0

# The 14 patron-status flags of 24 and 64, in their order (SIP2 2.00, "patron status").
PATRON_FLAGS = (
    "charge_privileges_denied",
    "renewal_privileges_denied",
    "recall_privileges_denied",
    "hold_privileges_denied",
    "card_reported_lost",
    "too_many_items_charged",
    "too_many_items_overdue",
    "too_many_renewals",
    "too_many_claims_of_items_returned",
    "too_many_items_lost",
    "excessive_outstanding_fines",
    "excessive_outstanding_fees",
    "recall_overdue",
    "too_many_items_billed",
)
# The 16 positions of BX (supported messages) in 98, as the commands they stand for.
SUPPORTED_MESSAGES = (
    "23",  # patron status
    "11",  # checkout
    "09",  # checkin
    "01",  # block patron
    "99",  # SC/ACS status
    "97",  # request SC/ACS resend
    "93",  # login
    "63",  # patron information
    "35",  # end patron session
    "37",  # fee paid
    "17",  # item information
    "19",  # item status update
    "25",  # patron enable
    "15",  # hold
    "29",  # renew
    "65",  # renew all
)


class Sip2Code(StrEnum):
    """Why a SIP2 command failed on the bridge (an Error frame's `code`)."""

    NOT_CONFIGURED = "sip2_not_configured"  # no sip2_configure since the bridge started
    REFUSED = "sip2_refused"  # the SIP2 firewall refused the request; nothing was sent
    SEAL = "sip2_seal"  # a sealed password does not open for this bridge and context
    CHARSET = "sip2_charset"  # a value does not fit the library system's character set
    THROTTLED = "sip2_throttled"  # too many wrong passwords for this patron lately
    UNREACHABLE = "sip2_unreachable"  # the connection was refused, reset or not found
    CONNECT_TIMEOUT = "sip2_connect_timeout"  # no connection within the connect timeout
    TLS = "sip2_tls"  # the TLS handshake or the certificate check failed
    LOGIN_REFUSED = "sip2_login_refused"  # 94 with ok 0 (or the system hung up on 93)
    TIMEOUT = "sip2_timeout"  # no reply within the reply timeout
    CHECKSUM = "sip2_checksum"  # checksums still wrong after one resend
    BAD_REPLY = "sip2_bad_reply"  # a reply that is malformed, of the wrong type or patron


def _text(value: Any, name: str, limit: int, *, empty: bool = True) -> str:
    """A SIP2 field value of the settings: printable, no field delimiter."""
    if not isinstance(value, str) or len(value) > limit or (not value and not empty):
        raise ValueError(f"{name}: expected a string of at most {limit}")
    if not value.isprintable() or "|" in value:
        raise ValueError(f"{name}: printable characters only, no '|'")
    return value


def _bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name}: expected a boolean")
    return value


def _timeout(value: Any, name: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValueError(f"{name}: expected seconds")
    if not MIN_TIMEOUT <= value <= MAX_TIMEOUT:
        raise ValueError(f"{name}: expected {MIN_TIMEOUT}-{MAX_TIMEOUT} seconds")
    return float(value)


_HOST_RE = re.compile(r"^[A-Za-z0-9._:-]{1,253}$")


@dataclass(frozen=True, slots=True)
class Sip2Config:
    """How a bridge reaches its library system over SIP2 (the `sip2_configure` command).

    `login_password` (CO of 93) and `terminal_password` (AC of every request; None: sent
    empty) are envelopes sealed to the bridge (bridge.seal.seal_secret) with purposes
    `sip2-login` and `sip2-terminal`, bound to `target()`: the platform stores and
    relays them, it never sees the passwords. `patron_status`: the system answers 23
    Patron Status (FOLIO's edge-sip2 does not).
    """

    host: str
    port: int
    login_user: str
    login_password: Mapping[str, str | int]
    institution_id: str = ""
    location_code: str = ""
    terminal_password: Mapping[str, str | int] | None = None
    tls: bool = False
    ca_pem: str | None = None  # None: the system's CAs
    charset: str = "utf-8"
    checksums: bool = False
    patron_status: bool = True
    connect_timeout: float = 5.0
    reply_timeout: float = 5.0

    def __repr__(self) -> str:
        return f"Sip2Config({self.target()!r}, charset={self.charset!r})"

    def target(self) -> str:
        """What the sealed passwords are bound to: `tls://host:port` or `tcp://host:port`."""
        return f"{'tls' if self.tls else 'tcp'}://{self.host.lower()}:{self.port}"


_CONFIG_FIELDS = {
    "host",
    "port",
    "login_user",
    "login_password",
    "institution_id",
    "location_code",
    "terminal_password",
    "tls",
    "ca_pem",
    "charset",
    "checksums",
    "patron_status",
    "connect_timeout",
    "reply_timeout",
}


def config_to_json(config: Sip2Config) -> dict[str, Any]:
    """The settings as JSON (validated by the same rules as `config_from_json`)."""
    out: dict[str, Any] = {
        "host": config.host,
        "port": config.port,
        "login_user": config.login_user,
        "login_password": dict(config.login_password),
        "institution_id": config.institution_id,
        "location_code": config.location_code,
        "tls": config.tls,
        "charset": config.charset,
        "checksums": config.checksums,
        "patron_status": config.patron_status,
        "connect_timeout": config.connect_timeout,
        "reply_timeout": config.reply_timeout,
    }
    if config.terminal_password is not None:
        out["terminal_password"] = dict(config.terminal_password)
    if config.ca_pem is not None:
        out["ca_pem"] = config.ca_pem
    config_from_json(out, envelope=lambda value, name: value)
    return out


def config_from_json(value: Any, *, envelope: Any) -> Sip2Config:
    """Validate settings from JSON; `envelope(value, name)` checks a sealed envelope.
    ValueError on anything malformed or out of bounds."""
    if not isinstance(value, dict):
        raise ValueError("config: expected an object")
    extra = set(value) - _CONFIG_FIELDS
    if extra:
        raise ValueError(f"config: unknown fields {sorted(extra)[:4]}")
    host = value.get("host")
    if not isinstance(host, str) or not _HOST_RE.match(host) or len(host) > MAX_HOST:
        raise ValueError("config: bad host")
    port = value.get("port")
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise ValueError("config: bad port")
    if "login_password" not in value:
        raise ValueError("config: missing login_password")
    ca_pem = value.get("ca_pem")
    if ca_pem is not None and (
        not isinstance(ca_pem, str)
        or len(ca_pem) > MAX_CA_PEM
        or not ca_pem.isascii()
        or "-----BEGIN CERTIFICATE-----" not in ca_pem
    ):
        raise ValueError("config: ca_pem must be PEM certificates")
    charset = value.get("charset", "utf-8")
    if charset not in CHARSETS:
        raise ValueError(f"config: charset must be one of {CHARSETS}")
    terminal = value.get("terminal_password")
    return Sip2Config(
        host=host,
        port=port,
        login_user=_text(value.get("login_user"), "login_user", MAX_FIELD),
        login_password=envelope(value["login_password"], "login_password"),
        institution_id=_text(value.get("institution_id", ""), "institution_id", MAX_FIELD),
        location_code=_text(value.get("location_code", ""), "location_code", MAX_FIELD),
        terminal_password=None if terminal is None else envelope(terminal, "terminal_password"),
        tls=_bool(value.get("tls", False), "tls"),
        ca_pem=ca_pem,
        charset=charset,
        checksums=_bool(value.get("checksums", False), "checksums"),
        patron_status=_bool(value.get("patron_status", True), "patron_status"),
        connect_timeout=_timeout(value.get("connect_timeout", 5.0), "connect_timeout"),
        reply_timeout=_timeout(value.get("reply_timeout", 5.0), "reply_timeout"),
    )


def check_frame_text(value: Any) -> str:
    """A SIP2 request as the platform sends it: bounded text (checked by the bridge's
    SIP2 firewall; here only its size and type)."""
    if not isinstance(value, str) or not 2 <= len(value) <= MAX_SIP2_FRAME:
        raise ValueError(f"frame: expected SIP2 text of 2-{MAX_SIP2_FRAME} characters")
    return value


# -- projections ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sip2Status:
    """98 ACS Status, projected."""

    online: bool
    supported: tuple[str, ...]  # command codes, in SUPPORTED_MESSAGES order
    institution_id: str
    library_name: str | None
    protocol_version: str


@dataclass(frozen=True, slots=True)
class Sip2Patron:
    """64 Patron Information or 24 Patron Status, projected: only the answers to "is
    this a valid patron, is this their password, may they borrow"."""

    valid_patron: bool | None  # BL; None when the system left it out
    valid_password: bool | None  # CQ; None when the system left it out (no AD sent)
    flags: tuple[str, ...]  # the PATRON_FLAGS that are set, in their order

    def flag(self, name: str) -> bool:
        """Is this patron-status flag set?"""
        if name not in PATRON_FLAGS:
            raise KeyError(name)
        return name in self.flags


@dataclass(frozen=True, slots=True)
class Sip2Login:
    """94 Login, projected."""

    ok: bool


@dataclass(frozen=True, slots=True)
class Sip2EndSession:
    """36 End Session, projected."""

    ended: bool


Projection = Sip2Status | Sip2Patron | Sip2Login | Sip2EndSession


def projection_to_json(p: Projection) -> dict[str, Any]:
    """A projection as JSON."""
    if isinstance(p, Sip2Status):
        out: dict[str, Any] = {
            "kind": "status",
            "online": p.online,
            "supported": list(p.supported),
            "institution_id": p.institution_id,
            "library_name": p.library_name,
            "protocol_version": p.protocol_version,
        }
    elif isinstance(p, Sip2Patron):
        out = {
            "kind": "patron",
            "valid_patron": p.valid_patron,
            "valid_password": p.valid_password,
            "flags": list(p.flags),
        }
    elif isinstance(p, Sip2Login):
        out = {"kind": "login", "ok": p.ok}
    else:
        out = {"kind": "end_session", "ended": p.ended}
    projection_from_json(out)
    return out


_KINDS = {
    "status": {"online", "supported", "institution_id", "library_name", "protocol_version"},
    "patron": {"valid_patron", "valid_password", "flags"},
    "login": {"ok"},
    "end_session": {"ended"},
}


def _optional_bool(value: Any, name: str) -> bool | None:
    return None if value is None else _bool(value, name)


def _codes(value: Any, allowed: tuple[str, ...], name: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(v in allowed for v in value):
        raise ValueError(f"{name}: expected a list of known names")
    if len(set(value)) != len(value):
        raise ValueError(f"{name}: duplicates")
    return tuple(v for v in allowed if v in value)


def projection_from_json(value: Any) -> Projection:
    """Validate a projection from JSON; ValueError on anything else."""
    if not isinstance(value, dict) or value.get("kind") not in _KINDS:
        raise ValueError("projection: unknown kind")
    kind = value["kind"]
    if set(value) != _KINDS[kind] | {"kind"}:
        raise ValueError(f"projection {kind}: wrong fields")
    if kind == "status":
        name = value["library_name"]
        return Sip2Status(
            online=_bool(value["online"], "online"),
            supported=_codes(value["supported"], SUPPORTED_MESSAGES, "supported"),
            institution_id=_text(value["institution_id"], "institution_id", 255),
            library_name=None if name is None else _text(name, "library_name", 255),
            protocol_version=_text(value["protocol_version"], "protocol_version", 4),
        )
    if kind == "patron":
        return Sip2Patron(
            valid_patron=_optional_bool(value["valid_patron"], "valid_patron"),
            valid_password=_optional_bool(value["valid_password"], "valid_password"),
            flags=_codes(value["flags"], PATRON_FLAGS, "flags"),
        )
    if kind == "login":
        return Sip2Login(_bool(value["ok"], "ok"))
    return Sip2EndSession(_bool(value["ended"], "ended"))
