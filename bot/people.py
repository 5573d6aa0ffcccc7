"""The people who act for the district: granting and removing roles, checked against it.

Every grant and removal is written to `role_changes` in the same transaction (who, which role,
by whom, from the chat or the shell, when), whichever way it was made.
"""

from __future__ import annotations

import getpass
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.access import ADMIN, CHIEF, OFFICER, ROLES, SUPERVISOR, VOLUNTEER
from bot.district import District
from bot.menus import refresh_menu
from storage.models import Person, Role, RoleChange
from storage.people import get_or_create_person

# Which kind of scope each role takes.
SCOPE_KIND = {ADMIN: None, SUPERVISOR: "street", CHIEF: "lane", OFFICER: "department"}


GRANTED, REMOVED = "granted", "removed"
VIA_CHAT = "chat"


class PeopleError(Exception):
    """A role that cannot be granted as asked; the message says why, `code` which rule."""

    def __init__(self, message: str, code: str = "invalid") -> None:
        super().__init__(message)
        self.code = code


def via_shell() -> str:
    """How a change from `python -m bot people` is recorded: the operating-system user."""
    try:
        return f"cli:{getpass.getuser()}"[:80]
    except (OSError, KeyError):  # no user name in some containers
        return "cli"


def check_scope(district: District, role: str, scope: str | None, kind: str | None) -> None:
    """Raise PeopleError unless `scope` (of `kind`) fits `role` and exists in the district."""
    if role not in ROLES:
        raise PeopleError(f"unknown role {role!r}; roles: {', '.join(ROLES)}", "unknown_role")
    expected = SCOPE_KIND.get(role, "any")
    if role == VOLUNTEER:
        if kind not in (None, "lane", "street"):
            raise PeopleError(
                "a volunteer serves a lane (--lane) or a street office (--street)", "needs_scope"
            )
    elif expected is None and scope is not None:
        raise PeopleError("an admin has no scope; drop --lane/--street/--department", "no_scope")
    elif expected is not None and kind != expected:
        raise PeopleError(f"a {role} needs --{expected}", "needs_scope")
    known: dict[str, Mapping[str, object]] = {
        "lane": district.lanes,
        "street": district.street_offices,
        "department": district.departments,
    }
    if kind is not None and scope not in known[kind]:
        raise PeopleError(f"no {kind} {scope!r} in the district", "unknown_scope")


async def grant(
    session: AsyncSession,
    district: District,
    *,
    telegram_id: int,
    role: str,
    scope: str | None,
    kind: str | None,
    name: str | None,
    now: datetime,
    granted_by: int | None = None,
    via: str | None = None,
) -> tuple[Person, bool]:
    """Give `role` over `scope`; (person, False) when they already had it.

    `granted_by` is the admin's person id in the chat; `via` defaults to the shell's user.
    """
    check_scope(district, role, scope, kind)
    person = await get_or_create_person(session, telegram_id, now=now, language="zh", name=name)
    if any(r.role == role and r.scope == scope for r in person.roles):
        return person, False
    person.roles.append(Role(role=role, scope=scope, created_at=now, created_by=granted_by))
    _record(session, person, GRANTED, role, scope, granted_by, via, now)
    refresh_menu(session, person, now)
    await session.flush()
    return person, True


def scope_kind(district: District, role: str, scope: str | None) -> str | None:
    """Which kind of scope `scope` is for `role` (a volunteer's may be a lane or a street)."""
    if role == VOLUNTEER and scope is not None:
        return "lane" if scope in district.lanes else "street"
    return SCOPE_KIND.get(role) if scope is not None else None


async def revoke(
    session: AsyncSession,
    *,
    telegram_id: int,
    role: str | None,
    scope: str | None,
    now: datetime,
    removed_by: int | None = None,
    via: str | None = None,
) -> int:
    """Remove matching roles (all of a person's roles when `role` is None); returns how many."""
    person = await session.scalar(select(Person).where(Person.telegram_id == telegram_id))
    if person is None:
        return 0
    doomed = [
        r
        for r in person.roles
        if (role is None or r.role == role) and (scope is None or r.scope == scope)
    ]
    for r in doomed:
        person.roles.remove(r)
        _record(session, person, REMOVED, r.role, r.scope, removed_by, via, now)
    if doomed:
        refresh_menu(session, person, now)
    await session.flush()
    return len(doomed)


def _record(
    session: AsyncSession,
    person: Person,
    change: str,
    role: str,
    scope: str | None,
    by: int | None,
    via: str | None,
    now: datetime,
) -> None:
    session.add(
        RoleChange(
            person_id=person.id,
            change=change,
            role=role,
            scope=scope,
            changed_by=by,
            via=via or via_shell(),
            created_at=now,
        )
    )


async def role_changes(session: AsyncSession, person_id: int) -> list[RoleChange]:
    """A person's role changes, oldest first."""
    rows = await session.scalars(
        select(RoleChange).where(RoleChange.person_id == person_id).order_by(RoleChange.id)
    )
    return list(rows)


async def everyone_with_roles(session: AsyncSession) -> list[Person]:
    rows = await session.scalars(
        select(Person).join(Role, Role.person_id == Person.id).order_by(Person.id).distinct()
    )
    return list(rows)
