"""Fixtures: a migrated database on each backend, the Telegram emulator, a running bot."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from storage.migrate import upgrade
from tests.private_postgres import PrivatePostgres
from tests.private_postgres import unavailable as pg_unavailable
from tests.private_redis import PrivateRedis

if TYPE_CHECKING:
    from tests.harness import Harness

# Set by pytest_configure, before any test module is imported: the variable's URL, else a
# throwaway server's, else None (and the tests that need it skip, saying why).
PG_URL = os.environ.get("TEST_DATABASE_URL")
REDIS_URL = os.environ.get("TEST_REDIS_URL")
_live: dict[str, str] = {}  # backend -> what serves it, or why it is skipped
_throwaways = contextlib.ExitStack()
_counter = itertools.count()


def _start_postgres() -> str:
    why = pg_unavailable()
    if why is not None:
        raise RuntimeError(why)
    server = PrivatePostgres.create()
    _throwaways.callback(lambda: asyncio.run(server.close()))

    async def up() -> None:
        await server.init()
        await server.start()

    asyncio.run(up())
    return server.url


def _start_redis() -> str:
    server = PrivateRedis()
    _throwaways.callback(server.close)
    server.wait_ready()
    return server.url


def _serve(backend: str, variable: str, url: str | None, start: Callable[[], str]) -> str | None:
    """The URL the tests use for `backend`, noting in _live where it comes from."""
    if url:
        _live[backend] = f"{variable}: {make_url(url)!r}"  # repr hides a password
        return url
    try:
        url = start()
    except (RuntimeError, OSError) as e:
        _live[backend] = f"not tested: {variable} is unset and no throwaway server started: {e}"
        return None
    _live[backend] = f"throwaway server ({variable} is unset): {url}"
    return url


def pytest_configure(config: pytest.Config) -> None:
    """Without TEST_DATABASE_URL / TEST_REDIS_URL, every backend is still tested: against a
    server of this run's own, from a package in the dev extras."""
    global PG_URL, REDIS_URL
    PG_URL = _serve("PostgreSQL", "TEST_DATABASE_URL", PG_URL, _start_postgres)
    REDIS_URL = _serve("Redis", "TEST_REDIS_URL", REDIS_URL, _start_redis)


def pytest_unconfigure(config: pytest.Config) -> None:
    _throwaways.close()


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [f"{backend}: {how}" for backend, how in _live.items()]


def _no_pg_reason() -> str:
    return f"PostgreSQL: {_live.get('PostgreSQL', 'TEST_DATABASE_URL is not set')}"


def backends() -> list[object]:
    """For fixtures in test modules (imported after pytest_configure)."""
    return [
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.skipif(not PG_URL, reason=_no_pg_reason())),
    ]


_pg_template: str | None = None


async def _pg_database() -> str:
    """A fresh database cloned from a migrated template (made once per test run)."""
    global _pg_template
    assert PG_URL is not None
    base = make_url(PG_URL)
    admin = create_async_engine(base, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            if _pg_template is None:
                name = f"suipai_tpl_{os.getpid()}"
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
                await upgrade(base.set(database=name).render_as_string(hide_password=False))
                _pg_template = name
            db = f"suipai_t_{os.getpid()}_{next(_counter)}"
            await conn.execute(text(f'CREATE DATABASE "{db}" TEMPLATE "{_pg_template}"'))
    finally:
        await admin.dispose()
    return base.set(database=db).render_as_string(hide_password=False)


async def _drop_pg_database(url: str) -> None:
    assert PG_URL is not None
    admin = create_async_engine(make_url(PG_URL), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            name = make_url(url).database
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


# Not backends(): this module is imported before pytest_configure decides PG_URL. The skip is
# made here, so that a test choosing `postgresql` indirectly skips as well.
@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A migrated, empty database: SQLite file, or a fresh PostgreSQL database."""
    if request.param == "postgresql" and not PG_URL:
        pytest.skip(_no_pg_reason())
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'suipai.db'}"
        await upgrade(url)
        yield url
        return
    url = await _pg_database()
    try:
        yield url
    finally:
        await _drop_pg_database(url)


@pytest.fixture
def media_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "media"
    path.mkdir()
    yield path


@pytest.fixture
async def h(database_url: str, media_dir: Path) -> AsyncIterator[Harness]:
    """The bot running against the Telegram emulator, on a fresh database of each backend.

    A module that needs more (a clock set, data loaded) overrides it with a fixture `h` that
    takes this one: `async def h(h: Harness) -> Harness`.
    """
    from tests.harness import running_bot  # aiogram and the whole bot: only where a test runs it

    async with running_bot(database_url, media_dir) as harness:
        yield harness
