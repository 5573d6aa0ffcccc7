"""Fresh, migrated databases for one benchmark: a SQLite file, or a PostgreSQL database cloned
from a template migrated once per run. Only ever on this machine."""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from storage.migrate import upgrade

DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
BACKENDS = ("sqlite", "postgresql")

_counter = itertools.count()
_template: str | None = None


def pg_admin_url() -> URL:
    """BENCH_DATABASE_URL, else TEST_DATABASE_URL, else the local default; local hosts only."""
    raw = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    url = make_url(raw or DEFAULT_PG_URL)
    if (url.host or "127.0.0.1") not in LOCAL_HOSTS:
        raise SystemExit(f"benchmarks only talk to this machine; {url.host} is not local")
    return url


async def postgres_version() -> str | None:
    """The server's version, or None when PostgreSQL cannot be reached."""
    engine = create_async_engine(pg_admin_url())
    try:
        async with engine.connect() as conn:
            return str(await conn.scalar(text("SHOW server_version")))
    except Exception:  # any failure means "not available"
        return None
    finally:
        await engine.dispose()


def _url(base: URL, database: str) -> str:
    return base.set(database=database).render_as_string(hide_password=False)


async def _admin(statement: str) -> None:
    engine = create_async_engine(pg_admin_url(), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def _pg_template() -> str:
    global _template
    if _template is None:
        name = f"suipai_bench_tpl_{os.getpid()}"
        await _admin(f'DROP DATABASE IF EXISTS "{name}"')
        await _admin(f'CREATE DATABASE "{name}"')
        await upgrade(_url(pg_admin_url(), name))
        _template = name
    return _template


async def drop_template() -> None:
    global _template
    if _template is not None:
        await _admin(f'DROP DATABASE IF EXISTS "{_template}" WITH (FORCE)')
        _template = None


def _remove_sqlite(path: Path) -> None:
    """The database file and its -wal and -shm companions."""
    for file in path.parent.glob(f"{path.name}*"):
        file.unlink()


@asynccontextmanager
async def fresh_database(backend: str, workdir: Path) -> AsyncIterator[str]:
    """A migrated, empty database URL, removed afterwards."""
    n = next(_counter)
    if backend == "sqlite":
        path = workdir / f"bench_{os.getpid()}_{n}.db"
        _remove_sqlite(path)
        url = f"sqlite+aiosqlite:///{path}"
        await upgrade(url)
        try:
            yield url
        finally:
            _remove_sqlite(path)
        return
    name = f"suipai_bench_{os.getpid()}_{n}"
    await _admin(f'CREATE DATABASE "{name}" TEMPLATE "{await _pg_template()}"')
    try:
        yield _url(pg_admin_url(), name)
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
