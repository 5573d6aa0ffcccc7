"""The case lifecycle on both backends: numbering, idempotency, withdrawing, notes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.domain import cases
from bot.domain.cases import CaseError, PhotoInput, ReportDraft, create_case
from bot.domain.lifecycle import State
from storage.db import make_engine, make_sessionmaker
from storage.models import Case, CaseEvent, Person
from storage.people import get_or_create_person

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(database_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def resident(sessions: async_sessionmaker[AsyncSession], telegram_id: int = 1) -> int:
    async with sessions() as session, session.begin():
        person = await get_or_create_person(session, telegram_id, now=NOW, language="zh")
        return person.id


def draft(reporter: int, key: str, description: str = "井盖缺失") -> ReportDraft:
    photo = PhotoInput(path="ab/x.jpg", sha256="0" * 64, phash="0" * 16, size=1, width=1, height=1)
    return ReportDraft(
        reporter_id=reporter, idempotency_key=key, description=description, photos=[photo]
    )


async def confirm(
    sessions: async_sessionmaker[AsyncSession], d: ReportDraft, now: datetime = NOW
) -> tuple[str, bool]:
    async with sessions() as session, session.begin():
        case, created = await create_case(session, d, prefix="CY", tz=TZ, now=now)
        return case.number, created


async def test_numbers_count_per_district_day(sessions: async_sessionmaker[AsyncSession]) -> None:
    me = await resident(sessions)
    assert (await confirm(sessions, draft(me, "a")))[0] == "CY-20261123-0001"
    assert (await confirm(sessions, draft(me, "b")))[0] == "CY-20261123-0002"
    # 16:30 UTC is already the next day in Beijing: the count starts again.
    late = datetime(2026, 11, 23, 16, 30, tzinfo=UTC)
    assert (await confirm(sessions, draft(me, "c"), late))[0] == "CY-20261124-0001"


async def test_confirming_the_same_draft_again_returns_the_same_case(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    me = await resident(sessions)
    first = await confirm(sessions, draft(me, "same"))
    again = await confirm(sessions, draft(me, "same"))
    assert first == ("CY-20261123-0001", True)
    assert again == ("CY-20261123-0001", False)
    async with sessions() as session:
        assert len((await session.scalars(select(Case))).all()) == 1


async def test_concurrent_confirms_get_distinct_numbers(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    me = await resident(sessions)
    numbers = await asyncio.gather(*(confirm(sessions, draft(me, f"k{i}")) for i in range(12)))
    assert sorted(n for n, _ in numbers) == [f"CY-20261123-{i:04d}" for i in range(1, 13)]


async def test_an_empty_or_overlong_report_is_refused(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    me = await resident(sessions)
    with pytest.raises(CaseError) as empty:
        await confirm(sessions, ReportDraft(reporter_id=me, idempotency_key="e"))
    assert empty.value.code == "empty_report"
    with pytest.raises(CaseError) as long:
        await confirm(sessions, draft(me, "l", description="字" * 2001))
    assert long.value.code == "description_too_long"
    async with sessions() as session:
        assert (await session.scalars(select(Case))).all() == []


async def test_only_the_reporter_withdraws_and_only_while_open(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    me, other = await resident(sessions, 1), await resident(sessions, 2)
    number, _ = await confirm(sessions, draft(me, "w"))
    async with sessions() as session, session.begin():
        case = await session.scalar(select(Case).where(Case.number == number))
        assert case is not None
        reporter, stranger = await session.get(Person, me), await session.get(Person, other)
        assert reporter is not None and stranger is not None
        with pytest.raises(CaseError, match="not_reporter"):
            await cases.withdraw(session, case, stranger, NOW)
        await cases.withdraw(session, case, reporter, NOW)
        assert case.state == State.WITHDRAWN
        with pytest.raises(CaseError, match="not_withdrawable"):
            await cases.withdraw(session, case, reporter, NOW)
        with pytest.raises(CaseError, match="case_closed"):
            cases.add_note(session, case, reporter, "more", NOW)
    async with sessions() as session:
        actions = (await session.scalars(select(CaseEvent.action).order_by(CaseEvent.id))).all()
    assert actions == ["submitted", "withdrawn"]


async def test_notes_are_checked_and_recorded(sessions: async_sessionmaker[AsyncSession]) -> None:
    me = await resident(sessions)
    number, _ = await confirm(sessions, draft(me, "n"))
    async with sessions() as session, session.begin():
        case = await session.scalar(select(Case).where(Case.number == number))
        reporter = await session.get(Person, me)
        assert case is not None and reporter is not None
        with pytest.raises(CaseError, match="empty_note"):
            cases.add_note(session, case, reporter, "   ", NOW)
        with pytest.raises(CaseError, match="note_too_long"):
            cases.add_note(session, case, reporter, "x" * 1001, NOW)
        event = cases.add_note(session, case, reporter, " it got worse ", NOW)
        assert event.note == "it got worse"
