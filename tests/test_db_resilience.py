"""Which failures mean "the database went away", how long the bot waits for it, and the
settings every PostgreSQL connection gets."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

from storage.db import connection_lost, make_engine, reconnect_delays


class _DriverError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def test_delays_double_up_to_the_longest_and_stay_within_the_budget() -> None:
    assert list(reconnect_delays(3.0)) == [0.1, 0.2, 0.4, 0.8]
    delays = list(reconnect_delays(120.0))
    assert delays[:6] == [0.1, 0.2, 0.4, 0.8, 1.6, 2.0]
    assert max(delays) == 2.0
    assert 118.0 < sum(delays) <= 120.0
    assert list(reconnect_delays(0)) == []


@pytest.mark.parametrize(
    "exc",
    [
        DBAPIError("select 1", None, Exception("closed"), connection_invalidated=True),
        ConnectionRefusedError(111, "Connect call failed"),
        ConnectionResetError(),
        _DriverError("57P01"),  # terminating connection due to administrator command
        _DriverError("57P03"),  # the database system is starting up
        _DriverError("08006"),  # connection failure
        DBAPIError("select 1", None, _DriverError("57P01")),  # wrapped by SQLAlchemy
    ],
)
def test_lost_connections_are_recognised(exc: BaseException) -> None:
    assert connection_lost(exc)


def test_a_cause_deep_in_the_chain_counts() -> None:
    try:
        try:
            raise ConnectionRefusedError(111, "refused")
        except ConnectionRefusedError as inner:
            raise RuntimeError("while saving the draft") from inner
    except RuntimeError as outer:
        assert connection_lost(outer)


@pytest.mark.parametrize(
    "exc",
    [
        IntegrityError("insert", None, _DriverError("23505")),  # a duplicate: not transient
        DBAPIError("select x", None, _DriverError("42703")),  # a wrong column
        ValueError("bad input"),
        FileNotFoundError(2, "photo"),  # an OSError that is not a connection
    ],
)
def test_other_failures_are_not_retried(exc: BaseException) -> None:
    assert not connection_lost(exc)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_postgresql_sessions_plan_each_statement_without_jit(database_url: str) -> None:
    """Settings the KPI benchmark measured (bench/RESULTS.md, section 4), on every connection."""
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            assert await conn.scalar(text("SHOW jit")) == "off"
            assert await conn.scalar(text("SHOW plan_cache_mode")) == "force_custom_plan"
    finally:
        await engine.dispose()
