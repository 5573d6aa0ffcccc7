"""The SQL the KPIs are made of: event predicates, grouped tallies and a portable median.

Everything here compiles to the same meaning on SQLite and PostgreSQL. Figures are counted by
the database (COUNT/SUM with GROUP BY); Python only receives one row per group.
README.md, "KPIs: what each figure means", says in words what each predicate selects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Float, Select, and_, case, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import InstrumentedAttribute, aliased
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from storage.models import Case, CaseEvent

# What answers a dispatched case: the handler takes it on, calls a department or turns it down.
RESPONSES = ("accepted", "whistled", "rejected")
# The end of a case that never needed an answer or a fix.
DROPPED = ("withdrawn", "duplicate")
# After these a case cannot be late any more (the case is gone, or judged not to be real).
ENDED_UNFIXED = ("withdrawn", "duplicate", "rejected")
# States in which a handler still owes an answer, and in which they still owe a fix.
UNANSWERED_STATES = ("submitted", "triage", "dispatched")
UNFIXED_STATES = ("submitted", "triage", "dispatched", "accepted", "whistled")
SATISFIED = 4  # stars; the same threshold as bot.handling.SATISFIED

Group = InstrumentedAttribute[str | None] | InstrumentedAttribute[int | None]
Ev = type[CaseEvent]


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
    """UTC [lo, hi), and `now`: events after `now` do not exist yet for the figures."""

    lo: datetime
    hi: datetime
    now: datetime

    def holds(self, column: InstrumentedAttribute[datetime]) -> ColumnElement[bool]:
        return and_(column >= self.lo, column < self.hi, column <= self.now)

    def due_in(self, column: InstrumentedAttribute[datetime | None]) -> ColumnElement[bool]:
        """A deadline inside the window that has already passed."""
        return and_(column >= self.lo, column < self.hi, column <= self.now)


def flag(ev: Ev, key: str) -> ColumnElement[bool]:
    """A boolean in the event's JSON data, false when absent."""
    return func.coalesce(ev.data[key].as_boolean(), False)


def stars(ev: Ev) -> ColumnElement[int]:
    stars: ColumnElement[int] = ev.data["stars"].as_integer()
    return stars


def first_of(ev: Ev, actions: Sequence[str]) -> ColumnElement[bool]:
    """`ev` is the case's earliest event among `actions` (event ids grow with time)."""
    earlier = aliased(CaseEvent)
    return ~exists().where(
        earlier.case_id == ev.case_id, earlier.action.in_(actions), earlier.id < ev.id
    )


def has_event(actions: Sequence[str], *, until: Any) -> Any:
    """The case (the outer `Case`) has one of `actions` at or before `until`."""
    other = aliased(CaseEvent)
    return exists().where(
        other.case_id == Case.id, other.action.in_(actions), other.created_at <= until
    )


def response_on_time(ev: Ev) -> ColumnElement[bool]:
    """A response event in time: an accept as it recorded itself, other answers by the clock."""
    return or_(
        and_(ev.action == "accepted", flag(ev, "within_limit")),
        and_(
            ev.action != "accepted",
            or_(Case.response_due_at.is_(None), ev.created_at <= Case.response_due_at),
        ),
    )


def first_response_on_time(now: datetime) -> Any:
    """The case's first response was in time (EXISTS, correlated to the outer `Case`)."""
    r = aliased(CaseEvent)
    return exists().where(
        r.case_id == Case.id,
        r.action.in_(RESPONSES),
        r.created_at <= now,
        first_of(r, RESPONSES),
        response_on_time(r),
    )


def standing(ev: Ev, now: datetime) -> ColumnElement[bool]:
    """A `resolved` event that no `reopened` event (up to `now`) has undone."""
    later = aliased(CaseEvent)
    return ~exists().where(
        later.case_id == ev.case_id,
        later.action == "reopened",
        later.id > ev.id,
        later.created_at <= now,
    )


def resolved_on_time(now: datetime) -> Any:
    """The case has a standing resolution that was within its limit (correlated to `Case`)."""
    r = aliased(CaseEvent)
    return exists().where(
        r.case_id == Case.id,
        r.action == "resolved",
        r.created_at <= now,
        flag(r, "within_limit"),
        standing(r, now),
    )


def from_events(ev: Ev, *columns: ColumnElement[Any]) -> Select[Any]:
    """SELECT `columns` FROM the events joined to their case (for scope and due times)."""
    return select(*columns).select_from(ev).join(Case, Case.id == ev.case_id)


def count_if(condition: ColumnElement[bool] | Any) -> ColumnElement[int]:
    """SUM(CASE WHEN condition THEN 1 ELSE 0 END): a count inside a grouped query."""
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


Tally = dict[Any, tuple[int, ...]]


async def tally(session: AsyncSession, stmt: Select[Any], group: Group | None) -> Tally:
    """Run a query of aggregates, per value of `group` (key None when not grouped)."""
    if group is not None:
        stmt = stmt.add_columns(group).group_by(group)
    out: Tally = {}
    for row in (await session.execute(stmt)).all():
        values = tuple(int(v or 0) for v in (row[:-1] if group is not None else row))
        out[row[-1] if group is not None else None] = values
    return out


async def median(session: AsyncSession, stmt: Select[Any]) -> float | None:
    """The median of the one column `stmt` selects (NULLs left out): counted, then read.

    SQLite has no percentile function; ORDER BY … OFFSET n/2 reads one or two rows on both.
    """
    inner = stmt.subquery()
    rows = select(inner.c[0]).where(inner.c[0].is_not(None)).subquery()
    n = int(await session.scalar(select(func.count()).select_from(rows)) or 0)
    if n == 0:
        return None
    middle = (
        await session.scalars(
            select(rows.c[0]).order_by(rows.c[0]).offset((n - 1) // 2).limit(2 - n % 2)
        )
    ).all()
    # Rounded to the millisecond: julianday() arithmetic is off by some microseconds.
    return round(sum(float(v) for v in middle) / len(middle), 3)
