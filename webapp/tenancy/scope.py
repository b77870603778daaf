"""What an administrator may see and change: the whole country, one municipality, or one
provider. Every admin query and write of providers, terminals and staff goes through an
`AdminScope`, so a municipal administrator's reach is decided in one place.

- **platform admin**: everything (the conditions are `true()`);
- **municipal admin** (自治体管理者): the providers whose 全国地方公共団体コード is its
  municipality's, their terminals and their staff, and the municipality's own points
  officers and municipal administrators;
- **provider admin**: its one provider, its terminals and its staff.

A look-up by id outside the scope answers 404 (the same as an id that does not exist):
another municipality's provider is not shown to be there.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import abort
from sqlalchemy import ColumnElement, Select, and_, false, or_, select, true
from sqlalchemy.orm import Session

from ..points.models import Merchant, Municipality
from ..providers.models import Provider
from ..staff.models import Role, StaffUser
from ..terminals.models import Terminal

# The staff a municipal administrator manages without a provider: the municipality's own.
MUNICIPAL_ROLES = (Role.POINTS_OFFICER, Role.MUNICIPAL_ADMIN)


@dataclass(frozen=True)
class AdminScope:
    """An administrator's reach; build it with `scope_of`."""

    role: Role
    provider_id: int | None = None
    municipality_id: int | None = None
    municipality_code: str = ""
    # A provider admin's provider's municipality (its tills' merchants are that town's).
    provider_town: str = ""

    @property
    def national(self) -> bool:
        """Whether this is the platform admin's (everything)."""
        return self.role is Role.PLATFORM_ADMIN

    @property
    def municipal(self) -> bool:
        """Whether this is a municipal administrator's (one municipality)."""
        return self.role is Role.MUNICIPAL_ADMIN

    # -- providers ---------------------------------------------------------------------

    def providers(self) -> ColumnElement[bool]:
        """The condition on Provider rows within the scope."""
        if self.national:
            return true()
        if self.municipal:
            if not self.municipality_code:
                return false()
            return Provider.municipality_code == self.municipality_code
        if self.provider_id is None:
            return false()
        return Provider.id == self.provider_id

    def provider_ids(self) -> Select[tuple[int]]:
        """The ids of the providers within the scope (a subquery)."""
        return select(Provider.id).where(self.providers())

    def has_provider(self, provider: Provider | None) -> bool:
        """Whether `provider` is within the scope."""
        if provider is None:
            return False
        if self.national:
            return True
        if self.municipal:
            return bool(self.municipality_code) and (
                provider.municipality_code == self.municipality_code
            )
        return provider.id == self.provider_id

    def provider(self, s: Session, provider_id: int | None) -> Provider:
        """The provider with this id if within the scope; else 404."""
        provider = s.get(Provider, provider_id) if provider_id is not None else None
        if not self.has_provider(provider):
            abort(404)
        assert provider is not None  # noqa: S101  (has_provider)
        return provider

    # -- terminals ---------------------------------------------------------------------

    def terminals(self) -> ColumnElement[bool]:
        """The condition on Terminal rows within the scope (those of its providers)."""
        if self.national:
            return true()
        return Terminal.provider_id.in_(self.provider_ids())

    def terminal(self, s: Session, terminal_id: int | None) -> Terminal:
        """The terminal with this id if one of the scope's providers has it; else 404."""
        terminal = s.get(Terminal, terminal_id) if terminal_id is not None else None
        if terminal is None:
            abort(404)
        if self.national:
            return terminal
        if terminal.provider_id is None or not self.has_provider(
            s.get(Provider, terminal.provider_id)
        ):
            abort(404)  # a home terminal belongs to no provider: the platform's
        return terminal

    def merchants(self) -> ColumnElement[bool]:
        """The merchants a shop till of the scope may be bound to: a municipal admin's
        municipality's; a provider admin's, those of its provider's municipality (any, for
        a provider not yet placed in one); the platform admin's, any."""
        if self.municipal:
            return Merchant.municipality_id == (self.municipality_id or 0)
        if self.role is Role.PROVIDER_ADMIN and self.provider_town:
            return Merchant.municipality_id.in_(
                select(Municipality.id).where(Municipality.code == self.provider_town)
            )
        return true()

    # -- staff -------------------------------------------------------------------------

    def staff(self) -> ColumnElement[bool]:
        """The condition on StaffUser rows within the scope."""
        if self.national:
            return true()
        if self.municipal:
            return or_(
                StaffUser.provider_id.in_(self.provider_ids()),
                and_(
                    StaffUser.municipality_id == (self.municipality_id or 0),
                    StaffUser.role.in_([r.value for r in MUNICIPAL_ROLES]),
                ),
            )
        if self.provider_id is None:
            return false()
        return StaffUser.provider_id == self.provider_id

    def has_staff(self, s: Session, user: StaffUser | None) -> bool:
        """Whether `user` is within the scope."""
        if user is None:
            return False
        if self.national:
            return True
        if self.municipal:
            if user.role in MUNICIPAL_ROLES and user.provider_id is None:
                return user.municipality_id == self.municipality_id
            if user.provider_id is None:
                return False
            return self.has_provider(s.get(Provider, user.provider_id))
        return user.provider_id is not None and user.provider_id == self.provider_id

    def staff_member(self, s: Session, user_id: int) -> StaffUser:
        """The account with this id if within the scope; else 404."""
        user = s.get(StaffUser, user_id)
        if not self.has_staff(s, user):
            abort(404)
        assert user is not None  # noqa: S101  (has_staff)
        return user

    def roles(self) -> tuple[Role, ...]:
        """The roles this administrator may give a new account (least power first: the
        form's default)."""
        if self.national:
            return (
                Role.COUNTER_STAFF,
                Role.PROVIDER_ADMIN,
                Role.POINTS_OFFICER,
                Role.MUNICIPAL_ADMIN,
                Role.PLATFORM_ADMIN,
            )
        if self.municipal:
            return (
                Role.COUNTER_STAFF,
                Role.PROVIDER_ADMIN,
                Role.POINTS_OFFICER,
                Role.MUNICIPAL_ADMIN,
            )
        return (Role.COUNTER_STAFF,)


def scope_of(s: Session, user: StaffUser) -> AdminScope:
    """The scope of a signed-in administrator (403 for any other role, or a municipal
    administrator whose municipality is gone)."""
    role = Role(user.role)
    if role is Role.PLATFORM_ADMIN:
        return AdminScope(role)
    if role is Role.MUNICIPAL_ADMIN:
        muni = s.get(Municipality, user.municipality_id or 0)
        if muni is None:
            abort(403)
        return AdminScope(role, municipality_id=muni.id, municipality_code=muni.code)
    if role is Role.PROVIDER_ADMIN:
        own = s.get(Provider, user.provider_id or 0)
        town = own.municipality_code if own is not None else ""
        return AdminScope(role, provider_id=user.provider_id, provider_town=town)
    abort(403)


def current_scope() -> AdminScope:
    """The signed-in administrator's scope (call after `staff_required`)."""
    from .. import db
    from ..staff.auth import current_staff

    user = current_staff()
    if user is None:  # pragma: no cover (staff_required ran first)
        abort(403)
    return scope_of(db.session(), user)
