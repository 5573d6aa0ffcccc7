"""The people who act for the district: granting and removing roles, checked against it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.access import ADMIN, CHIEF, OFFICER, ROLES, SUPERVISOR, VOLUNTEER
from bot.district import District
from storage.models import Person, Role
from storage.people import get_or_create_person

# Which kind of scope each role takes.
SCOPE_KIND = {ADMIN: None, SUPERVISOR: "street", CHIEF: "lane", OFFICER: "department"}


class PeopleError(Exception):
    """A role that cannot be granted as asked; the message says why."""


def check_scope(district: District, role: str, scope: str | None, kind: str | None) -> None:
    """Raise PeopleError unless `scope` (of `kind`) fits `role` and exists in the district."""
    if role not in ROLES:
        raise PeopleError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    expected = SCOPE_KIND.get(role, "any")
    if role == VOLUNTEER:
        if kind not in (None, "lane", "street"):
            raise PeopleError("a volunteer serves a lane (--lane) or a street office (--street)")
    elif expected is None and scope is not None:
        raise PeopleError("an admin has no scope; drop --lane/--street/--department")
    elif expected is not None and kind != expected:
        raise PeopleError(f"a {role} needs --{expected}")
    known: dict[str, Mapping[str, object]] = {
        "lane": district.lanes,
        "street": district.street_offices,
        "department": district.departments,
    }
    if kind is not None and scope not in known[kind]:
        raise PeopleError(f"no {kind} {scope!r} in the district")


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
) -> tuple[Person, bool]:
    """Give `role` over `scope`; (person, False) when they already had it."""
    check_scope(district, role, scope, kind)
    person = await get_or_create_person(session, telegram_id, now=now, language="zh", name=name)
    if any(r.role == role and r.scope == scope for r in person.roles):
        return person, False
    person.roles.append(Role(role=role, scope=scope, created_at=now, created_by=granted_by))
    await session.flush()
    return person, True


async def revoke(
    session: AsyncSession, *, telegram_id: int, role: str | None, scope: str | None
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
    await session.flush()
    return len(doomed)


async def everyone_with_roles(session: AsyncSession) -> list[Person]:
    rows = await session.scalars(
        select(Person).join(Role, Role.person_id == Person.id).order_by(Person.id).distinct()
    )
    return list(rows)
