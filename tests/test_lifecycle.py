"""The lifecycle table (bot/domain/lifecycle.py) is complete and consistent, and every state set
derived from it is the one the code wrote by hand before: those are written out literally here
as the specification.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain import access, cases, handling
from bot.domain.access import Permission
from bot.domain.cases import CaseError, PhotoInput
from bot.domain.handling import Reassignment
from bot.domain.lifecycle import (
    ACTIONABLE,
    AWAITING_RESPONSE,
    DROPPED,
    ENDED_UNFIXED,
    FINAL,
    HELD,
    NOT_TAKEN_ON,
    OPEN,
    OTHER_EVENTS,
    RESPONSES,
    START,
    TRANSITIONS,
    UNASSIGNED,
    UNFIXED,
    WITHDRAWABLE,
    Action,
    Event,
    Side,
    State,
    current_deadline,
    offers,
)
from storage.db import make_engine, make_sessionmaker
from storage.migrate import upgrade
from storage.models import Case, CaseEvent, Person, Role
from tests import conftest

# The sets as they were written by hand across the code before they were derived.
OLD_OPEN_STATES = {"submitted", "triage", "dispatched", "accepted", "whistled", "resolved"}
OLD_FINAL_STATES = {"closed", "rejected", "duplicate", "withdrawn"}
OLD_WITHDRAWABLE = {"submitted", "triage", "dispatched", "accepted", "whistled"}
# bot/domain/handling.py, and the states each transition function checked inline.
OLD_FROM_STATES = {
    Action.DISPATCH: {"submitted", "triage"},
    Action.SEND_TO_TRIAGE: {"submitted", "triage"},
    Action.CATEGORISE: {"triage"},
    Action.ACCEPT: {"dispatched"},
    Action.WHISTLE: {"dispatched", "accepted"},
    Action.REPORT_FOR_DUTY: {"whistled"},
    Action.RESOLVE: {"accepted"},
    Action.TRANSFER: {"triage", "dispatched", "accepted"},
    Action.TRANSFER_TO_TRIAGE: {"triage", "dispatched", "accepted"},
    Action.REJECT: {"triage", "dispatched", "accepted"},
    Action.RATE: {"resolved"},
    Action.REOPEN: {"resolved"},
    Action.CLOSE: {"resolved"},
    Action.WITHDRAW: OLD_WITHDRAWABLE,
    Action.ADD_NOTE: OLD_OPEN_STATES,
    Action.ADD_PHOTO: OLD_OPEN_STATES,
}
# bot/telegram/keyboards.py CARD_BUTTONS ("duty" is the button of report_for_duty).
OLD_CARD_BUTTONS = {
    ("chief", "dispatched"): ("accept", "whistle", "transfer", "reject"),
    ("chief", "accepted"): ("resolve", "whistle", "transfer", "reject"),
    ("department", "dispatched"): ("accept", "transfer", "reject"),
    ("department", "whistled"): ("report_for_duty",),
    ("department", "accepted"): ("resolve",),
    ("supervisor", "triage"): ("transfer", "reject"),
    ("supervisor", "dispatched"): ("accept", "whistle", "transfer", "reject"),
    ("supervisor", "accepted"): ("resolve", "whistle", "transfer", "reject"),
    ("supervisor", "whistled"): ("report_for_duty",),
}
# bot/jobs/scheduler.py: the states in which each window's deadline steps still fire.
OLD_WAITING_RESPONSE = {"triage", "dispatched", "whistled"}
OLD_WAITING_RESOLUTION = {"triage", "dispatched", "accepted", "whistled"}
# bot/figures/kpi_sql.py.
OLD_RESPONSES = ("accepted", "whistled", "rejected")
OLD_DROPPED = {"withdrawn", "duplicate"}
OLD_ENDED_UNFIXED = {"withdrawn", "duplicate", "rejected"}
OLD_UNANSWERED_STATES = {"submitted", "triage", "dispatched"}
OLD_UNFIXED_STATES = {"submitted", "triage", "dispatched", "accepted", "whistled"}
# bot/open311/view.py: a service request is open until the case is fixed or has ended.
OLD_OPEN311_OPEN = {"submitted", "triage", "dispatched", "accepted", "whistled"}
# /tasks (handlers/chief.py) listed these; bot/telegram/notify.py told the supervisors of an
# unreachable person's cases in these; bot/domain/people.py handed these on with a role.
OLD_TASKS = {"triage", "dispatched", "accepted", "whistled"}
OLD_UNREACHABLE = {"dispatched", "accepted", "whistled"}
OLD_PEOPLE_HELD = {"dispatched", "accepted", "whistled", "resolved"}
# bot/domain/cases.py dispatch: the states routing may place a case from.
OLD_UNASSIGNED = {"submitted", "triage"}
# The timeline's actions (bot/domain/cases.py ACTIONS), in their order.
OLD_EVENTS = (
    "submitted",
    "withdrawn",
    "note",
    "photo_added",
    "dispatched",
    "triaged",
    "duplicate",
    "plus_one",
    "categorised",
    "accepted",
    "whistled",
    "reported_for_duty",
    "resolved",
    "transferred",
    "rejected",
    "rated",
    "commented",
    "reopened",
    "closed",
    "reminded",
    "escalated",
)


def _moves(state: State) -> set[State]:
    return {
        t.to_state
        for t in TRANSITIONS.values()
        if state in t.from_states and t.to_state is not None
    }


def test_the_stored_values_are_those_of_the_database() -> None:
    assert {s.value for s in State} == OLD_OPEN_STATES | OLD_FINAL_STATES
    assert tuple(e.value for e in Event) == OLD_EVENTS


def test_every_action_has_one_transition_and_every_event_a_writer() -> None:
    assert set(TRANSITIONS) == set(Action)
    written = {t.event for t in TRANSITIONS.values()}
    assert written.isdisjoint(OTHER_EVENTS)
    assert written | OTHER_EVENTS == set(Event)


def test_every_state_is_reachable_and_every_open_one_can_end() -> None:
    reached, todo = {START}, [START]
    while todo:
        for state in _moves(todo.pop()) - reached:
            reached.add(state)
            todo.append(state)
    assert reached == set(State)
    for state in OPEN:
        ends, todo, seen = False, [state], {state}
        while todo and not ends:
            for nxt in _moves(todo.pop()) - seen:
                ends |= nxt in FINAL
                seen.add(nxt)
                todo.append(nxt)
        assert ends, state
    assert all(not _moves(state) for state in FINAL)


def test_each_transition_needs_a_permission_of_the_table_or_the_systems() -> None:
    for action, step in TRANSITIONS.items():
        assert step.permission in access.TABLE or step.permission in access.SYSTEM, action
        assert step.from_states, action
    system = {a for a, t in TRANSITIONS.items() if t.permission in access.SYSTEM}
    assert system == {Action.DISPATCH, Action.SEND_TO_TRIAGE, Action.MARK_DUPLICATE, Action.CLOSE}
    assert set(access.SYSTEM).isdisjoint(access.TABLE)


def test_derived_sets_are_the_ones_written_by_hand_before() -> None:
    assert OPEN == OLD_OPEN_STATES
    assert FINAL == OLD_FINAL_STATES
    assert WITHDRAWABLE == OLD_WITHDRAWABLE
    for action, states in OLD_FROM_STATES.items():
        assert TRANSITIONS[action].from_states == states, action
    assert TRANSITIONS[Action.COMMENT].from_states == set(State)  # never checked: any state
    assert NOT_TAKEN_ON == OLD_WAITING_RESPONSE
    assert ACTIONABLE == OLD_WAITING_RESOLUTION == OLD_TASKS
    assert RESPONSES == OLD_RESPONSES
    assert set(DROPPED) == OLD_DROPPED
    assert set(ENDED_UNFIXED) == OLD_ENDED_UNFIXED
    assert AWAITING_RESPONSE == OLD_UNANSWERED_STATES
    assert UNFIXED == OLD_UNFIXED_STATES == OLD_OPEN311_OPEN
    assert HELD == OLD_PEOPLE_HELD
    assert HELD & UNFIXED == OLD_UNREACHABLE
    assert UNASSIGNED == OLD_UNASSIGNED


def test_what_each_card_offers_is_what_it_offered_before() -> None:
    offered = {
        (side.value, state.value): tuple(a.value for a in offers(side, state))
        for side in Side
        for state in State
        if offers(side, state)
    }
    assert offered == OLD_CARD_BUTTONS


def test_each_card_action_is_open_to_the_roles_of_its_sides_only() -> None:
    """A side is never offered a button its role may not press."""
    roles = {Side.CHIEF: access.CHIEF, Side.DEPARTMENT: access.OFFICER}
    for (side, _state), actions in OLD_CARD_BUTTONS.items():
        for action in actions:
            row = access.TABLE[TRANSITIONS[Action(action)].permission]
            assert roles.get(Side(side), access.SUPERVISOR) in row, (side, action)


NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
RESPOND_BY, RESOLVE_BY = NOW + timedelta(hours=2), NOW + timedelta(days=2)


@pytest.mark.parametrize("state", list(State), ids=str)
def test_the_deadline_that_applies_now(state: State) -> None:
    """The response deadline until someone answers, then the resolution's; none after.

    As /tasks showed it (response while dispatched or in triage, else resolution), and the
    KPIs' "unanswered" (submitted, triage, dispatched)."""
    case = Case(state=state, response_due_at=RESPOND_BY, resolve_due_at=RESOLVE_BY)
    expected = {
        "submitted": RESPOND_BY,
        "triage": RESPOND_BY,
        "dispatched": RESPOND_BY,
        "accepted": RESOLVE_BY,
        "whistled": RESOLVE_BY,
    }.get(state.value)
    assert current_deadline(case) == expected


def test_the_system_holds_its_own_permissions_and_nothing_else() -> None:
    for permission in Permission:
        assert access.allowed(None, permission) is (permission in access.SYSTEM), permission


# --------------------------------------------------------------------------- the transitions

LANE, STREET, DEPARTMENT = "CW-001", "chaowai", "chengguan"
CAST: dict[str, list[tuple[str, str | None]]] = {
    "reporter": [],
    "stranger": [],
    "chief": [(access.CHIEF, LANE)],  # the case's assignee
    "officer": [(access.OFFICER, DEPARTMENT)],  # the case is with his department
    "supervisor": [(access.SUPERVISOR, STREET)],
}
SYSTEM = None
# Who may do each action to the case the tests make (a stranger may do none).
RIGHT_ACTOR: dict[Action, str | None] = {
    Action.DISPATCH: SYSTEM,
    Action.SEND_TO_TRIAGE: SYSTEM,
    Action.MARK_DUPLICATE: SYSTEM,
    Action.CATEGORISE: "supervisor",
    Action.ACCEPT: "chief",
    Action.WHISTLE: "chief",
    Action.REPORT_FOR_DUTY: "officer",
    Action.TRANSFER: "chief",
    Action.TRANSFER_TO_TRIAGE: "chief",
    Action.REJECT: "chief",
    Action.RESOLVE: "chief",
    Action.RATE: "reporter",
    Action.REOPEN: "reporter",
    Action.CLOSE: SYSTEM,
    Action.WITHDRAW: "reporter",
    Action.ADD_NOTE: "reporter",
    Action.ADD_PHOTO: "reporter",
    Action.COMMENT: "reporter",
}
# The refusal of a state outside the action's from-states, as the code gave it before the table
# (a duplicate link, never checked before, is refused as dispatching is) …
WRONG_STATE = {
    Action.DISPATCH: "not_dispatchable",
    Action.SEND_TO_TRIAGE: "not_dispatchable",
    Action.MARK_DUPLICATE: "not_dispatchable",
    Action.CATEGORISE: "not_in_triage",
    Action.WITHDRAW: "not_withdrawable",
    Action.ADD_NOTE: "case_closed",
    Action.ADD_PHOTO: "case_closed",
}
# … and of an actor without the right: the reporter's own actions say so.
REPORTERS = {
    Action.RATE,
    Action.REOPEN,
    Action.WITHDRAW,
    Action.ADD_NOTE,
    Action.ADD_PHOTO,
    Action.COMMENT,
}
PHOTO = PhotoInput(path="ab/x.jpg", sha256="0" * 64, phash="0" * 16, size=1, width=1, height=1)
Call = Callable[[AsyncSession, Case, Person | None], Awaitable[object]]
_numbers = itertools.count(1)


def _dispatch(state: State) -> Call:
    async def call(s: AsyncSession, c: Case, a: Person | None) -> object:
        return await cases.dispatch(
            s,
            c,
            NOW,
            actor=a,
            state=state,
            assignee_id=c.assignee_id,
            department_id=None,
            response_due_at=None,
            resolve_due_at=None,
            data={},
        )

    return call


async def _mark_duplicate(s: AsyncSession, c: Case, a: Person | None) -> None:
    original = await _case(s, State.DISPATCHED, c.reporter_id, c.assignee_id)
    cases.mark_duplicate(s, c, original, NOW, actor=a, data={})


async def _add_note(s: AsyncSession, c: Case, a: Person | None) -> object:
    return cases.add_note(s, c, a, "还是堵着", NOW)


def _transfer(chief: bool) -> Call:
    async def call(s: AsyncSession, c: Case, a: Person | None) -> object:
        to = (
            Reassignment("CW-002", STREET, c.assignee_id)
            if chief
            else Reassignment(None, STREET, None)
        )
        return await handling.transfer(s, c, a, to, "不属于本胡同", NOW)

    return call


WINDOW = timedelta(hours=72)
# Each transition function, by the action it does.
CALLS: dict[Action, Call] = {
    Action.DISPATCH: _dispatch(State.DISPATCHED),
    Action.SEND_TO_TRIAGE: _dispatch(State.TRIAGE),
    Action.MARK_DUPLICATE: _mark_duplicate,
    Action.CATEGORISE: lambda s, c, a: cases.categorise(s, c, a, "garbage", NOW),
    Action.ACCEPT: lambda s, c, a: handling.accept(s, c, a, NOW),
    Action.WHISTLE: lambda s, c, a: handling.whistle(s, c, a, "shuiwu", "", NOW),
    Action.REPORT_FOR_DUTY: lambda s, c, a: handling.report_for_duty(s, c, a, NOW, whistled_at=NOW),
    Action.TRANSFER: _transfer(chief=True),
    Action.TRANSFER_TO_TRIAGE: _transfer(chief=False),
    Action.REJECT: lambda s, c, a: handling.reject(s, c, a, "不属于公共事务", NOW),
    Action.RESOLVE: lambda s, c, a: handling.resolve(s, c, a, "已清理", PHOTO, NOW),
    Action.RATE: lambda s, c, a: handling.rate(s, c, a, 5, NOW, reopen_window=WINDOW),
    Action.REOPEN: lambda s, c, a: handling.not_fixed(s, c, a, NOW, reopen_window=WINDOW),
    Action.CLOSE: lambda s, c, a: handling.close_unrated(s, c, NOW),  # the system's alone
    Action.WITHDRAW: lambda s, c, a: cases.withdraw(s, c, a, NOW),
    Action.ADD_NOTE: _add_note,
    Action.ADD_PHOTO: lambda s, c, a: cases.add_photo(s, c, a, PHOTO, NOW),
    Action.COMMENT: lambda s, c, a: handling.add_comment(s, c, a, "谢谢", NOW),
}


@pytest.fixture(scope="module", params=conftest.backends())
def world_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """One migrated database per backend with the cast in it; each test adds its case in a
    transaction of its own and rolls it back."""
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("lifecycle") / "lifecycle.db"
        url = f"sqlite+aiosqlite:///{path}"
        asyncio.run(upgrade(url))
    else:
        url = asyncio.run(conftest._pg_database())
    asyncio.run(_cast(url))
    yield url
    if request.param != "sqlite":
        asyncio.run(conftest._drop_pg_database(url))


async def _cast(url: str) -> None:
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            for index, (name, roles) in enumerate(CAST.items()):
                session.add(
                    Person(
                        telegram_id=7000 + index,
                        name=name,
                        language="zh",
                        created_at=NOW,
                        roles=[Role(role=r, scope=s, created_at=NOW) for r, s in roles],
                    )
                )
    finally:
        await engine.dispose()


@pytest.fixture
async def session(world_url: str) -> AsyncIterator[AsyncSession]:
    """A transaction that is rolled back: nothing a test does stays."""
    engine = make_engine(world_url)
    async with make_sessionmaker(engine)() as s:
        await s.begin()
        yield s
        await s.rollback()
    await engine.dispose()


async def _person(session: AsyncSession, name: str | None) -> Person | None:
    if name is None:
        return None
    found = await session.scalar(select(Person).where(Person.name == name))
    assert found is not None
    return found


async def _case(
    session: AsyncSession, state: State, reporter_id: int | None, chief_id: int | None
) -> Case:
    """A case on the chief's lane, assigned to him, with the officer's department."""
    case = Case(
        number=f"CY-20261123-{next(_numbers):04d}",
        state=state,
        lane_id=LANE,
        street_id=STREET,
        department_id=DEPARTMENT,
        assignee_id=chief_id,
        description="胡同口堆物堆料",
        reporter_id=reporter_id,
        created_at=NOW,
        updated_at=NOW,
        photos=[],
    )
    session.add(case)
    await session.flush()
    return case


async def _refusal(session: AsyncSession, action: Action, state: State, actor: str | None) -> str:
    reporter, chief = await _person(session, "reporter"), await _person(session, "chief")
    assert reporter is not None and chief is not None
    case = await _case(session, state, reporter.id, chief.id)
    with pytest.raises(CaseError) as refused:
        await CALLS[action](session, case, await _person(session, actor))
    assert case.state == state  # refused before anything changed
    return refused.value.code


def test_every_action_has_its_function() -> None:
    assert set(CALLS) == set(RIGHT_ACTOR) == set(Action)


@pytest.mark.parametrize(
    ("action", "state"),
    [(a, s) for a in Action for s in State if s not in TRANSITIONS[a].from_states],
    ids=str,
)
async def test_a_state_outside_the_from_states_is_refused(
    session: AsyncSession, action: Action, state: State
) -> None:
    code = await _refusal(session, action, state, RIGHT_ACTOR[action])
    assert code == WRONG_STATE.get(action, "wrong_state")


@pytest.mark.parametrize(
    ("action", "actor"),
    [
        (a, who)
        for a in Action
        if a != Action.CLOSE  # takes no actor: the system's alone
        for who in (("stranger", SYSTEM) if RIGHT_ACTOR[a] else ("supervisor", "reporter"))
    ],
    ids=str,
)
async def test_an_actor_without_the_right_is_refused(
    session: AsyncSession, action: Action, actor: str | None
) -> None:
    state = sorted(TRANSITIONS[action].from_states)[0]
    code = await _refusal(session, action, state, actor)
    assert code == ("not_reporter" if action in REPORTERS else "not_assignee")


@pytest.mark.parametrize("action", list(Action), ids=str)
async def test_the_right_actor_in_a_from_state_goes_through(
    session: AsyncSession, action: Action
) -> None:
    """The refusals above are the table's, not the test's: the same call, by the right actor
    in a state the action starts from, goes through and writes the transition's event."""
    reporter, chief = await _person(session, "reporter"), await _person(session, "chief")
    assert reporter is not None and chief is not None
    step = TRANSITIONS[action]
    case = await _case(session, sorted(step.from_states)[0], reporter.id, chief.id)
    await CALLS[action](session, case, await _person(session, RIGHT_ACTOR[action]))
    await session.flush()
    if step.to_state is not None:
        assert case.state == step.to_state
    written = await session.scalars(select(CaseEvent.action).where(CaseEvent.case_id == case.id))
    assert step.event in set(written)
