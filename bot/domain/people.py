"""The people who act for the district: granting and removing roles, checked against it.

Every grant and removal is written to `role_changes` in the same transaction (who, which role,
by whom, from the chat or the shell, when), whichever way it was made. What a channel shows a
person because of their roles (Telegram's command menu) follows through `on_roles_changed`,
registered where the process is assembled (bot/app.py, bot/cli/people.py): the domain knows no
channel.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.access import ADMIN, CHIEF, OFFICER, ROLES, SUPERVISOR, VOLUNTEER, covers
from bot.domain.cases import record
from bot.domain.district import District
from bot.domain.lifecycle import HELD, Event, State
from bot.domain.routing.pipeline import lane_chief
from storage.models import Case, Person, Role, RoleChange
from storage.people import get_or_create_person, people_with_role

# Which kind of scope each role takes.
SCOPE_KIND = {ADMIN: None, SUPERVISOR: "street", CHIEF: "lane", OFFICER: "department"}


GRANTED, REMOVED = "granted", "removed"
VIA_CHAT = "chat"

# Called in the transaction that changed a person's roles, with the person as they are now.
RolesChanged = Callable[[AsyncSession, Person, datetime], None]
_roles_changed: list[RolesChanged] = []


def on_roles_changed(listener: RolesChanged) -> None:
    """Have `listener` called after every grant and removal in this process (once, however
    often it is registered), in the same transaction: what it queues commits with the change,
    so it follows even a change made from the shell while the bot is down."""
    if listener not in _roles_changed:
        _roles_changed.append(listener)


def _changed(session: AsyncSession, person: Person, now: datetime) -> None:
    for listener in _roles_changed:
        listener(session, person, now)


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
    _changed(session, person, now)
    await session.flush()
    return person, True


def scope_kind(district: District, role: str, scope: str | None) -> str | None:
    """Which kind of scope `scope` is for `role` (a volunteer's may be a lane or a street)."""
    if role == VOLUNTEER and scope is not None:
        return "lane" if scope in district.lanes else "street"
    return SCOPE_KIND.get(role) if scope is not None else None


@dataclass(frozen=True)
class Removal:
    """What removing roles did: how many went, the cases that changed hands with them, and
    those the person may no longer act on that stayed where they were (a department's)."""

    count: int
    handed_on: list[Case] = field(default_factory=list)
    stayed: list[Case] = field(default_factory=list)


async def remove_roles(
    session: AsyncSession,
    *,
    telegram_id: int,
    role: str | None,
    scope: str | None,
    now: datetime,
    removed_by: int | None = None,
    via: str | None = None,
) -> Removal:
    """Remove matching roles (all of a person's roles when `role` is None), and hand on the
    cases the person may no longer act on (see `hand_on`); the caller tells whom it concerns.
    """
    person = await session.scalar(select(Person).where(Person.telegram_id == telegram_id))
    if person is None:
        return Removal(0)
    doomed = [
        r
        for r in person.roles
        if (role is None or r.role == role) and (scope is None or r.scope == scope)
    ]
    for r in doomed:
        person.roles.remove(r)
        _record(session, person, REMOVED, r.role, r.scope, removed_by, via, now)
    if doomed:
        _changed(session, person, now)
    await session.flush()
    if not doomed:
        return Removal(0)
    return await hand_on(session, person, doomed, now, removed_by)


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
    """`remove_roles`, counted (the cases are handed on all the same; nobody is told)."""
    removal = await remove_roles(
        session,
        telegram_id=telegram_id,
        role=role,
        scope=scope,
        now=now,
        removed_by=removed_by,
        via=via,
    )
    return removal.count


HANDED_ON_NOTE = "reassigned because the role was removed"


async def hand_on(
    session: AsyncSession, person: Person, lost: list[Role], now: datetime, by: int | None
) -> Removal:
    """A role removed is power removed: move the cases that were the person's to act on.

    A case assigned to them that their roles no longer cover goes to its lane's chief (whoever
    holds that role now), or, with nobody left to act on it, to the street office's triage; so
    does a department's own case when the department's last officer goes. A department that
    still has officers keeps its cases. Each move is a `transferred` event by `by`.
    """
    assigned = await session.scalars(
        select(Case)
        # HELD: with its assignee until rated (a low rating reopens it to them).
        .where(Case.assignee_id == person.id, Case.state.in_(HELD))
        .order_by(Case.id)
        .with_for_update(
            key_share=True
        )  # as bot.domain.cases.hold: transitions wait, then see it moved
        .execution_options(populate_existing=True)
    )
    touched = [c for c in assigned if not covers(person, CHIEF, c)]
    departments = {r.scope for r in lost if r.role == OFFICER and r.scope}
    if departments:
        theirs = await session.scalars(
            select(Case)
            .where(Case.department_id.in_(departments), Case.state.in_(HELD))
            .order_by(Case.id)
            .with_for_update(key_share=True)
            .execution_options(populate_existing=True)
        )
        touched += [c for c in theirs if c not in touched]
    removal = Removal(len(lost))
    for case in touched:
        moved = await _reassign(session, case, person, now, by)
        (removal.handed_on if moved else removal.stayed).append(case)
    return removal


async def _reassign(
    session: AsyncSession, case: Case, gone: Person, now: datetime, by: int | None
) -> bool:
    """Give `case` a handler other than `gone`; False when it still has one and nothing moved."""
    before = case.assignee_id
    if before == gone.id:
        case.assignee_id = await lane_chief(session, case.lane_id) if case.lane_id else None
    officers = (
        await people_with_role(session, OFFICER, case.department_id) if case.department_id else []
    )
    to_triage = case.assignee_id is None and not officers and case.state != State.RESOLVED
    if to_triage:
        case.state = State.TRIAGE
        case.department_id = None
    elif case.assignee_id == before:
        return False
    case.updated_at = now
    data: dict[str, object] = {
        "from_lane": case.lane_id,
        "to_lane": None if to_triage else case.lane_id,
        "reason": "role_removed",
        "from_assignee": before,
        "to_assignee": case.assignee_id,
    }
    record(session, case, by, Event.TRANSFERRED, now, note=HANDED_ON_NOTE, data=data)
    return True


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
