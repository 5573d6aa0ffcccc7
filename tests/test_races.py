"""Two people acting on one case at the same moment: exactly one wins, the other is told.

Each pair of conflicting actions runs many times, each action in a transaction of its own as
the bot runs it, both having read the case before either writes (a barrier). Exactly one must
succeed, the other must get `moved_on` ("this case moved on a moment ago"), and the timeline
must agree with the state. That interleaving is only possible on PostgreSQL: on SQLite every
transaction holds the write lock from its first statement, so the second reads after the
first committed (and its handler turns it away as stale before acting).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain import cases, handling
from bot.domain.cases import CaseError, PhotoInput
from bot.domain.handling import Reassignment
from bot.domain.lifecycle import State
from bot.jobs.scheduler import sweep
from storage.models import Case, CaseEvent, Deadline, Person
from storage.people import get_or_create_person
from tests.harness import Harness, grant, noise_jpeg, plain_text

ROUNDS = 30
CHIEF, SUPERVISOR, SUPERVISOR_2, RESIDENT = 3001, 3002, 3003, 3004
LANE, STREET = "CW-001", "chaowai"
CHIEFS_CATEGORY, DEPARTMENTS_CATEGORY = "duiwuduiliao", "huanjingweisheng"  # → chief / 环卫

# The state each action of the timeline leaves the case in (transferred: see `_implied`).
LEAVES = {
    "submitted": State.SUBMITTED,
    "triaged": State.TRIAGE,
    "dispatched": State.DISPATCHED,
    "accepted": State.ACCEPTED,
    "whistled": State.WHISTLED,
    "reported_for_duty": State.ACCEPTED,
    "resolved": State.RESOLVED,
    "rejected": State.REJECTED,
    "reopened": State.ACCEPTED,
    "closed": State.CLOSED,
    "withdrawn": State.WITHDRAWN,
}


def postgresql_only(h: Harness) -> None:
    if h.ctx.settings.database_url.startswith("sqlite"):
        pytest.skip("SQLite serialises whole transactions: two cannot both read before a write")


async def cast(h: Harness) -> dict[str, Person]:
    await grant(h, CHIEF, "chief", LANE, "lane")
    await grant(h, SUPERVISOR, "supervisor", STREET, "street")
    await grant(h, SUPERVISOR_2, "supervisor", STREET, "street")
    async with h.session() as session, session.begin():
        await get_or_create_person(session, RESIDENT, now=h.clock.now(), language="zh")
    people = {}
    async with h.session() as session:
        for name, telegram_id in (
            ("chief", CHIEF),
            ("supervisor", SUPERVISOR),
            ("supervisor_2", SUPERVISOR_2),
            ("resident", RESIDENT),
        ):
            person = await session.scalar(select(Person).where(Person.telegram_id == telegram_id))
            assert person is not None
            people[name] = person
    return people


async def a_case(h: Harness, people: dict[str, Person], state: str, round_: int) -> int:
    """A case of the chief's lane in `state`, with the timeline that led there."""
    now = h.clock.now()
    steps = {
        State.TRIAGE: ["submitted", "triaged"],
        State.DISPATCHED: ["submitted", "dispatched"],
        State.ACCEPTED: ["submitted", "dispatched", "accepted"],
        State.RESOLVED: ["submitted", "dispatched", "accepted", "resolved"],
    }[state]
    async with h.session() as session, session.begin():
        case = Case(
            number=f"CY-20260101-{round_:04d}-{state[:3]}",
            state=state,
            category_id=None if state == State.TRIAGE else CHIEFS_CATEGORY,
            lane_id=LANE,
            street_id=STREET,
            assignee_id=None if state == State.TRIAGE else people["chief"].id,
            reporter_id=people["resident"].id,
            description=f"race {round_}",
            created_at=now,
            updated_at=now,
        )
        session.add(case)
        await session.flush()
        for action in steps:
            session.add(CaseEvent(case_id=case.id, action=action, created_at=now))
        if state == State.RESOLVED:
            due = now - timedelta(minutes=1)
            session.add(Deadline(case_id=case.id, kind="rating_close", due_at=due))
        return case.id


Act = Callable[[AsyncSession, Case], Awaitable[object]]


@dataclass(frozen=True)
class Move:
    """One person's action, what it adds to the timeline and the state it leaves."""

    name: str
    act: Act
    events: tuple[str, ...]
    state: str


async def race(h: Harness, case_id: int, moves: Sequence[Move]) -> list[str | None]:
    """The moves at once, each in its own transaction, all having read the case before any
    acts (as each handler reads it first). Per move: None if it went through, else the code
    of the CaseError its person was answered with (the transaction commits, as a handler's)."""
    everyone_read = asyncio.Barrier(len(moves))

    async def one(move: Move) -> str | None:
        async with h.session() as session, session.begin():
            case = await session.get(Case, case_id)
            assert case is not None
            await everyone_read.wait()
            try:
                await move.act(session, case)
            except CaseError as exc:
                return exc.code
            return None

    return list(await asyncio.gather(*(one(m) for m in moves)))


async def exactly_one_won(
    h: Harness, case_id: int, before: int, moves: Sequence[Move], outcome: list[str | None]
) -> Move:
    """One move went through, the other was told the case moved on, and the case's state and
    timeline show the winner's action only."""
    assert sorted(outcome, key=str) == [None, "moved_on"], outcome
    winner = moves[outcome.index(None)]
    events = await h.events(case_id)
    async with h.session() as session:
        case = await session.get(Case, case_id)
        assert case is not None
    assert tuple(e.action for e in events[before:]) == winner.events, winner.name
    assert case.state == winner.state
    assert _implied(events) == case.state
    return winner


def _implied(events: Sequence[CaseEvent]) -> str:
    """The state the timeline's last state-changing event leaves the case in."""
    for event in reversed(events):
        if event.action == "transferred":
            return State.TRIAGE if (event.data or {}).get("to_lane") is None else State.DISPATCHED
        if event.action in LEAVES:
            return LEAVES[event.action]
    raise AssertionError("no state-changing event")


async def run_pair(h: Harness, state: str, first: Move, second: Move) -> dict[str, int]:
    """ROUNDS races between `first` and `second` on fresh cases; how often each won."""
    people = await cast(h)
    wins = {first.name: 0, second.name: 0}
    for round_ in range(ROUNDS):
        case_id = await a_case(h, people, state, round_)
        before = len(await h.events(case_id))
        moves = (first, second) if round_ % 2 == 0 else (second, first)
        outcome = await race(h, case_id, moves)
        winner = await exactly_one_won(h, case_id, before, moves, outcome)
        wins[winner.name] += 1
    return wins


async def person(session: AsyncSession, telegram_id: int) -> Person:
    found = await session.scalar(select(Person).where(Person.telegram_id == telegram_id))
    assert found is not None
    return found


def accept(telegram_id: int) -> Move:
    async def act(session: AsyncSession, case: Case) -> object:
        actor = await person(session, telegram_id)
        return await handling.accept(session, case, actor, case.updated_at)

    return Move(f"accept by {telegram_id}", act, ("accepted",), State.ACCEPTED)


def reject(telegram_id: int) -> Move:
    async def act(session: AsyncSession, case: Case) -> object:
        actor = await person(session, telegram_id)
        return await handling.reject(session, case, actor, "不属于公共事务", case.updated_at)

    return Move(f"reject by {telegram_id}", act, ("rejected",), State.REJECTED)


def triage(telegram_id: int, category: str, h: Harness) -> Move:
    async def act(session: AsyncSession, case: Case) -> object:
        actor = await person(session, telegram_id)
        return await handling.triage(session, h.district, case, actor, category, case.updated_at)

    return Move(f"{category} by {telegram_id}", act, ("categorised", "dispatched"), "dispatched")


def resolve(telegram_id: int) -> Move:
    photo = PhotoInput(
        path="ab/after.jpg", sha256="0" * 64, phash="0" * 16, size=1, width=1, height=1
    )

    async def act(session: AsyncSession, case: Case) -> object:
        actor = await person(session, telegram_id)
        return await handling.resolve(session, case, actor, "已清理", photo, case.updated_at)

    return Move("resolve", act, ("resolved",), State.RESOLVED)


def transfer_to_triage(telegram_id: int) -> Move:
    async def act(session: AsyncSession, case: Case) -> object:
        actor = await person(session, telegram_id)
        back = Reassignment(lane_id=None, street_id=case.street_id, chief_id=None)
        return await handling.transfer(session, case, actor, back, "不属于本胡同", case.updated_at)

    return Move("transfer", act, ("transferred",), State.TRIAGE)


def withdraw(telegram_id: int) -> Move:
    async def act(session: AsyncSession, case: Case) -> object:
        actor = await person(session, telegram_id)
        return await cases.withdraw(session, case, actor, case.updated_at)

    return Move("withdraw", act, ("withdrawn",), State.WITHDRAWN)


async def test_accept_racing_reject(h: Harness) -> None:
    postgresql_only(h)
    wins = await run_pair(h, State.DISPATCHED, accept(CHIEF), reject(SUPERVISOR))
    assert sum(wins.values()) == ROUNDS


async def test_two_supervisors_triaging_to_different_categories(h: Harness) -> None:
    postgresql_only(h)
    to_chief = triage(SUPERVISOR, CHIEFS_CATEGORY, h)
    to_department = triage(SUPERVISOR_2, DEPARTMENTS_CATEGORY, h)
    wins = await run_pair(h, State.TRIAGE, to_chief, to_department)
    assert sum(wins.values()) == ROUNDS
    # The winner's choice is the one kept: one label, and the case went where it says.
    async with h.session() as session:
        for case in (await session.scalars(select(Case))).all():
            chosen = case.category_id
            assert (case.department_id is None) == (chosen == CHIEFS_CATEGORY), case.number


async def test_resolve_racing_transfer(h: Harness) -> None:
    postgresql_only(h)
    wins = await run_pair(h, State.ACCEPTED, resolve(CHIEF), transfer_to_triage(SUPERVISOR))
    assert sum(wins.values()) == ROUNDS


async def test_withdraw_racing_accept(h: Harness) -> None:
    postgresql_only(h)
    wins = await run_pair(h, State.DISPATCHED, withdraw(RESIDENT), accept(CHIEF))
    assert sum(wins.values()) == ROUNDS


async def test_a_rating_racing_the_unrated_close_sweep(h: Harness) -> None:
    """The resident rates while the sweep closes the case unrated: one of them, never both.

    Every other round (PostgreSQL) the sweep runs to its end after the rating read the case and
    before it acts; the others run both at once. On SQLite the sweep waits for the rating's
    transaction (it read first) and finds its step cancelled."""
    people = await cast(h)
    sqlite = h.ctx.settings.database_url.startswith("sqlite")
    for round_ in range(ROUNDS):
        case_id = await a_case(h, people, State.RESOLVED, round_)
        before = len(await h.events(case_id))
        between = round_ % 2 == 0 and not sqlite
        rated = await rating_races_sweep(h, case_id, people["resident"].id, between)
        events = (await h.events(case_id))[before:]
        closes = [e.data for e in events if e.action == "closed"]
        if rated is None:  # the rating won: the sweep's step was cancelled, never fired
            assert not between
            assert [e.action for e in events] == ["rated", "closed"]
            assert closes == [{"rated": True}]
        else:
            assert rated == "moved_on"
            assert [e.action for e in events] == ["closed"]
            assert closes == [{"rated": False}]
        async with h.session() as session:
            case = await session.get(Case, case_id)
            assert case is not None and case.state == State.CLOSED
            step = await session.scalar(select(Deadline).where(Deadline.case_id == case_id))
            assert step is not None and step.done_at is not None
        assert _implied(await h.events(case_id)) == State.CLOSED
    assert await sweep(h.ctx) == 0  # nothing left over to fire later


async def rating_races_sweep(
    h: Harness, case_id: int, resident_id: int, between: bool
) -> str | None:
    """Five stars and the sweep, the rating having read the case first; then, if `between`,
    the whole sweep before the rating acts, else both at once. None if the rating went
    through, else the code of its CaseError."""
    rating_read = asyncio.Event()

    async def rate() -> str | None:
        async with h.session() as session, session.begin():
            case = await session.get(Case, case_id)
            assert case is not None
            resident = await session.get(Person, resident_id)
            assert resident is not None
            rating_read.set()
            if between:
                assert await sweep(h.ctx) == 1
            try:
                await handling.rate(
                    session, case, resident, 5, h.clock.now(), reopen_window=timedelta(hours=72)
                )
            except CaseError as exc:
                return exc.code
            return None

    async def close_unrated() -> int:
        await rating_read.wait()
        return 0 if between else await sweep(h.ctx)

    rated, _taken = await asyncio.gather(rate(), close_unrated())
    return rated


async def test_two_supervisors_press_different_categories_at_once(h: Harness) -> None:
    """Through the chat: both press at the same moment; one sorts it, the other is told."""
    lane = h.district.lanes[LANE]
    await grant(h, CHIEF, "chief", LANE, "lane")
    await grant(h, SUPERVISOR, "supervisor", STREET, "street")
    await grant(h, SUPERVISOR_2, "supervisor", STREET, "street")
    chief = h.emulator.user(CHIEF, first_name="Chief", language_code="en")
    first = h.emulator.user(SUPERVISOR, first_name="Sup A", language_code="en")
    second = h.emulator.user(SUPERVISOR_2, first_name="Sup B", language_code="en")
    resident = h.emulator.user(RESIDENT, first_name="R", language_code="en")
    for p in (chief, first, second, resident):
        await p.send_command("/help")
        await p.expect(contains="/report")
    await resident.send_photo(noise_jpeg(7), caption="Something is not right here, please look")
    await resident.expect(contains="Where is it?")
    await resident.send_location(*lane.representative_point)
    await resident.expect(contains="Please check your report")
    await resident.press("✅ Confirm")
    await resident.expect(contains="Your case number is")
    [case] = await h.cases()
    assert case.state == State.TRIAGE
    cards = [await p.expect(contains=f"Case {case.number}") for p in (first, second)]

    await asyncio.gather(
        first.press_callback(cards[0].message_id, f"tri:{case.id}:{CHIEFS_CATEGORY}"),
        second.press_callback(cards[1].message_id, f"tri:{case.id}:{DEPARTMENTS_CATEGORY}"),
    )
    await h.emulator.wait_until(lambda: bool(first.callback_answers and second.callback_answers))
    answers = [first.callback_answers[-1], second.callback_answers[-1]]
    sorted_ = plain_text("en", "triage.sorted", number=case.number)
    told = {
        plain_text("en", "triage.already_sorted", number=case.number),
        plain_text("en", "error.moved_on"),
    }
    assert sorted(a.show_alert for a in answers) == [False, True]
    [won] = [a for a in answers if not a.show_alert]
    [lost] = [a for a in answers if a.show_alert]
    assert won.text == sorted_ and lost.text in told
    [case] = await h.cases()
    actions = [e.action for e in await h.events(case.id)]
    assert actions == ["submitted", "triaged", "categorised", "dispatched"]
    expected = CHIEFS_CATEGORY if won is answers[0] else DEPARTMENTS_CATEGORY
    assert case.category_id == expected and case.state == State.DISPATCHED
