"""The KPIs of a known week, worked out by hand, on SQLite and PostgreSQL.

The cases (tests/casebook.py; local times, Sunday 22 November is "the day", now is Monday 08:00;
response limit 24 h and fix limit 7 days from dispatch unless said):

    A  CW-001  22 09:00 in, accepted 10:00, resolved 15:00, rated 5, closed
    B  CW-001  21 23:50 in, accepted 22 00:10 (across midnight), resolved 12:00, rated 4
    C  CW-002  20 10:00 in, accepted 20 11:00, resolved 22 09:00, rated 2 → reopened 10:00,
               resolved again 18:00, not rated yet
    D  CW-002  18 10:00 in, resolved 19 10:00, closed unrated 22 10:00
    E  CW-003  22 11:00 in, rejected 12:00
    F  CW-001  22 14:00 a repeat report of A (duplicate)
    G  CW-003  20 08:00 in, never answered (response due 21 08:00)
    H  CW-004  21 09:00 in, accepted 22 10:00, one hour after its response deadline
    I  CW-004  14 10:00 in via triage, dispatched 11:00, accepted 12:00, fix due 21 11:00
    J  CW-005  22 07:00 in via triage, dispatched 08:00 to 环卫 (2 h / 12 h), accepted 09:00,
               resolved 21:00, one hour late
    K  CW-005  22 10:00 in, whistled 10:30 (城管), reported for duty 11:00
    L  CW-001  22 16:00 in, withdrawn 17:00
    M  SLT-001 (三里屯) 22 09:00 in, accepted 09:30
    N  CW-003  21 12:00 in, withdrawn 22 11:00, an hour before its response deadline
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from bot.figures.kpi import Period, Rate, Scope, compute, hotspots, most_overdue, ranking, trend
from storage.db import make_engine, make_sessionmaker
from tests.casebook import DAY, NOW, TZ, Casebook, at, chaowai_week

D = Period.day(DAY, TZ)
HOUR = 3600.0


@pytest.fixture
async def week(database_url: str) -> AsyncIterator[tuple[AsyncSession, Casebook]]:
    engine = make_engine(database_url)
    async with make_sessionmaker(engine)() as session:
        book = await chaowai_week(session)
        await session.commit()
        yield session, book
    await engine.dispose()


async def test_the_day_on_chaowai(week: tuple[AsyncSession, Casebook]) -> None:
    session, _ = week
    k = await compute(session, Scope.street("chaowai"), D, now=NOW)
    # New reports of the day: A E J K L (B came the evening before; F repeats A).
    assert k.received == 5
    assert k.repeats == 1
    # First dispatched that day: A E K L straight away, J after triage.
    assert (k.dispatched, k.dispatched_auto, k.dispatched_via_triage) == (5, 4, 1)
    # First accepted that day: A (1 h after dispatch), B (20 min), H (25 h), J (1 h).
    assert k.accepted == 4
    assert k.median_accept_s == HOUR
    # In time: A, B, J accepted, E turned down, K whistled; missed: H (due 09:00).
    # N's deadline fell that day too, but it was withdrawn before it: not judged.
    assert k.response == Rate(5, 6)
    # Standing fixes in time: A, B, C's second; J's deadline (20:00) passed unfixed.
    assert k.resolution == Rate(3, 4)
    assert k.resolved == 4  # A B C J
    # From report to standing fix: A 6 h, B 12 h 10 min, J 14 h, C 56 h.
    assert k.median_resolve_s == (12 * HOUR + 600 + 14 * HOUR) / 2
    # Ratings that day: A 5, B 4, C 2; D closed without one and is counted apart.
    assert k.satisfaction == Rate(2, 3)
    assert k.unrated_closed == 1
    assert (k.reopened, k.rejected, k.withdrawn) == (1, 1, 2)
    # Now: G unanswered since 21 08:00, I unfixed since 21 11:00.
    assert (k.overdue, k.overdue_unanswered) == (2, 1)


async def test_a_case_across_midnight_counts_on_the_local_day(
    week: tuple[AsyncSession, Casebook],
) -> None:
    session, _ = week
    lane = Scope.lane("CW-001")
    saturday = await compute(session, lane, Period.day(DAY - timedelta(days=1), TZ), now=NOW)
    sunday = await compute(session, lane, D, now=NOW)
    # B: reported Saturday 23:50, accepted Sunday 00:10 (both on Saturday in UTC).
    assert (saturday.received, saturday.dispatched, saturday.accepted) == (1, 1, 0)
    assert saturday.response == Rate()
    assert (sunday.received, sunday.accepted) == (2, 2)  # A and L in; A and B accepted
    assert sunday.response == Rate(2, 2)
    assert sunday.repeats == 1


async def test_scopes(week: tuple[AsyncSession, Casebook]) -> None:
    session, book = week
    district = await compute(session, Scope.district(), D, now=NOW)
    assert district.received == 6  # and M on 三里屯
    assert district.response == Rate(6, 7)
    assert district.overdue == 2
    chief = book.cases["A"].assignee_id
    assert chief is not None
    mine = await compute(session, Scope.person(chief), D, now=NOW)
    assert (mine.received, mine.response, mine.satisfaction) == (2, Rate(2, 2), Rate(2, 2))
    environment = await compute(session, Scope.department("huanwei"), D, now=NOW)
    assert (environment.response, environment.resolution) == (Rate(1, 1), Rate(0, 1))
    sanlitun = await compute(session, Scope.street("sanlitun"), D, now=NOW)
    assert (sanlitun.received, sanlitun.response, sanlitun.overdue) == (1, Rate(1, 1), 0)


async def test_figures_are_as_of_now(week: tuple[AsyncSession, Casebook]) -> None:
    session, _ = week
    k = await compute(session, Scope.street("chaowai"), D, now=at(22, 9, 30))
    # By 09:30: B and J answered in time, H's deadline (09:00) passed; A answers at 10:00.
    assert k.response == Rate(2, 3)
    assert k.received == 2  # J (07:00) and A (09:00)
    # C's first fix (09:00) stands at 09:30; the resident reopens it at 10:00.
    assert k.resolution == Rate(1, 1)


async def test_a_deadline_not_yet_come_is_not_judged(
    week: tuple[AsyncSession, Casebook],
) -> None:
    session, book = week
    await book.case("P", at(23, 7), state="dispatched", lane="CW-001")
    await session.commit()
    today = await compute(
        session, Scope.street("chaowai"), Period.day(date(2026, 11, 23), TZ), now=NOW
    )
    assert today.received == 1
    assert today.dispatched == 1
    assert today.response == Rate()  # due Tuesday 07:00
    assert today.response.value is None
    assert today.overdue == 2


async def test_most_overdue_first(week: tuple[AsyncSession, Casebook]) -> None:
    session, book = week
    late = await most_overdue(session, Scope.street("chaowai"), now=NOW)
    assert [(o.number, o.missed, o.late_s) for o in late] == [
        (book.cases["G"].number, "response", 48 * HOUR),
        (book.cases["I"].number, "resolve", 45 * HOUR),
    ]
    assert late[0].lane_id == "CW-003"


async def test_ranking_lanes_and_departments(week: tuple[AsyncSession, Casebook]) -> None:
    session, _ = week
    lanes = await ranking(session, "lane", D, "chaowai", now=NOW, min_cases=1)
    # CW-001 and CW-003 answered everything (CW-001 more cases); CW-005 answered in time but
    # missed J's fix (0.1·1 / 0.55); CW-004 missed H's answer. CW-002 had nothing to answer.
    assert [r.key for r in lanes.best] == ["CW-001", "CW-003"]
    assert [r.key for r in lanes.worst] == ["CW-004", "CW-005"]
    assert lanes.best[0].score == 1.0
    assert lanes.worst[1].score == pytest.approx(0.1 / 0.55)
    assert lanes.unranked == 1
    assert (await ranking(session, "lane", D, "chaowai", now=NOW)).best == []  # < 3 cases each
    departments = await ranking(session, "department", D, "chaowai", now=NOW, min_cases=1)
    assert [r.key for r in departments.best] == ["chengguan"]
    assert [r.key for r in departments.worst] == ["huanwei"]


async def test_hotspots(week: tuple[AsyncSession, Casebook]) -> None:
    session, book = week
    spots = await hotspots(session, "chaowai", now=NOW)
    # A, its repeat F and B within 50 m in 7 days; E (rejected) and L (withdrawn) don't count.
    assert len(spots) == 1
    assert sorted(spots[0].numbers) == sorted(book.cases[k].number for k in "ABF")
    assert spots[0].lane_id == "CW-001"
    assert await hotspots(session, "chaowai", now=NOW, radius_m=10) == []
    assert await hotspots(session, "sanlitun", now=NOW) == []
    assert await hotspots(session, "chaowai", now=NOW + timedelta(days=7)) == []


async def test_trend_has_one_point_a_day(week: tuple[AsyncSession, Casebook]) -> None:
    session, _ = week
    points = await trend(session, Scope.street("chaowai"), Period.last_days(DAY, 14, TZ), now=NOW)
    assert [p.day for p in points][-2:] == [DAY - timedelta(days=1), DAY]
    assert len(points) == 14
    sunday = points[-1]
    assert (sunday.received, sunday.resolved) == (5, 4)
    assert (sunday.response, sunday.resolution, sunday.satisfaction) == (
        Rate(5, 6),
        Rate(3, 4),
        Rate(2, 3),
    )
    # Saturday: H, N and B in; G's answer due 08:00 and I's fix due 11:00 missed.
    saturday = points[-2]
    assert (saturday.received, saturday.response, saturday.resolution) == (
        3,
        Rate(0, 1),
        Rate(0, 1),
    )


def test_periods_are_local_days() -> None:
    lo, hi = D.bounds()
    assert (lo, hi) == (at(22, 0), at(23, 0))
    assert lo.isoformat() == "2026-11-21T16:00:00+00:00"
    month = Period.month_to_date(date(2026, 3, 31), TZ)
    assert (month.start, month.days) == (date(2026, 3, 1), 31)
    assert month.month_before() == Period(date(2026, 2, 1), date(2026, 2, 28), TZ)
    assert D.previous() == Period.day(DAY - timedelta(days=1), TZ)
    with pytest.raises(ValueError, match="before it starts"):
        Period(DAY, DAY - timedelta(days=1), TZ)
