"""The three rates and the figures around them, computed from the cases' timelines.

Plain domain code: a session, a scope, a period and `now` in; plain data out. Every figure is
defined in README.md ("KPIs: what each figure means"); the queries are in `bot.kpi_sql`. Events
after `now` are ignored, so a figure computed with the same `now` comes out the same later.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case, distinct, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.hotspots import Hotspot, hotspots
from bot.kpi_sql import (
    DROPPED,
    ENDED_UNFIXED,
    RESPONSES,
    SATISFIED,
    UNANSWERED_STATES,
    UNFIXED_STATES,
    Group,
    Tally,
    Window,
    count_if,
    epoch,
    first_of,
    first_response_on_time,
    flag,
    from_events,
    has_event,
    median,
    resolved_on_time,
    response_on_time,
    standing,
    stars,
    tally,
)
from storage.models import Case, CaseEvent

__all__ = [
    "Hotspot",
    "Kpis",
    "OverdueCase",
    "Period",
    "Ranked",
    "Ranking",
    "Rate",
    "Scope",
    "TrendPoint",
    "compute",
    "hotspots",
    "most_overdue",
    "ranking",
    "trend",
]

ScopeKind = Literal["district", "street", "lane", "department", "person"]
Level = Literal["lane", "department"]
# Ranking score: the three rates weighted 10 : 45 : 45, the proportions of Beijing's
# 接诉即办 assessment (answering fast matters, but fixing it and the resident's verdict more).
WEIGHTS = (0.10, 0.45, 0.45)


@dataclass(frozen=True)
class Scope:
    """Whose cases: the district, a street office, a lane, a department or a person."""

    kind: ScopeKind = "district"
    key: str | int | None = None

    @classmethod
    def district(cls) -> Scope:
        return cls()

    @classmethod
    def street(cls, street_id: str) -> Scope:
        return cls("street", street_id)

    @classmethod
    def lane(cls, lane_id: str) -> Scope:
        return cls("lane", lane_id)

    @classmethod
    def department(cls, department_id: str) -> Scope:
        return cls("department", department_id)

    @classmethod
    def person(cls, person_id: int) -> Scope:
        return cls("person", person_id)

    def where(self) -> list[ColumnElement[bool]]:
        """Conditions on `Case` (its current street, lane, department or assignee)."""
        if self.kind == "district":
            return []
        if self.key is None:
            raise ValueError(f"a {self.kind} scope needs an id")
        column = {
            "street": Case.street_id,
            "lane": Case.lane_id,
            "department": Case.department_id,
        }.get(self.kind)
        if column is not None:
            return [column == str(self.key)]
        return [Case.assignee_id == int(self.key)]


@dataclass(frozen=True)
class Period:
    """Local calendar days `start`..`end` (both included) in the district's time zone."""

    start: date
    end: date
    tz: ZoneInfo

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"period ends ({self.end}) before it starts ({self.start})")

    @classmethod
    def day(cls, day: date, tz: ZoneInfo) -> Period:
        return cls(day, day, tz)

    @classmethod
    def last_days(cls, end: date, days: int, tz: ZoneInfo) -> Period:
        return cls(end - timedelta(days=days - 1), end, tz)

    @classmethod
    def month_to_date(cls, day: date, tz: ZoneInfo) -> Period:
        return cls(day.replace(day=1), day, tz)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def bounds(self) -> tuple[datetime, datetime]:
        """UTC [from, to): local midnight before `start` to local midnight after `end`."""
        lo = datetime.combine(self.start, time(), tzinfo=self.tz)
        hi = datetime.combine(self.end + timedelta(days=1), time(), tzinfo=self.tz)
        return lo.astimezone(UTC), hi.astimezone(UTC)

    def window(self, now: datetime) -> Window:
        lo, hi = self.bounds()
        return Window(lo, hi, now)

    def previous(self) -> Period:
        """As many days, just before."""
        return Period.last_days(self.start - timedelta(days=1), self.days, self.tz)

    def month_before(self) -> Period:
        """The same days of the previous month (month to date against last month's)."""
        return Period(_month_back(self.start), _month_back(self.end), self.tz)

    def each_day(self) -> list[Period]:
        return [Period.day(self.start + timedelta(days=i), self.tz) for i in range(self.days)]


def _month_back(day: date) -> date:
    year, month = (day.year, day.month - 1) if day.month > 1 else (day.year - 1, 12)
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class Rate:
    """`hits` of `total` judged; no value when nothing was judged."""

    hits: int = 0
    total: int = 0

    @property
    def value(self) -> float | None:
        return self.hits / self.total if self.total else None


@dataclass(frozen=True)
class Kpis:
    """The figures of one scope and period (see README.md for each definition)."""

    scope: Scope
    period: Period
    received: int
    repeats: int
    dispatched: int
    dispatched_auto: int
    dispatched_via_triage: int
    accepted: int
    response: Rate
    resolved: int
    resolution: Rate
    satisfaction: Rate
    unrated_closed: int
    reopened: int
    rejected: int
    withdrawn: int
    overdue: int
    overdue_unanswered: int
    median_accept_s: float | None
    median_resolve_s: float | None


@dataclass(frozen=True)
class TrendPoint:
    """One local day of the trend chart."""

    day: date
    received: int
    resolved: int
    response: Rate
    resolution: Rate
    satisfaction: Rate


@dataclass(frozen=True)
class OverdueCase:
    """An open case past a deadline: which one it missed and since when."""

    number: str
    lane_id: str | None
    department_id: str | None
    missed: Literal["response", "resolve"]
    due_at: datetime
    late_s: float


@dataclass(frozen=True)
class Ranked:
    """A lane or department with its rates in the period and its score (0–1)."""

    key: str
    score: float
    response: Rate
    resolution: Rate
    satisfaction: Rate


@dataclass(frozen=True)
class Ranking:
    level: Level
    best: list[Ranked]
    worst: list[Ranked]
    unranked: int  # groups with too few cases to rank


# --------------------------------------------------------------------------- public API


async def compute(session: AsyncSession, scope: Scope, period: Period, *, now: datetime) -> Kpis:
    """Every figure of `scope` over `period`, as of `now`."""
    w, where = period.window(now), scope.where()
    counts = (await _event_counts(session, where, w, None)).get(None, (0,) * 7)
    repeats, rated, satisfied, unrated, reopened, rejected, withdrawn = counts[:7]
    dispatched, via_triage = (await _dispatched(session, where, w)).get(None, (0, 0))
    overdue, unanswered = await _overdue_counts(session, where, now)
    accepted, median_accept = await _accepted(session, where, w)
    return Kpis(
        scope=scope,
        period=period,
        received=await _received(session, where, w),
        repeats=repeats,
        dispatched=dispatched,
        dispatched_auto=dispatched - via_triage,
        dispatched_via_triage=via_triage,
        accepted=accepted,
        response=(await _response(session, where, w, None)).get(None, Rate()),
        resolved=await _resolved(session, where, w),
        resolution=(await _resolution(session, where, w, None)).get(None, Rate()),
        satisfaction=Rate(satisfied, rated),
        unrated_closed=unrated,
        reopened=reopened,
        rejected=rejected,
        withdrawn=withdrawn,
        overdue=overdue,
        overdue_unanswered=unanswered,
        median_accept_s=median_accept,
        median_resolve_s=await _median_resolve(session, where, w),
    )


async def trend(
    session: AsyncSession, scope: Scope, period: Period, *, now: datetime
) -> list[TrendPoint]:
    """Received, resolved and the three rates for each day of `period` (for the chart)."""
    where = scope.where()
    points = []
    for day in period.each_day():
        w = day.window(now)
        counts = (await _event_counts(session, where, w, None)).get(None, (0,) * 7)
        points.append(
            TrendPoint(
                day=day.start,
                received=await _received(session, where, w),
                resolved=await _resolved(session, where, w),
                response=(await _response(session, where, w, None)).get(None, Rate()),
                resolution=(await _resolution(session, where, w, None)).get(None, Rate()),
                satisfaction=Rate(counts[2], counts[1]),
            )
        )
    return points


async def most_overdue(
    session: AsyncSession, scope: Scope, *, now: datetime, limit: int = 5
) -> list[OverdueCase]:
    """The open cases longest past a deadline, the longest first."""
    unanswered = _unanswered(now)
    missed_at = case((unanswered, Case.response_due_at), else_=Case.resolve_due_at)
    rows = await session.execute(
        select(Case.number, Case.lane_id, Case.department_id, unanswered, missed_at)
        .where(_overdue(now), *scope.where())
        .order_by(missed_at, Case.id)
        .limit(limit)
    )
    out = []
    for number, lane_id, department_id, is_unanswered, due_at in rows.all():
        due = _aware(due_at)
        out.append(
            OverdueCase(
                number=number,
                lane_id=lane_id,
                department_id=department_id,
                missed="response" if is_unanswered else "resolve",
                due_at=due,
                late_s=(now - due).total_seconds(),
            )
        )
    return out


async def ranking(
    session: AsyncSession,
    level: Level,
    period: Period,
    street_id: str | None = None,
    *,
    now: datetime,
    min_cases: int = 3,
    limit: int = 3,
) -> Ranking:
    """Best and worst lanes or departments by score; see README.md for the score."""
    group: Group = Case.lane_id if level == "lane" else Case.department_id
    where: list[ColumnElement[bool]] = [group.is_not(None)]
    if street_id is not None:
        where.append(Case.street_id == street_id)
    w = period.window(now)
    response = await _response(session, where, w, group)
    resolution = await _resolution(session, where, w, group)
    counts = await _event_counts(session, where, w, group)
    ranked, unranked = [], 0
    for key in sorted(set(response) | set(resolution) | set(counts)):
        r = response.get(key, Rate())
        if r.total < min_cases:
            unranked += 1
            continue
        c = counts.get(key, (0,) * 7)
        rates = (r, resolution.get(key, Rate()), Rate(c[2], c[1]))
        ranked.append(Ranked(str(key), _score(rates), *rates))
    ranked.sort(key=lambda g: (-g.score, -g.response.total, g.key))
    n_best = min(limit, (len(ranked) + 1) // 2)
    n_worst = min(limit, len(ranked) - n_best)
    worst = list(reversed(ranked[len(ranked) - n_worst :])) if n_worst else []
    return Ranking(level, ranked[:n_best], worst, unranked)


def _score(rates: Sequence[Rate]) -> float:
    """The weighted mean of the rates that have a value (weights renormalised)."""
    pairs = [(wt, r.value) for wt, r in zip(WEIGHTS, rates, strict=True) if r.value is not None]
    total = sum(wt for wt, _ in pairs)
    return sum(wt * v for wt, v in pairs) / total if total else 0.0


# --------------------------------------------------------------------------- the figures

Where = Sequence[ColumnElement[bool]]
E = CaseEvent


async def _received(session: AsyncSession, where: Where, w: Window) -> int:
    stmt = from_events(E, func.count()).where(
        E.action == "submitted",
        w.holds(E.created_at),
        ~has_event(("duplicate",), until=w.now),
        *where,
    )
    return int(await session.scalar(stmt) or 0)


async def _event_counts(
    session: AsyncSession, where: Where, w: Window, group: Group | None
) -> Tally:
    """(repeats, rated, satisfied, unrated closed, reopened, rejected, withdrawn) per group."""
    stmt = from_events(
        E,
        count_if(E.action == "duplicate"),
        count_if(E.action == "rated"),
        count_if(and_(E.action == "rated", stars(E) >= SATISFIED)),
        count_if(and_(E.action == "closed", ~flag(E, "rated"))),
        count_if(E.action == "reopened"),
        count_if(E.action == "rejected"),
        count_if(E.action == "withdrawn"),
    ).where(
        E.action.in_(("duplicate", "rated", "closed", "reopened", "rejected", "withdrawn")),
        w.holds(E.created_at),
        *where,
    )
    return await tally(session, stmt, group)


async def _resolved(session: AsyncSession, where: Where, w: Window) -> int:
    stmt = from_events(E, func.count(distinct(E.case_id))).where(
        E.action == "resolved", w.holds(E.created_at), *where
    )
    return int(await session.scalar(stmt) or 0)


async def _dispatched(session: AsyncSession, where: Where, w: Window) -> Tally:
    """(dispatched, of which through triage) for cases first dispatched in the window."""
    triaged = aliased(CaseEvent)
    via_triage = exists().where(
        triaged.case_id == E.case_id, triaged.action == "triaged", triaged.id < E.id
    )
    stmt = from_events(E, func.count(), count_if(via_triage)).where(
        E.action == "dispatched",
        w.holds(E.created_at),
        first_of(E, ("dispatched",)),
        *where,
    )
    return await tally(session, stmt, None)


async def _accepted(session: AsyncSession, where: Where, w: Window) -> tuple[int, float | None]:
    """Cases first accepted in the window, and the median time from dispatch to that accept."""
    handed = aliased(CaseEvent)
    dispatched_at = (
        select(func.min(epoch(handed.created_at)))
        .where(
            handed.case_id == E.case_id,
            handed.action.in_(("dispatched", "transferred")),
            handed.id < E.id,
        )
        .scalar_subquery()
    )
    base = from_events(E, func.count()).where(
        E.action == "accepted", w.holds(E.created_at), first_of(E, ("accepted",)), *where
    )
    count = int(await session.scalar(base) or 0)
    if count == 0:
        return 0, None
    return count, await median(session, base.with_only_columns(epoch(E.created_at) - dispatched_at))


async def _median_resolve(session: AsyncSession, where: Where, w: Window) -> float | None:
    """Median time from the report to its standing resolution, over resolutions in the window."""
    stmt = from_events(E, epoch(E.created_at) - epoch(Case.created_at)).where(
        E.action == "resolved", w.holds(E.created_at), standing(E, w.now), *where
    )
    return await median(session, stmt)


async def _response(
    session: AsyncSession, where: Where, w: Window, group: Group | None
) -> dict[Any, Rate]:
    """Responses judged in the window: first answers in time, and deadlines missed."""
    on_time = from_events(E, func.count()).where(
        E.action.in_(RESPONSES),
        w.holds(E.created_at),
        first_of(E, RESPONSES),
        response_on_time(E),
        *where,
    )
    missed = (
        select(func.count())
        .select_from(Case)
        .where(
            w.due_in(Case.response_due_at),
            ~first_response_on_time(w.now),
            ~has_event(DROPPED, until=Case.response_due_at),
            *where,
        )
    )
    return _rates(await tally(session, on_time, group), await tally(session, missed, group))


async def _resolution(
    session: AsyncSession, where: Where, w: Window, group: Group | None
) -> dict[Any, Rate]:
    """Resolutions judged in the window: standing fixes in time, and deadlines missed."""
    on_time = from_events(E, func.count()).where(
        E.action == "resolved",
        w.holds(E.created_at),
        flag(E, "within_limit"),
        standing(E, w.now),
        *where,
    )
    missed = (
        select(func.count())
        .select_from(Case)
        .where(
            w.due_in(Case.resolve_due_at),
            ~resolved_on_time(w.now),
            ~has_event(ENDED_UNFIXED, until=Case.resolve_due_at),
            *where,
        )
    )
    return _rates(await tally(session, on_time, group), await tally(session, missed, group))


def _rates(hits: Tally, misses: Tally) -> dict[Any, Rate]:
    out = {}
    for key in set(hits) | set(misses):
        h, m = hits.get(key, (0,))[0], misses.get(key, (0,))[0]
        if h + m:
            out[key] = Rate(h, h + m)
    return out


def _unanswered(now: datetime) -> ColumnElement[bool]:
    return and_(Case.state.in_(UNANSWERED_STATES), Case.response_due_at < now)


def _overdue(now: datetime) -> ColumnElement[bool]:
    """Open, not yet fixed, and past the response deadline unanswered or past the fix deadline."""
    return and_(Case.state.in_(UNFIXED_STATES), or_(_unanswered(now), Case.resolve_due_at < now))


async def _overdue_counts(session: AsyncSession, where: Where, now: datetime) -> tuple[int, int]:
    row = (
        await session.execute(
            select(func.count(), count_if(_unanswered(now))).where(_overdue(now), *where)
        )
    ).one()
    return int(row[0] or 0), int(row[1] or 0)


def _aware(value: datetime) -> datetime:
    # A CASE over two UTCDateTime columns loses the column type: SQLite hands back text.
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)
