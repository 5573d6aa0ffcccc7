"""The SQL of the KPIs: one grouped query per figure, the same meaning on SQLite and PostgreSQL.

The database counts (COUNT/SUM … GROUP BY); Python receives one row per group. A figure can be
grouped by a case column (lane, department: rankings) or by local day (the trend, one query
for all 14 days: the day is a CASE over day boundaries computed in Python, so no time-zone
arithmetic happens in SQL). README.md, "KPIs: what each figure means", says the same in words.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Float,
    FromClause,
    Select,
    Table,
    and_,
    case,
    distinct,
    exists,
    func,
    literal_column,
    or_,
    select,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from bot.domain import lifecycle
from bot.domain.lifecycle import Event
from storage.models import Case, CaseEvent

# The lifecycle's sets (bot/domain/lifecycle.py). What answers a case: an assignee takes it on,
# calls a department, or turns it down.
RESPONSES = lifecycle.RESPONSES
# Ends after which a case is owed no answer (taken back, or joined to another case) …
DROPPED = lifecycle.DROPPED
# … and after which it is owed no fix (those, or judged not to be a real problem).
ENDED_UNFIXED = lifecycle.ENDED_UNFIXED
UNANSWERED_STATES = lifecycle.AWAITING_RESPONSE
UNFIXED_STATES = lifecycle.UNFIXED
SATISFIED = 4  # stars: a rating of 4 or 5 counts in the satisfaction rate (满意率)

# The events table in Core: aliases of it are cheap to build, unlike ORM aliases.
EVENTS = cast(Table, CaseEvent.__table__)
E = EVENTS.alias("e")

Where = Sequence[ColumnElement[bool]]
Column = ColumnElement[Any] | InstrumentedAttribute[Any]
# How a figure is split: given the timestamp that places a row in time, the grouping key.
By = Callable[[Column], Column]
Tally = dict[Any, tuple[int, ...]]


class epoch(FunctionElement[float]):  # lower case: it reads as the SQL function it is
    """Seconds since 1970 of a timestamp column, so that differences are durations."""

    type = Float()
    inherit_cache = True
    name = "epoch"


@compiles(epoch)
def _epoch_default(element: epoch, compiler: SQLCompiler, **kw: Any) -> str:
    return f"EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)})"


@compiles(epoch, "sqlite")
def _epoch_sqlite(element: epoch, compiler: SQLCompiler, **kw: Any) -> str:
    # UTCDateTime stores naive UTC text on SQLite, which julianday() reads as UTC.
    return f"(julianday({compiler.process(element.clauses, **kw)}) * 86400.0)"


@dataclass(frozen=True)
class Window:
    """UTC [lo, hi), and `now`: nothing after `now` has happened yet for the figures."""

    lo: datetime
    hi: datetime
    now: datetime

    def holds(self, column: Column) -> ColumnElement[bool]:
        """An event time, or a deadline that has passed, inside the window."""
        return and_(column >= self.lo, column < self.hi, column <= self.now)


def by_column(column: Column) -> By:
    """Split by a case column (lane, department), whatever the time."""
    return lambda _when: column


def by_day(edges: Sequence[datetime]) -> By:
    """Split by local day: key i for times before `edges[i]` (each day's end, ascending)."""
    return lambda when: case(*((when < edge, i) for i, edge in enumerate(edges)))


# --------------------------------------------------------------------------- predicates


def flag(ev: FromClause, key: str) -> ColumnElement[bool]:
    """A boolean in the event's JSON data, false when absent."""
    return func.coalesce(ev.c.data[key].as_boolean(), False)


def first_of(ev: FromClause, actions: Sequence[str]) -> ColumnElement[bool]:
    """`ev` is its case's earliest event among `actions` (event ids grow with time).

    A correlated MIN, not NOT EXISTS: PostgreSQL turns the latter into a hash anti-join over
    every such event in the table, where this reads one index entry per row.
    """
    same = EVENTS.alias()
    first = (
        select(func.min(same.c.id))
        .where(same.c.case_id == ev.c.case_id, same.c.action.in_(actions))
        .scalar_subquery()
    )
    return ev.c.id == first


def has_event(actions: Sequence[str], *, until: Any) -> ColumnElement[bool]:
    """The case (the outer `Case`) has one of `actions` at or before `until`."""
    other = EVENTS.alias()
    return exists().where(
        other.c.case_id == Case.id, other.c.action.in_(actions), other.c.created_at <= until
    )


def response_on_time(ev: FromClause) -> ColumnElement[bool]:
    """A response in time: an accept as it recorded itself, other answers by the clock."""
    return or_(
        and_(ev.c.action == Event.ACCEPTED, flag(ev, "within_limit")),
        and_(
            ev.c.action != Event.ACCEPTED,
            or_(Case.response_due_at.is_(None), ev.c.created_at <= Case.response_due_at),
        ),
    )


def standing(ev: FromClause, now: datetime) -> ColumnElement[bool]:
    """A `resolved` event that no `reopened` event (up to `now`) has undone."""
    later = EVENTS.alias()
    last_reopen = (
        select(func.max(later.c.id))
        .where(
            later.c.case_id == ev.c.case_id,
            later.c.action == Event.REOPENED,
            later.c.created_at <= now,
        )
        .scalar_subquery()
    )
    return ev.c.id > func.coalesce(last_reopen, 0)


def _first_response_on_time(now: datetime) -> ColumnElement[bool]:
    r = EVENTS.alias()
    return exists().where(
        r.c.case_id == Case.id,
        r.c.action.in_(RESPONSES),
        r.c.created_at <= now,
        first_of(r, RESPONSES),
        response_on_time(r),
    )


def _resolved_on_time(now: datetime) -> ColumnElement[bool]:
    r = EVENTS.alias()
    return exists().where(
        r.c.case_id == Case.id,
        r.c.action == Event.RESOLVED,
        r.c.created_at <= now,
        flag(r, "within_limit"),
        standing(r, now),
    )


def unanswered(now: datetime) -> ColumnElement[bool]:
    return and_(Case.state.in_(UNANSWERED_STATES), Case.response_due_at < now)


def overdue(now: datetime) -> ColumnElement[bool]:
    """Not yet fixed, and unanswered past the response deadline or past the fix deadline."""
    return and_(Case.state.in_(UNFIXED_STATES), or_(unanswered(now), Case.resolve_due_at < now))


def count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    """SUM(CASE WHEN condition THEN 1 ELSE 0 END): a count inside a grouped query."""
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _events(*columns: ColumnElement[Any]) -> Select[Any]:
    """SELECT `columns` FROM the events joined to their case (for scope and due times)."""
    return select(*columns).select_from(E).join(Case, Case.id == E.c.case_id)


async def _tally(session: AsyncSession, stmt: Select[Any], key: Column | None) -> Tally:
    if key is not None:
        # GROUP BY the output column's name: PostgreSQL would not see two renderings of a CASE
        # with bound parameters as the same expression.
        stmt = stmt.add_columns(key.label("group_key")).group_by(literal_column("group_key"))
    out: Tally = {}
    for row in (await session.execute(stmt)).all():
        values = row[:-1] if key is not None else row
        out[row[-1] if key is not None else None] = tuple(int(v or 0) for v in values)
    return out


def _key(by: By | None, when: Column) -> Column | None:
    return by(when) if by is not None else None


# --------------------------------------------------------------------------- figures


async def received(session: AsyncSession, where: Where, w: Window, by: By | None) -> Tally:
    """(new cases,): `submitted` in the window, not joined to another case."""
    stmt = _events(func.count()).where(
        E.c.action == Event.SUBMITTED,
        w.holds(E.c.created_at),
        ~has_event((Event.DUPLICATE,), until=w.now),
        *where,
    )
    return await _tally(session, stmt, _key(by, E.c.created_at))


async def event_counts(session: AsyncSession, where: Where, w: Window, by: By | None) -> Tally:
    """(repeats, rated, satisfied, unrated closed, reopened, rejected, withdrawn, resolved)."""
    stars = E.c.data["stars"].as_integer()
    stmt = _events(
        count_if(E.c.action == Event.DUPLICATE),
        count_if(E.c.action == Event.RATED),
        count_if(and_(E.c.action == Event.RATED, stars >= SATISFIED)),
        count_if(and_(E.c.action == Event.CLOSED, ~flag(E, "rated"))),
        count_if(E.c.action == Event.REOPENED),
        count_if(E.c.action == Event.REJECTED),
        count_if(E.c.action == Event.WITHDRAWN),
        # Cases, not events: one fixed twice (after a reopen) the same day counts once.
        func.count(distinct(case((E.c.action == Event.RESOLVED, E.c.case_id)))),
    ).where(
        E.c.action.in_(
            (
                Event.DUPLICATE,
                Event.RATED,
                Event.CLOSED,
                Event.REOPENED,
                Event.REJECTED,
                Event.WITHDRAWN,
                Event.RESOLVED,
            )
        ),
        w.holds(E.c.created_at),
        *where,
    )
    return await _tally(session, stmt, _key(by, E.c.created_at))


async def dispatched(session: AsyncSession, where: Where, w: Window) -> tuple[int, int]:
    """(cases first dispatched in the window, of which after triage)."""
    triaged = EVENTS.alias()
    via_triage = exists().where(
        triaged.c.case_id == E.c.case_id, triaged.c.action == Event.TRIAGED, triaged.c.id < E.c.id
    )
    stmt = _events(func.count(), count_if(via_triage)).where(
        E.c.action == Event.DISPATCHED,
        w.holds(E.c.created_at),
        first_of(E, (Event.DISPATCHED,)),
        *where,
    )
    row = (await session.execute(stmt)).one()
    return int(row[0] or 0), int(row[1] or 0)


async def accepted(session: AsyncSession, where: Where, w: Window) -> tuple[int, float | None]:
    """(cases first accepted in the window, median seconds from first dispatch to accept)."""
    handed = EVENTS.alias()
    handed_at = (
        select(func.min(epoch(handed.c.created_at)))
        .where(
            handed.c.case_id == E.c.case_id,
            handed.c.action.in_((Event.DISPATCHED, Event.TRANSFERRED)),
            handed.c.id < E.c.id,
        )
        .scalar_subquery()
    )
    base = _events(func.count()).where(
        E.c.action == Event.ACCEPTED,
        w.holds(E.c.created_at),
        first_of(E, (Event.ACCEPTED,)),
        *where,
    )
    count = int(await session.scalar(base) or 0)
    if count == 0:
        return 0, None
    return count, await _median(session, base.with_only_columns(epoch(E.c.created_at) - handed_at))


async def median_resolve(session: AsyncSession, where: Where, w: Window) -> float | None:
    """Median seconds from report to standing resolution, over resolutions in the window."""
    stmt = _events(epoch(E.c.created_at) - epoch(Case.created_at)).where(
        E.c.action == Event.RESOLVED, w.holds(E.c.created_at), standing(E, w.now), *where
    )
    return await _median(session, stmt)


async def response(session: AsyncSession, where: Where, w: Window, by: By | None) -> Tally:
    """(in time, judged): first answers in time in the window + deadlines missed in it."""
    on_time = _events(func.count()).where(
        E.c.action.in_(RESPONSES),
        w.holds(E.c.created_at),
        first_of(E, RESPONSES),
        response_on_time(E),
        *where,
    )
    missed = (
        select(func.count())
        .select_from(Case)
        .where(
            w.holds(Case.response_due_at),
            ~_first_response_on_time(w.now),
            ~has_event(DROPPED, until=Case.response_due_at),
            *where,
        )
    )
    return _judged(
        await _tally(session, on_time, _key(by, E.c.created_at)),
        await _tally(session, missed, _key(by, Case.response_due_at)),
    )


async def resolution(session: AsyncSession, where: Where, w: Window, by: By | None) -> Tally:
    """(in time, judged): standing fixes in time in the window + deadlines missed in it."""
    on_time = _events(func.count()).where(
        E.c.action == Event.RESOLVED,
        w.holds(E.c.created_at),
        flag(E, "within_limit"),
        standing(E, w.now),
        *where,
    )
    missed = (
        select(func.count())
        .select_from(Case)
        .where(
            w.holds(Case.resolve_due_at),
            ~_resolved_on_time(w.now),
            ~has_event(ENDED_UNFIXED, until=Case.resolve_due_at),
            *where,
        )
    )
    return _judged(
        await _tally(session, on_time, _key(by, E.c.created_at)),
        await _tally(session, missed, _key(by, Case.resolve_due_at)),
    )


def _judged(hits: Tally, misses: Tally) -> Tally:
    out: Tally = {}
    for key in hits.keys() | misses.keys():
        h, m = hits.get(key, (0,))[0], misses.get(key, (0,))[0]
        out[key] = (h, h + m)
    return out


async def overdue_counts(session: AsyncSession, where: Where, now: datetime) -> tuple[int, int]:
    """(overdue now, of which unanswered)."""
    stmt = select(func.count(), count_if(unanswered(now))).where(overdue(now), *where)
    row = (await session.execute(stmt)).one()
    return int(row[0] or 0), int(row[1] or 0)


async def overdue_rows(
    session: AsyncSession, where: Where, now: datetime, limit: int
) -> list[tuple[str, str | None, str | None, bool, datetime]]:
    """(number, lane, department, unanswered?, deadline missed), the earliest deadline first."""
    late = unanswered(now)
    missed_at = case((late, Case.response_due_at), else_=Case.resolve_due_at)
    stmt = (
        select(Case.number, Case.lane_id, Case.department_id, late, missed_at)
        .where(overdue(now), *where)
        .order_by(missed_at, Case.id)
        .limit(limit)
    )
    rows = (await session.execute(stmt)).all()
    return [(n, lane, dep, bool(u), _utc(due)) for n, lane, dep, u, due in rows]


async def _median(session: AsyncSession, stmt: Select[Any]) -> float | None:
    """The median of the one column `stmt` selects (NULLs left out), in one pass.

    PostgreSQL computes it (`percentile_cont`); SQLite has no percentile function, so the
    values are read once and the middle taken here. (Counting, then ORDER BY … OFFSET n/2,
    ran the query twice: 13-18% of a month's KPIs over 1,000,000 cases, bench/RESULTS.md.)
    """
    value = stmt.subquery().c[0]
    if session.get_bind().dialect.name == "postgresql":
        ordered = func.percentile_cont(0.5).within_group(sql_cast(value, Float))
        found = await session.scalar(select(ordered).where(value.is_not(None)))
        # Rounded to the millisecond, as on SQLite, whose julianday() is off by microseconds.
        return None if found is None else round(float(found), 3)
    rows = await session.scalars(select(value).where(value.is_not(None)))
    values = sorted(float(v) for v in rows)
    if not values:
        return None
    middle = values[(len(values) - 1) // 2 : len(values) // 2 + 1]
    return round(sum(middle) / len(middle), 3)


def _utc(value: datetime | str) -> datetime:
    # A CASE over two UTCDateTime columns may come back untyped: naive text on SQLite.
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    return when if when.tzinfo else when.replace(tzinfo=UTC)
