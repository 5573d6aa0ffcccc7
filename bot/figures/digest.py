"""The supervisor's daily digest: one message and one chart of how a day went and what to chase.

No Telegram here: figures from `bot.figures.kpi`, words from the catalogues, the chart from
`bot.figures.charts`. `DigestBuilder` builds a reader's digests; putting them into messages is
bot/telegram/digest.py's, sending them once a day per supervisor bot/jobs/digests.py's, and on
demand the /digest command's (bot/telegram/handlers/stats.py).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.domain.district import District
from bot.figures import kpi
from bot.figures.charts import ChartText, trend_png
from bot.figures.kpi import (
    Hotspot,
    Kpis,
    OverdueCase,
    Period,
    Ranked,
    Ranking,
    Rate,
    Rates,
    Scope,
    TrendPoint,
)
from bot.figures.names import category_name
from bot.i18n import Safe, normalise_language, t
from storage.db import reading

TREND_DAYS = 14
HOTSPOT_DAYS = 7
HOTSPOT_MIN_REPORTS = 3
OVERDUE_SHOWN = 5
HOTSPOTS_SHOWN = 5
NUMBERS_SHOWN = 3  # case numbers listed per hotspot


@dataclass(frozen=True)
class Digest:
    """The figures of one digest, its text (Telegram HTML) and its chart (PNG)."""

    day: date
    street_id: str | None
    the_day: Kpis
    day_before: Rates
    month: Kpis
    month_before: Rates
    overdue: list[OverdueCase]
    lanes: Ranking
    departments: Ranking
    hotspots: list[Hotspot]
    trend: list[TrendPoint]
    text: str
    chart_png: bytes


async def build_digest(
    session: AsyncSession,
    district: District,
    scope_street_id: str | None,
    *,
    day: date,
    now: datetime,
    lang: str,
) -> Digest:
    """The digest of local date `day` (yesterday, when sent in the morning) as of `now`.

    `scope_street_id` None is the whole district. The day and month to date are compared with
    the day before and the same days of the previous month; the ranking is month to date.
    """
    tz = district.tz
    scope = Scope.street(scope_street_id) if scope_street_id else Scope.district()
    the_day, month = Period.day(day, tz), Period.month_to_date(day, tz)
    digest = Digest(
        day=day,
        street_id=scope_street_id,
        the_day=await kpi.compute(session, scope, the_day, now=now),
        day_before=await kpi.rates(session, scope, the_day.previous(), now=now),
        month=await kpi.compute(session, scope, month, now=now),
        month_before=await kpi.rates(session, scope, month.month_before(), now=now),
        overdue=await kpi.most_overdue(session, scope, now=now, limit=OVERDUE_SHOWN),
        lanes=await kpi.ranking(session, "lane", month, scope_street_id, now=now),
        departments=await kpi.ranking(session, "department", month, scope_street_id, now=now),
        hotspots=await kpi.hotspots(
            session, scope_street_id, now=now, days=HOTSPOT_DAYS, min_reports=HOTSPOT_MIN_REPORTS
        ),
        trend=await kpi.trend(session, scope, Period.last_days(day, TREND_DAYS, tz), now=now),
        text="",
        chart_png=b"",
    )
    words = _Words(district, lang, scope_street_id)
    # Without a CJK font the chart falls back to English words (see bot.figures.charts).
    latin = _Words(district, "en", scope_street_id).chart()
    return replace(
        digest, text=words.text(digest), chart_png=trend_png(digest.trend, words.chart(), latin)
    )


def yesterday(now: datetime, district: District) -> date:
    """The day a digest read at `now` is about: yesterday, in the district's time."""
    return now.astimezone(district.tz).date() - timedelta(days=1)


@dataclass
class DigestBuilder:
    """Digests of the street scopes a reader may see, each read in a read-only transaction of its
    own (`storage.db.reading`): its queries take a while, and on SQLite a writing transaction
    holds the database's write lock throughout, which would keep residents' reports waiting.
    """

    sessionmaker: async_sessionmaker[AsyncSession]
    district: District
    # One digest per scope and language within a run: a street's supervisors share it.
    _built: dict[tuple[date, str | None, str], Digest] = field(default_factory=dict)

    async def build(
        self, scopes: Sequence[str | None], day: date, lang: str, now: datetime
    ) -> list[Digest]:
        """Each scope's digest of `day` as of `now` (a scope None is the whole district)."""
        async with reading(self.sessionmaker) as session:
            return [await self._digest(session, scope, day, lang, now) for scope in scopes]

    async def _digest(
        self, session: AsyncSession, scope: str | None, day: date, lang: str, now: datetime
    ) -> Digest:
        key = (day, scope, lang)
        if key not in self._built:
            self._built[key] = await build_digest(
                session, self.district, scope, day=day, now=now, lang=lang
            )
        return self._built[key]


def kpi_lines(district: District, lang: str, figures: Kpis, before: Rates) -> list[str]:
    """`figures` against `before`, one line each, worded as in the digest (for /stats)."""
    return _Words(district, lang, None).kpis(figures, before)


def local_date(lang: str, day: date, *, year: bool = False) -> str:
    """A date as the digest writes it: 11月22日 / 22 Nov (with the year when asked)."""
    if normalise_language(lang) == "zh":
        return f"{day.year}年{day.month}月{day.day}日" if year else f"{day.month}月{day.day}日"
    return f"{day.day} {day:%b %Y}" if year else f"{day.day} {day:%b}"


class _Words:
    """The digest in one language."""

    def __init__(self, district: District, lang: str, street_id: str | None) -> None:
        self.district, self.lang = district, normalise_language(lang)
        office = district.street_offices.get(street_id) if street_id else None
        self.scope = district.name(office if office else district, lang)

    def t(self, key: str, **params: object) -> Safe:
        """Catalogue text: Telegram HTML already, so not escaped again when passed on."""
        return Safe(t(self.lang, key, **params))

    def text(self, d: Digest) -> str:
        month = d.month.period
        day_lines = [self.t("digest.day_heading"), *self.kpis(d.the_day, d.day_before)]
        month_lines = [
            self.t("digest.month_heading", start=self.date(month.start), end=self.date(month.end)),
            *self.kpis(d.month, d.month_before),
        ]
        ranking_lines = [
            self.t("digest.ranking_heading"),
            self.ranking("digest.lanes", "digest.lanes_unranked", d.lanes),
            self.ranking("digest.departments", "digest.departments_unranked", d.departments),
        ]
        blocks = [
            self.t("digest.title", scope=self.scope, date=self.date(d.day, year=True)),
            "\n".join(day_lines),
            "\n".join(month_lines),
            self.overdue(d.the_day.overdue, d.overdue),
            "\n".join(ranking_lines),
            self.hotspots(d.hotspots),
        ]
        return "\n\n".join(blocks)

    def kpis(self, k: Kpis, before: Rates) -> list[str]:
        return [
            self.t(
                "kpi.volume",
                received=k.received,
                repeats=k.repeats,
                dispatched=k.dispatched,
                auto=k.dispatched_auto,
                triage=k.dispatched_via_triage,
            ),
            self.rate("kpi.response", k.response, before.response),
            self.rate("kpi.resolution", k.resolution, before.resolution),
            self.rate("kpi.satisfaction", k.satisfaction, before.satisfaction),
            self.t(
                "kpi.outcomes",
                resolved=k.resolved,
                reopened=k.reopened,
                rejected=k.rejected,
                unrated=k.unrated_closed,
            ),
            self.t(
                "kpi.medians",
                accept=self.duration(k.median_accept_s),
                resolve=self.duration(k.median_resolve_s),
            ),
        ]

    def rate(self, key: str, now: Rate, before: Rate) -> str:
        return self.t(
            key,
            rate=self.percent(now.value),
            hits=now.hits,
            total=now.total,
            delta=self.delta(now.value, before.value),
        ).rstrip()

    def percent(self, value: float | None) -> str:
        return self.t("kpi.no_value") if value is None else f"{value:.0%}"

    def delta(self, now: float | None, before: float | None) -> str:
        if now is None or before is None:
            return ""
        points = round((now - before) * 100)
        if points == 0:
            return self.t("kpi.delta_same")
        return self.t("kpi.delta_up" if points > 0 else "kpi.delta_down", points=abs(points))

    def duration(self, seconds: float | None) -> str:
        if seconds is None:
            return self.t("kpi.no_value")
        minutes = round(seconds / 60)
        days, rest = divmod(minutes, 24 * 60)
        hours, minutes = divmod(rest, 60)
        if days:
            return self.t("kpi.duration_days", days=days, hours=hours)
        if hours:
            return self.t("kpi.duration_hours", hours=hours, minutes=minutes)
        return self.t("kpi.duration_minutes", minutes=minutes)

    def date(self, day: date, *, year: bool = False) -> str:
        return local_date(self.lang, day, year=year)

    def overdue(self, count: int, cases: Sequence[OverdueCase]) -> str:
        if not cases:
            return self.t("digest.overdue_none")
        lines: list[str] = [self.t("digest.overdue_heading", count=count)]
        for i, case in enumerate(cases, 1):
            key = (
                "digest.overdue_response" if case.missed == "response" else "digest.overdue_resolve"
            )
            text = self.t(
                key,
                number=case.number,
                lane=self.lane(case.lane_id),
                late=self.duration(case.late_s),
            )
            lines.append(f"{i}. {text}")
        return "\n".join(lines)

    def ranking(self, key: str, unranked: str, ranking: Ranking) -> str:
        if not ranking.best:
            return self.t(unranked)
        return self.t(
            key,
            best=self.ranked(ranking.best, ranking.level),
            worst=self.ranked(ranking.worst, ranking.level),
        )

    def ranked(self, groups: Sequence[Ranked], level: str) -> Safe:
        if not groups:
            return self.t("kpi.no_value")
        names = [
            self.t(
                "digest.rank_item",
                name=self.lane(g.key) if level == "lane" else self.department(g.key),
                score=round(g.score * 100),
            )
            for g in groups
        ]
        return Safe("、".join(names) if self.lang == "zh" else ", ".join(names))

    def hotspots(self, spots: Sequence[Hotspot]) -> str:
        if not spots:
            return self.t("digest.hotspots_none", days=HOTSPOT_DAYS)
        lines: list[str] = [
            self.t("digest.hotspots_heading", days=HOTSPOT_DAYS, min=HOTSPOT_MIN_REPORTS)
        ]
        for spot in spots[:HOTSPOTS_SHOWN]:
            place = (
                self.t("digest.place_near", lane=self.lane(spot.lane_id))
                if spot.lane_id
                else f"{spot.lat:.5f}, {spot.lon:.5f}"
            )
            numbers = ", ".join(spot.numbers[:NUMBERS_SHOWN])
            if len(spot.numbers) > NUMBERS_SHOWN:
                numbers += " …"
            lines.append(
                "· "
                + self.t(
                    "digest.hotspot_line",
                    place=place,
                    reports=spot.reports,
                    kind=category_name(self.lang, self.district, spot.category_id),
                    numbers=numbers,
                )
            )
        if len(spots) > HOTSPOTS_SHOWN:
            lines.append(self.t("digest.hotspots_more", count=len(spots) - HOTSPOTS_SHOWN))
        return "\n".join(lines)

    def lane(self, lane_id: str | None) -> str:
        if lane_id is None:
            return self.t("digest.no_lane")
        lane = self.district.lanes.get(lane_id)
        return self.district.name(lane, self.lang) if lane else lane_id

    def department(self, department_id: str) -> str:
        department = self.district.departments.get(department_id)
        return self.district.name(department, self.lang) if department else department_id

    def chart(self) -> ChartText:
        """The chart's words: plain text, not HTML."""

        def plain(key: str, **params: object) -> str:
            return html.unescape(self.t(key, **params))

        return ChartText(
            title=plain("digest.chart_title", scope=self.scope, days=TREND_DAYS),
            counts=plain("digest.chart_counts"),
            rates=plain("digest.chart_rates"),
            received=plain("digest.chart_received"),
            resolved=plain("digest.chart_resolved"),
            response=plain("digest.chart_response"),
            resolution=plain("digest.chart_resolution"),
            satisfaction=plain("digest.chart_satisfaction"),
        )
