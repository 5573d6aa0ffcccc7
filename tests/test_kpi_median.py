"""The KPIs' median, computed by the database (PostgreSQL) or from one read (SQLite)."""

from __future__ import annotations

import random
import statistics

import pytest
from sqlalchemy import Float, column, insert, select, table, text

from bot.figures.kpi_sql import _median
from storage.db import make_engine, make_sessionmaker


def durations(seed: int, n: int) -> list[float | None]:
    rng = random.Random(seed)
    # Seconds with milliseconds, as durations between timestamps are; some rows have none.
    return [None if rng.random() < 0.1 else round(rng.uniform(0, 90_000), 3) for _ in range(n)]


@pytest.mark.parametrize(("seed", "n"), [(1, 1), (2, 2), (3, 7), (4, 10), (5, 501), (6, 1000)])
async def test_the_median_is_the_middle_value_or_the_mean_of_the_middle_two(
    database_url: str, seed: int, n: int
) -> None:
    rows = durations(seed, n)
    found = await median_of(database_url, rows)
    present = [v for v in rows if v is not None]
    expected = round(statistics.median(present), 3) if present else None
    assert found == pytest.approx(expected, abs=0.0011)


async def test_no_values_no_median(database_url: str) -> None:
    assert await median_of(database_url, []) is None
    assert await median_of(database_url, [None, None]) is None


async def median_of(database_url: str, rows: list[float | None]) -> float | None:
    """`_median` over a temporary table holding `rows`."""
    durations = table("durations", column("seconds", Float))
    engine = make_engine(database_url)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            await session.execute(
                text("CREATE TEMPORARY TABLE durations (seconds DOUBLE PRECISION)")
            )
            if rows:
                await session.execute(insert(durations), [{"seconds": v} for v in rows])
            return await _median(session, select(durations.c.seconds))
    finally:
        await engine.dispose()
