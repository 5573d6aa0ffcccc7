"""Which cases a GET requests call returns: by number, or by kind, time and status."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, lazyload

from bot.open311.view import CLOSED, OPEN, OPEN_STATES
from storage.models import Case

MAX_WINDOW = timedelta(days=90)
MAX_ROWS = 1000


@dataclass(frozen=True)
class RequestQuery:
    """numbers: the cases asked for by id (the spec: this overrides every other filter)."""

    numbers: tuple[str, ...] = ()
    service_codes: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    statuses: frozenset[str] = frozenset({OPEN, CLOSED})


async def find_requests(session: AsyncSession, query: RequestQuery) -> Sequence[tuple[Case, str]]:
    """Up to 1,000 cases, newest first, each with the number of the case it duplicates ("")."""
    original = aliased(Case)
    stmt = (
        select(Case, original.number)
        .outerjoin(original, Case.duplicate_of_id == original.id)
        .options(lazyload(Case.photos))
    )
    if query.numbers:
        stmt = stmt.where(Case.number.in_([n.upper() for n in query.numbers]))
    else:
        assert query.start is not None and query.end is not None
        stmt = stmt.where(Case.created_at >= query.start, Case.created_at <= query.end)
        if query.service_codes:
            stmt = stmt.where(Case.category_id.in_(query.service_codes))
        if query.statuses == {OPEN}:
            stmt = stmt.where(Case.state.in_(OPEN_STATES))
        elif query.statuses == {CLOSED}:
            stmt = stmt.where(Case.state.not_in(OPEN_STATES))
    stmt = stmt.order_by(Case.created_at.desc(), Case.id.desc()).limit(MAX_ROWS)
    rows = (await session.execute(stmt)).all()
    return [(case, number or "") for case, number in rows]


async def request_by_number(session: AsyncSession, number: str) -> tuple[Case, str] | None:
    found = await find_requests(session, RequestQuery(numbers=(number.strip(),)))
    return found[0] if found else None
