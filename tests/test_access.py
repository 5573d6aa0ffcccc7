"""The authorisation table, cell by cell, on real rows of both backends.

One world: a whistled case on lane CW-001 (street office 朝外, department 城管), reported by a
resident, assigned to that lane's chief; a second case with no lane, street or department yet;
a third assigned to a chief who no longer holds its lane; and a person for every role, inside
and outside the case's scope. Every (person, action) pair is a test, its expected answer
written out by hand below: the table in bot/domain/access.py must agree with this one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain import access
from bot.domain.access import Permission, allowed, can_view, may_act, may_supervise
from storage.cases import case_by_number
from storage.db import make_engine, make_sessionmaker
from storage.migrate import upgrade
from storage.models import Case, Person, Role
from tests import conftest

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
LANE, OTHER_LANE, STREET, OTHER_STREET = "CW-001", "CW-002", "chaowai", "sanlitun"
DEPARTMENT, OTHER_DEPARTMENT = "chengguan", "huanwei"
LEFT_BEHIND = "CY-20261123-0003"

# Who is in the world: (role, scope) pairs they hold; the reporter and stranger hold none.
PEOPLE: dict[str, list[tuple[str, str | None]]] = {
    "reporter": [],
    "stranger": [],
    "volunteer": [(access.VOLUNTEER, LANE)],
    "chief": [(access.CHIEF, LANE)],  # the lane's chief, the case's assignee
    "second_chief": [(access.CHIEF, LANE)],  # the same lane, not assigned
    "other_chief": [(access.CHIEF, OTHER_LANE)],
    "officer": [(access.OFFICER, DEPARTMENT)],
    "other_officer": [(access.OFFICER, OTHER_DEPARTMENT)],
    "supervisor": [(access.SUPERVISOR, STREET)],
    "other_supervisor": [(access.SUPERVISOR, OTHER_STREET)],
    "admin": [(access.ADMIN, None)],
}

HANDLE = {Permission.ACCEPT, Permission.RESOLVE, Permission.TRANSFER, Permission.REJECT}
REPORTER_ONLY = {Permission.RATE, Permission.WITHDRAW, Permission.ADD_NOTE}
CASE_ACTIONS = (
    Permission.VIEW_CASE,
    Permission.ACCEPT,
    Permission.RESOLVE,
    Permission.WHISTLE,
    Permission.REPORT_FOR_DUTY,
    Permission.TRANSFER,
    Permission.REJECT,
    Permission.TRIAGE,
    Permission.RATE,
    Permission.WITHDRAW,
    Permission.ADD_NOTE,
)
SCOPE_ACTIONS = (Permission.EXPORT, Permission.DIGEST, Permission.MANAGE_PEOPLE, Permission.BAN)

# What each person may do on the placed case (lane, street office, department all set).
ON_PLACED: dict[str, set[str]] = {
    "reporter": {Permission.VIEW_CASE} | REPORTER_ONLY,
    "stranger": set(),
    "volunteer": set(),
    "chief": {Permission.VIEW_CASE, Permission.WHISTLE} | HANDLE,
    "second_chief": {Permission.VIEW_CASE},
    "other_chief": set(),
    "officer": {Permission.VIEW_CASE, Permission.REPORT_FOR_DUTY} | HANDLE,
    "other_officer": set(),
    "supervisor": {
        Permission.VIEW_CASE,
        Permission.WHISTLE,
        Permission.REPORT_FOR_DUTY,
        Permission.TRIAGE,
    }
    | HANDLE,
    "other_supervisor": set(),
    "admin": set(CASE_ACTIONS) - REPORTER_ONLY,
}
# On a case not placed yet (no lane, street office, department or assignee).
ON_UNPLACED: dict[str, set[str]] = {
    "reporter": {Permission.VIEW_CASE} | REPORTER_ONLY,
    "admin": set(CASE_ACTIONS) - REPORTER_ONLY,
}
# Scope-wide actions within the street office 朝外, and over the whole district (scope None).
IN_STREET: dict[str, set[str]] = {
    "supervisor": {Permission.EXPORT, Permission.DIGEST},
    "admin": set(SCOPE_ACTIONS),
}
DISTRICT_WIDE: dict[str, set[str]] = {"admin": set(SCOPE_ACTIONS)}


def cells(actions: tuple[str, ...], expected: dict[str, set[str]]) -> list[tuple[str, str, bool]]:
    return [(who, a, a in expected.get(who, set())) for who in PEOPLE for a in actions]


def _id(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


@pytest.fixture(scope="module", params=conftest.backends())
def world_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """One migrated database per backend with the world in it, shared by the module's tests."""
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("access") / "access.db"
        url = f"sqlite+aiosqlite:///{path}"
        asyncio.run(upgrade(url))
    else:
        url = asyncio.run(conftest._pg_database())
    asyncio.run(_build_world(url))
    yield url
    if request.param != "sqlite":
        asyncio.run(conftest._drop_pg_database(url))


async def _build_world(url: str) -> None:
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            ids: dict[str, int] = {}
            for index, (name, roles) in enumerate(PEOPLE.items()):
                person = Person(
                    telegram_id=5000 + index,
                    name=name,
                    language="zh",
                    language_chosen=False,
                    unreachable=False,
                    banned=False,
                    created_at=NOW,
                    roles=[Role(role=r, scope=s, created_at=NOW) for r, s in roles],
                )
                session.add(person)
                await session.flush()
                ids[name] = person.id
            for number, placed in (("CY-20261123-0001", True), ("CY-20261123-0002", False)):
                session.add(
                    Case(
                        number=number,
                        state="whistled" if placed else "submitted",
                        lane_id=LANE if placed else None,
                        street_id=STREET if placed else None,
                        department_id=DEPARTMENT if placed else None,
                        assignee_id=ids["chief"] if placed else None,
                        description="胡同口堆物堆料",
                        reporter_id=ids["reporter"],
                        created_at=NOW,
                        updated_at=NOW,
                        photos=[],
                    )
                )
            # Assigned to a chief who has since lost the lane (his role is another lane's now).
            session.add(
                Case(
                    number=LEFT_BEHIND,
                    state="dispatched",
                    lane_id=LANE,
                    street_id=STREET,
                    assignee_id=ids["other_chief"],
                    description="胡同口堆物堆料",
                    reporter_id=ids["reporter"],
                    created_at=NOW,
                    updated_at=NOW,
                    photos=[],
                )
            )
    finally:
        await engine.dispose()


@pytest.fixture
async def session(world_url: str) -> AsyncIterator[AsyncSession]:
    engine = make_engine(world_url)
    async with make_sessionmaker(engine)() as s:
        yield s
    await engine.dispose()


async def person(session: AsyncSession, name: str) -> Person:
    found = await session.scalar(select(Person).where(Person.name == name))
    assert found is not None
    return found


async def case(session: AsyncSession, number: str) -> Case:
    found = await case_by_number(session, number)
    assert found is not None
    return found


@pytest.mark.parametrize(("who", "action", "expected"), cells(CASE_ACTIONS, ON_PLACED), ids=_id)
async def test_on_a_case_with_lane_street_and_department(
    session: AsyncSession, who: str, action: str, expected: bool
) -> None:
    placed = await case(session, "CY-20261123-0001")
    assert allowed(await person(session, who), action, placed) is expected


@pytest.mark.parametrize(("who", "action", "expected"), cells(CASE_ACTIONS, ON_UNPLACED), ids=_id)
async def test_on_a_case_not_yet_placed(
    session: AsyncSession, who: str, action: str, expected: bool
) -> None:
    unplaced = await case(session, "CY-20261123-0002")
    assert allowed(await person(session, who), action, unplaced) is expected


@pytest.mark.parametrize(("who", "action", "expected"), cells(SCOPE_ACTIONS, IN_STREET), ids=_id)
async def test_within_a_street_office(
    session: AsyncSession, who: str, action: str, expected: bool
) -> None:
    assert allowed(await person(session, who), action, scope=STREET) is expected


@pytest.mark.parametrize(
    ("who", "action", "expected"), cells(SCOPE_ACTIONS, DISTRICT_WIDE), ids=_id
)
async def test_over_the_whole_district(
    session: AsyncSession, who: str, action: str, expected: bool
) -> None:
    assert allowed(await person(session, who), action) is expected


async def test_an_assignment_the_persons_roles_no_longer_cover_gives_no_power(
    session: AsyncSession,
) -> None:
    left = await case(session, LEFT_BEHIND)
    former = await person(session, "other_chief")
    assert left.assignee_id == former.id
    assert [a for a in CASE_ACTIONS if allowed(former, a, left)] == []
    assert not may_act(former, left)
    # The lane's own chief sees it, and acts on it once it is assigned to him.
    assert allowed(await person(session, "chief"), Permission.VIEW_CASE, left)
    assert not allowed(await person(session, "chief"), Permission.ACCEPT, left)


@pytest.mark.parametrize("who", list(PEOPLE))
async def test_the_old_helpers_read_the_table(session: AsyncSession, who: str) -> None:
    placed = await case(session, "CY-20261123-0001")
    me = await person(session, who)
    assert can_view(me, placed) is (Permission.VIEW_CASE in ON_PLACED[who])
    assert may_supervise(me, placed) is (Permission.TRIAGE in ON_PLACED[who])
    assert may_act(me, placed) is bool(ON_PLACED[who] & set(access.ASSIGNEE_PERMISSIONS))


def test_every_action_of_the_table_is_tested_and_unknown_ones_are_refused() -> None:
    assert set(access.TABLE) == set(CASE_ACTIONS) | set(SCOPE_ACTIONS)
    with pytest.raises(ValueError, match="unknown action"):
        allowed(Person(id=1, telegram_id=1, roles=[]), "delete_everything")
