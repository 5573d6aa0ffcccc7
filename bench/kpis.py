"""Benchmark 4, KPIs and the digest over a district's history (1,000,000 cases by default).

Times one supervisor's daily digest (`bot.figures.digest.build_digest`: the day, the day before, the
month to date and the same days of last month, most overdue, rankings, hotspots, 14-day trend
and its chart) and the district's KPIs for the last full month (`bot.figures.kpi.compute`). Each
against a bare query that reads the same rows once (COUNT of the events in the window), in
the same database, run first so that both find the rows in the cache. The digest is the best
of two runs (the first also loads fonts and compiles statements); the month is run once.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bench.databases import fresh_database
from bench.kpi_data import History, generate
from bench.kpi_load import load_postgres, load_sqlite, postgres_indexes, sqlite_indexes
from bench.report import Results, Row
from bench.synthetic_district import write_district
from bot.domain.district import District, load_district
from bot.figures import kpi
from bot.figures.digest import build_digest
from storage.db import make_engine, make_sessionmaker

SECTION = "4 KPIs"
NOW = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # 09:00 in Beijing: the morning digest
DAY = date(2026, 11, 22)
MONTH = (date(2026, 10, 1), date(2026, 10, 31))
STREET = "S00"
LANES, STREETS = 2000, 40

EVENTS_IN = text("SELECT count(*) FROM case_events WHERE created_at >= :lo AND created_at < :hi")
STREET_EVENTS_IN = text(
    "SELECT count(*) FROM case_events e JOIN cases c ON c.id = e.case_id"
    " WHERE c.street_id = :street AND e.created_at >= :lo AND e.created_at < :hi"
)


@dataclass(frozen=True)
class Timings:
    digest_s: float
    digest_base_s: float
    month_s: float
    month_base_s: float
    indexes: list[str]


def district(workdir: Path) -> District:
    return load_district(write_district(workdir / "kpi-district", LANES, STREETS).path)


async def _best(fn: Callable[[], Awaitable[Any]], rounds: int = 2) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        await fn()
        best = min(best, time.perf_counter() - started)
    return best


def _bind(value: datetime, sqlite: bool) -> Any:
    # Raw SQL: give each backend the timestamp as its column stores it.
    return value.replace(tzinfo=None).isoformat(" ") if sqlite else value


async def measure(url: str, place: District) -> Timings:
    sqlite = url.startswith("sqlite")
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session:
            month = kpi.Period(*MONTH, place.tz)
            digest_month = kpi.Period.month_to_date(DAY, place.tz)

            async def digest() -> None:
                await build_digest(session, place, STREET, day=DAY, now=NOW, lang="zh")

            async def digest_base() -> None:
                lo, hi = digest_month.bounds()
                params = {"street": STREET, "lo": _bind(lo, sqlite), "hi": _bind(hi, sqlite)}
                await session.scalar(STREET_EVENTS_IN, params)

            async def district_month() -> None:
                await kpi.compute(session, kpi.Scope.district(), month, now=NOW)

            async def month_base() -> None:
                lo, hi = month.bounds()
                await session.scalar(EVENTS_IN, {"lo": _bind(lo, sqlite), "hi": _bind(hi, sqlite)})

            # The bare counts run first, so both sides find the same rows in the cache.
            digest_base_s = await _best(digest_base)
            month_base_s = await _best(month_base)
            timings = Timings(
                digest_s=await _best(digest),
                digest_base_s=digest_base_s,
                month_s=await _best(district_month, rounds=1),
                month_base_s=month_base_s,
                indexes=[],
            )
    finally:
        await engine.dispose()
    found = sqlite_indexes(url.split("///", 1)[1]) if sqlite else await postgres_indexes(url)
    return Timings(**{**timings.__dict__, "indexes": found})


async def load(url: str, history: History) -> float:
    started = time.perf_counter()
    if url.startswith("sqlite"):
        load_sqlite(url.split("///", 1)[1], history)
    else:
        await load_postgres(url, history)
    return time.perf_counter() - started


async def bench_kpis(results: Results, workdir: Path, *, backends: list[str], cases: int) -> None:
    place = district(workdir)
    started = time.perf_counter()
    history = generate(place, cases, NOW)
    events = len(history.events["id"])
    print(f"  KPIs: {cases:,} cases, {events:,} events in {time.perf_counter() - started:.0f} s")
    for backend in backends:
        async with fresh_database(backend, workdir) as url:
            took = await load(url, history)
            print(f"  KPIs: loaded into {backend} in {took:.0f} s", flush=True)
            t = await measure(url, place)
        subject = f"{cases:,} cases ({events:,} events), {backend}"
        results.add(
            Row(
                SECTION,
                subject,
                f"one supervisor's digest ({STREET}, {DAY})",
                1000 * t.digest_s,
                "ms",
                "COUNT of the street's events, month to date",
                1000 * t.digest_base_s,
                "text + chart",
            ),
            Row(
                SECTION,
                subject,
                "district KPIs for a month (Oct 2026)",
                1000 * t.month_s,
                "ms",
                "COUNT of the month's events",
                1000 * t.month_base_s,
            ),
        )
        results.note(
            SECTION, f"{backend} indexes on cases and case_events: " + "; ".join(t.indexes)
        )
    results.how[SECTION] = "python -m bench --only kpi [--cases 1000000] [--backends ...]"
