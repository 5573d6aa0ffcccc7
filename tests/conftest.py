"""Fixtures: a migrated database on each backend, the Telegram emulator, a running bot."""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from storage.migrate import upgrade

PG_URL = os.environ.get("TEST_DATABASE_URL")
REDIS_URL = os.environ.get("TEST_REDIS_URL")
_counter = itertools.count()


def backends() -> list[object]:
    return [
        "sqlite",
        pytest.param(
            "postgresql",
            marks=pytest.mark.skipif(
                not PG_URL, reason="TEST_DATABASE_URL is not set: PostgreSQL tests skipped"
            ),
        ),
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


@pytest.fixture(params=backends())
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A migrated, empty database: SQLite file, or a fresh PostgreSQL database."""
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
