"""Engine and session factory, with the per-backend settings that make both behave alike."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine; on SQLite every transaction takes the write lock up front.

    SQLite's default deferred transactions fail with "database is locked" when two readers try
    to become writers at once; BEGIN IMMEDIATE makes them queue on the busy timeout instead.
    """
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    # The KPI queries are large joins with per-case subqueries: JIT compilation costs more than
    # it saves on them, and asyncpg's prepared statements would settle on generic plans that
    # ignore the window's dates (bench/RESULTS.md, section 4). Short statements lose nothing.
    settings = {"jit": "off", "plan_cache_mode": "force_custom_plan"}
    connect_args = kwargs.pop("connect_args", {})
    connect_args["server_settings"] = {**settings, **connect_args.get("server_settings", {})}
    return create_async_engine(url, pool_pre_ping=True, connect_args=connect_args, **kwargs)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


# SQLSTATE classes that mean the server went away, not that the statement was wrong:
# 08 connection exception; 57P01-57P03 admin/crash shutdown, cannot connect now (restarting).
_LOST_SQLSTATES = ("08", "57P01", "57P02", "57P03")


def connection_lost(exc: BaseException) -> bool:
    """True when `exc` (or what caused it) says the database connection went away.

    Such a failure rolled back the whole transaction, so the work can simply be done again
    once the server is back. Anything else (a constraint, a bad statement) is not retried.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, ConnectionError):  # refused or reset while (re)connecting
            return True
        sqlstate = getattr(current, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(_LOST_SQLSTATES):
            return True
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__
    return False


def reconnect_delays(
    budget_s: float, *, first: float = 0.1, longest: float = 2.0
) -> Iterator[float]:
    """Pauses between attempts while the database is away: doubling from `first` to
    `longest`, until together they would exceed `budget_s`."""
    spent, delay = 0.0, first
    while spent + delay <= budget_s:
        yield delay
        spent += delay
        delay = min(longest, delay * 2)
