"""The three rates and the figures around them, computed from the cases' timelines.

Plain domain code: a session, a scope, a period and `now` in; plain data out. Every figure is
defined in README.md ("KPIs: what each figure means"); the queries are in
`bot.figures.kpi_sql`. Events after `now` are ignored, so a figure computed with the same `now`
comes out the same later.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession

from bot.figures import kpi_sql as q
from bot.figures.hotspots import Hotspot, hotspots
from storage.models import Case

__all__ = [
    "Hotspot",
    "Kpis",
    "OverdueCase",
    "Period",
    "Ranked",
    "Ranking",
    "Rate",
    "Rates",
    "Scope",
    "TrendPoint",
    "compute",
    "hotspots",
    "most_overdue",
    "ranking",
    "rates",
    "trend",
]

ScopeKind = Literal["district", "street", "lane", "department", "person"]
Level = Literal["lane", "department"]
# Ranking score: response, resolution and satisfaction weighted 10 : 45 : 45. Answering fast
# matters, but whether it got fixed and what the resident thinks of it matter more.
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

    def window(self, now: datetime) -> q.Window:
        lo, hi = self.bounds()
        return q.Window(lo, hi, now)

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
class Rates:
    """Just the three rates: what a period is compared against."""

    response: Rate
    resolution: Rate
    satisfaction: Rate


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
    received = (await q.received(session, where, w, None)).get(None, (0,))[0]
    counts = (await q.event_counts(session, where, w, None)).get(None, (0,) * 8)
    repeats, rated, satisfied, unrated, reopened, rejected, withdrawn, resolved = counts
    dispatched, via_triage = await q.dispatched(session, where, w)
    accepted, median_accept = await q.accepted(session, where, w)
    overdue, unanswered = await q.overdue_counts(session, where, now)
    return Kpis(
        scope=scope,
        period=period,
        received=received,
        repeats=repeats,
        dispatched=dispatched,
        dispatched_auto=dispatched - via_triage,
        dispatched_via_triage=via_triage,
        accepted=accepted,
        response=_rate(await q.response(session, where, w, None), None),
        resolved=resolved,
        resolution=_rate(await q.resolution(session, where, w, None), None),
        satisfaction=Rate(satisfied, rated),
        unrated_closed=unrated,
        reopened=reopened,
        rejected=rejected,
        withdrawn=withdrawn,
        overdue=overdue,
        overdue_unanswered=unanswered,
        median_accept_s=median_accept,
        median_resolve_s=await q.median_resolve(session, where, w),
    )


async def rates(session: AsyncSession, scope: Scope, period: Period, *, now: datetime) -> Rates:
    """The three rates alone (a third of the queries of `compute`)."""
    w, where = period.window(now), scope.where()
    counts = (await q.event_counts(session, where, w, None)).get(None, (0,) * 8)
    return Rates(
        response=_rate(await q.response(session, where, w, None), None),
        resolution=_rate(await q.resolution(session, where, w, None), None),
        satisfaction=Rate(counts[2], counts[1]),
    )


async def trend(
    session: AsyncSession, scope: Scope, period: Period, *, now: datetime
) -> list[TrendPoint]:
    """Received, resolved and the three rates for each day of `period` (for the chart)."""
    days = period.each_day()
    w, where = period.window(now), scope.where()
    by = q.by_day([day.bounds()[1] for day in days])
    received = await q.received(session, where, w, by)
    counts = await q.event_counts(session, where, w, by)
    response = await q.response(session, where, w, by)
    resolution = await q.resolution(session, where, w, by)
    points = []
    for i, day in enumerate(days):
        c = counts.get(i, (0,) * 8)
        points.append(
            TrendPoint(
                day=day.start,
                received=received.get(i, (0,))[0],
                resolved=c[7],
                response=_rate(response, i),
                resolution=_rate(resolution, i),
                satisfaction=Rate(c[2], c[1]),
            )
        )
    return points


async def most_overdue(
    session: AsyncSession, scope: Scope, *, now: datetime, limit: int = 5
) -> list[OverdueCase]:
    """The open cases longest past a deadline, the longest first."""
    rows = await q.overdue_rows(session, scope.where(), now, limit)
    return [
        OverdueCase(
            number=number,
            lane_id=lane_id,
            department_id=department_id,
            missed="response" if unanswered else "resolve",
            due_at=due_at,
            late_s=(now - due_at).total_seconds(),
        )
        for number, lane_id, department_id, unanswered, due_at in rows
    ]


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
    column = Case.lane_id if level == "lane" else Case.department_id
    where: list[ColumnElement[bool]] = [column.is_not(None)]
    if street_id is not None:
        where.append(Case.street_id == street_id)
    w, by = period.window(now), q.by_column(column)
    response = await q.response(session, where, w, by)
    resolution = await q.resolution(session, where, w, by)
    counts = await q.event_counts(session, where, w, by)
    ranked, unranked = [], 0
    for key in sorted(response.keys() | resolution.keys() | counts.keys()):
        r = _rate(response, key)
        if r.total < min_cases:
            unranked += 1
            continue
        c = counts.get(key, (0,) * 8)
        rates = (r, _rate(resolution, key), Rate(c[2], c[1]))
        ranked.append(Ranked(str(key), _score(rates), *rates))
    ranked.sort(key=lambda g: (-g.score, -g.response.total, g.key))
    n_best = min(limit, (len(ranked) + 1) // 2)
    n_worst = min(limit, len(ranked) - n_best)
    worst = ranked[len(ranked) - n_worst :][::-1] if n_worst else []
    return Ranking(level, ranked[:n_best], worst, unranked)


def _rate(tally: q.Tally, key: Any) -> Rate:
    hits, total = tally.get(key, (0, 0))
    return Rate(hits, total)


def _score(rates: Sequence[Rate]) -> float:
    """The weighted mean of the rates that have a value (weights renormalised)."""
    pairs = [(wt, r.value) for wt, r in zip(WEIGHTS, rates, strict=True) if r.value is not None]
    total = sum(wt for wt, _ in pairs)
    return sum(wt * v for wt, v in pairs) / total if total else 0.0
