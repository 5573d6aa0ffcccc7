"""Engine and session factory, with the per-backend settings that make both behave alike."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

log = logging.getLogger(__name__)
_T = TypeVar("_T")
# The execution option `reading` sets on its connection: the transaction will only read.
READS_ONLY = "suipai_reads_only"


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
            # A transaction that only reads (`reading`) is deferred: in WAL mode it reads a
            # snapshot and holds no lock a writer would have to wait for.
            reads_only = conn.get_execution_options().get(READS_ONLY, False)
            conn.exec_driver_sql("BEGIN" if reads_only else "BEGIN IMMEDIATE")

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


@asynccontextmanager
async def reading(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session for long reads (an export, a digest), in a read-only transaction of its own.

    Writers go on meanwhile: on SQLite every other transaction takes the write lock up front,
    and one that read a year of cases would keep residents' reports waiting. It reads one
    snapshot throughout (PostgreSQL: REPEATABLE READ), so its figures agree with each other.
    """
    async with sessionmaker() as session:
        postgresql = session.get_bind().dialect.name == "postgresql"
        options: dict[str, Any] = (
            {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
            if postgresql
            else {READS_ONLY: True}
        )
        await session.connection(execution_options=options)
        yield session


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


async def while_reachable(
    attempt: Callable[[], Awaitable[_T]],
    budget_s: float,
    what: str,
    before_retry: Callable[[], Awaitable[None]] | None = None,
) -> _T:
    """`attempt()`, made again while it fails because the database went away, for up to
    `budget_s` seconds of pauses; any other failure, or one past the budget, is raised."""
    delays = reconnect_delays(budget_s)
    while True:
        try:
            return await attempt()
        except Exception as exc:
            if not connection_lost(exc) or (delay := next(delays, None)) is None:
                raise
            log.warning("database connection lost; %s again in %.1f s", what, delay)
            await asyncio.sleep(delay)
            if before_retry is not None:
                await before_retry()


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
