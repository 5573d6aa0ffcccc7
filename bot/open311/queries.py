"""Which cases a GET requests call returns: by number, or by kind, time and status."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, lazyload

from bot.open311.errors import bad_request
from bot.open311.params import comma_list, w3c_datetime
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


def request_query(q: Mapping[str, str], *, now: datetime, tz: ZoneInfo) -> RequestQuery:
    """The filters of a GET requests call, checked (an Open311Error 400 when wrong)."""
    numbers = comma_list(q.get("service_request_id"))
    if len(numbers) > MAX_ROWS:
        raise bad_request("too_many_ids", limit=MAX_ROWS)
    if numbers:
        return RequestQuery(numbers=tuple(numbers))
    statuses = [s.lower() for s in comma_list(q.get("status"))] or [OPEN, CLOSED]
    wrong = [s for s in statuses if s not in (OPEN, CLOSED)]
    if wrong:
        raise bad_request("bad_status", status=wrong[0][:20])
    start = w3c_datetime("start_date", q["start_date"], tz) if q.get("start_date") else None
    end = w3c_datetime("end_date", q["end_date"], tz) if q.get("end_date") else None
    if start is None:
        end = end or now
        start = end - MAX_WINDOW
    elif end is None:
        end = start + MAX_WINDOW
    if end < start:
        raise bad_request("dates_reversed")
    if end - start > MAX_WINDOW:
        raise bad_request("window_too_long", days=MAX_WINDOW.days)
    return RequestQuery(
        service_codes=tuple(comma_list(q.get("service_code"))),
        start=start,
        end=end,
        statuses=frozenset(statuses),
    )


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
