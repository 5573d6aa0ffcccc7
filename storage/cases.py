"""Cases, their numbers and timelines, by use."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Case, CaseCounter, CaseEvent


async def next_case_serial(session: AsyncSession, day: str) -> int:
    """The next serial for `day`, unique under concurrent callers.

    The increment is one UPDATE … RETURNING: PostgreSQL row-locks the counter and SQLite holds
    the database write lock, so concurrent transactions queue instead of reading the same value.
    """
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    await session.execute(
        insert(CaseCounter).values(day=day, last=0).on_conflict_do_nothing(index_elements=["day"])
    )
    serial = await session.scalar(
        update(CaseCounter)
        .where(CaseCounter.day == day)
        .values(last=CaseCounter.last + 1)
        .returning(CaseCounter.last)
    )
    assert serial is not None
    return int(serial)


async def lock_case(session: AsyncSession, case: Case) -> None:
    """Read `case` again and hold its row until the transaction ends.

    On PostgreSQL the SELECT … FOR NO KEY UPDATE waits for a transaction that holds the row and
    then sees what it committed, so two transitions of one case take turns. (NO KEY: inserting
    an event or message that refers to the case still goes ahead.) SQLite renders no lock
    clause; each of its transactions holds the database's write lock from its first statement
    (storage/db.py), which serialises them already. The session's pending changes are flushed
    first, so none is lost by the re-read.
    """
    await session.execute(
        select(Case)
        .where(Case.id == case.id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )


async def case_by_number(session: AsyncSession, number: str) -> Case | None:
    return await session.scalar(select(Case).where(Case.number == number.strip().upper()))


async def case_by_idempotency_key(session: AsyncSession, key: str) -> Case | None:
    return await session.scalar(select(Case).where(Case.idempotency_key == key))


async def cases_of_reporter(session: AsyncSession, reporter_id: int, limit: int) -> Sequence[Case]:
    return (
        await session.scalars(
            select(Case)
            .where(Case.reporter_id == reporter_id)
            .order_by(Case.created_at.desc(), Case.id.desc())
            .limit(limit)
        )
    ).all()


async def timeline(session: AsyncSession, case_id: int) -> Sequence[CaseEvent]:
    return (
        await session.scalars(
            select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)
        )
    ).all()
