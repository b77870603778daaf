"""Staff services: create accounts, authenticate, change passwords. No Flask imports."""

from __future__ import annotations

import contextlib
import re
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..paging import Page, contains, paginate
from ..points.models import Merchant, Municipality
from ..providers.models import Provider
from .models import Role, StaffUser

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256  # bounds the hashing work an attacker can ask for
_LOGIN = re.compile(r"[a-z0-9][a-z0-9._@\-]{2,63}")
_hasher = PasswordHasher()  # argon2id with the library's current RFC 9106 defaults


class StaffError(ValueError):
    """A staff operation was refused; `field` names the input, messages in ja and en."""

    def __init__(self, field: str, message_ja: str, message_en: str) -> None:
        self.field, self.message_ja, self.message_en = field, message_ja, message_en
        super().__init__(f"{field}: {message_en}")

    def message(self, locale: str) -> str:
        """The message in `locale` ('ja' or 'en')."""
        return self.message_en if str(locale).startswith("en") else self.message_ja


class InvalidCredentials(StaffError):
    """Unknown login, wrong password or inactive account: deliberately the same error."""

    def __init__(self) -> None:
        super().__init__(
            "password",
            "ログインIDまたはパスワードが違います。",
            "The login or password is not correct.",
        )


@cache
def _dummy_hash() -> str:
    """A hash to verify against for unknown logins, so they take as long as known ones."""
    return _hasher.hash("not-a-real-password-just-for-timing")


def normalize_login(login: str) -> str:
    """Logins are case-insensitive: stored lower-case, spaces trimmed."""
    return login.strip().lower()


def _check_password(password: str) -> None:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise StaffError(
            "password",
            f"パスワードは{MIN_PASSWORD_LENGTH}文字以上にしてください。",
            f"Passwords need at least {MIN_PASSWORD_LENGTH} characters.",
        )


def create_staff(
    s: Session,
    login: str,
    password: str,
    role: Role | str,
    provider_id: int | None = None,
    *,
    municipality_id: int | None = None,
    merchant_id: int | None = None,
) -> StaffUser:
    """A new active staff account, scoped as its role needs (see `_scope`)."""
    login = normalize_login(login)
    if not _LOGIN.fullmatch(login):
        raise StaffError(
            "login",
            "ログインIDは英小文字・数字・「. _ @ -」で3〜64文字です。",
            "A login is 3-64 lower-case letters, digits or . _ @ -",
        )
    role = Role(role)
    provider_id, municipality_id, merchant_id = _scope(
        s, role, provider_id, municipality_id, merchant_id
    )
    _check_password(password)
    if s.scalar(select(StaffUser.id).where(StaffUser.login == login)) is not None:
        raise _login_taken()
    user = StaffUser(
        login=login,
        password_hash=_hasher.hash(password),
        role=role.value,
        provider_id=provider_id,
        municipality_id=municipality_id,
        merchant_id=merchant_id,
        active=True,
        session_epoch=0,
    )
    s.add(user)
    try:
        s.commit()
    except IntegrityError:
        s.rollback()
        raise _login_taken() from None
    return user


def _scope(
    s: Session,
    role: Role,
    provider_id: int | None,
    municipality_id: int | None,
    merchant_id: int | None,
) -> tuple[int | None, int | None, int | None]:
    """(provider, municipality, merchant) for `role`: the one it needs, the others None."""
    if role is Role.PLATFORM_ADMIN:
        return None, None, None
    if role in (Role.POINTS_OFFICER, Role.MUNICIPAL_ADMIN):
        if municipality_id is None or s.get(Municipality, municipality_id) is None:
            raise StaffError(
                "municipality_id", "自治体を選んでください。", "Please choose the municipality."
            )
        return None, municipality_id, None
    if role is Role.MERCHANT_STAFF:
        if merchant_id is None or s.get(Merchant, merchant_id) is None:
            raise StaffError(
                "merchant_id", "加盟店を選んでください。", "Please choose the merchant."
            )
        return None, None, merchant_id
    if provider_id is None or s.get(Provider, provider_id) is None:
        raise StaffError("provider_id", "施設を選んでください。", "Please choose the provider.")
    return provider_id, None, None


def _login_taken() -> StaffError:
    return StaffError(
        "login", "このログインIDはすでに使われています。", "This login is already in use."
    )


def authenticate(s: Session, login: str, password: str) -> StaffUser:
    """The active account with this login and password, or InvalidCredentials."""
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidCredentials()
    user = s.scalar(select(StaffUser).where(StaffUser.login == normalize_login(login)))
    if user is None or not user.active:
        # Same work as a real check: unknown logins must not answer faster.
        with contextlib.suppress(VerificationError):
            _hasher.verify(_dummy_hash(), password)
        raise InvalidCredentials()
    try:
        _hasher.verify(user.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        raise InvalidCredentials() from None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
        s.commit()
    return user


def change_password(s: Session, user: StaffUser, current: str, new: str) -> None:
    """Replace the password after checking the current one; other sessions end."""
    try:
        _hasher.verify(user.password_hash, current)
    except (VerificationError, InvalidHashError):
        raise InvalidCredentials() from None
    _check_password(new)
    user.password_hash = _hasher.hash(new)
    user.session_epoch += 1
    s.commit()


def set_active(s: Session, user: StaffUser, active: bool) -> None:
    """Enable or disable an account; disabling ends its sessions."""
    if user.active != active:
        user.active = active
        user.session_epoch += 1
        s.commit()


def page_staff(s: Session, within: int | ColumnElement[bool] | None, query: str, page: int) -> Page:
    """A page of accounts by login (only those `within` a condition, e.g. an admin's
    scope, or one provider's when an id is given) whose login contains `query` (case
    ignored)."""
    stmt = select(StaffUser).order_by(StaffUser.login)
    if isinstance(within, int):
        stmt = stmt.where(StaffUser.provider_id == within)
    elif within is not None:
        stmt = stmt.where(within)
    if query:
        stmt = stmt.where(func.lower(StaffUser.login).like(contains(query.lower()), escape="\\"))
    return paginate(s, stmt, page)


def list_staff(s: Session, provider_id: int | None = None) -> list[StaffUser]:
    """Accounts by login; only one provider's when `provider_id` is given."""
    stmt = select(StaffUser).order_by(StaffUser.login)
    if provider_id is not None:
        stmt = stmt.where(StaffUser.provider_id == provider_id)
    return list(s.scalars(stmt))
