"""Bulk loading a `History` into a migrated database: COPY on PostgreSQL, executemany in one
transaction on SQLite. Secondary indexes are dropped first and built again afterwards (as
the migrations define them, plus whatever a benchmark asks for), then statistics are taken."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

import asyncpg
import numpy as np
from sqlalchemy.engine import make_url

from bench.kpi_data import History

CHUNK = 200_000
TABLES = ("people", "roles", "cases", "case_events")
_NULL_INT, _NULL_ACTOR = -1, -2


def _times(seconds: np.ndarray, sqlite: bool) -> list[Any]:
    """UTC seconds as the column stores them: naive ISO text on SQLite, datetimes on PG."""
    missing = np.isnan(seconds)
    us = np.where(missing, 0, np.round(seconds * 1e6)).astype("int64").astype("datetime64[us]")
    if sqlite:
        text = np.char.replace(np.datetime_as_string(us, unit="us"), "T", " ").astype(object)
        text[missing] = None
        return list(text)
    values = us.astype(object)
    values[missing] = None
    return list(values)


def _ints(values: np.ndarray, *nulls: int) -> list[Any]:
    out = values.astype(object)
    for null in nulls:
        out[values == null] = None
    return list(out)


def _texts(values: np.ndarray) -> list[Any]:
    out = values.astype(object)
    out[values == ""] = None
    return list(out)


def columns(history: History, table: str, sqlite: bool) -> dict[str, list[Any]]:
    """The table's columns as lists of Python values (None for NULL)."""
    if table == "people":
        p = history.people
        n = len(p["id"])
        return {
            "id": list(p["id"].tolist()),
            "telegram_id": list(p["telegram_id"].tolist()),
            "name": [None] * n,
            "language": list(p["language"].tolist()),
            "language_chosen": [False] * n,
            "unreachable": [False] * n,
            "banned": [False] * n,
            "created_at": _times(p["created_at"], sqlite),
        }
    if table == "roles":
        r = history.roles
        return {
            "id": list(r["id"].tolist()),
            "person_id": list(r["person_id"].tolist()),
            "role": list(r["role"].tolist()),
            "scope": list(r["scope"].tolist()),
            "created_at": _times(r["created_at"], sqlite),
        }
    if table == "cases":
        c = history.cases
        n = len(c["id"])
        return {
            "id": list(c["id"].tolist()),
            "number": list(c["number"].tolist()),
            "state": list(c["state"].tolist()),
            "source": ["chat"] * n,
            "category_id": _texts(c["category_id"]),
            "lane_id": list(c["lane_id"].tolist()),
            "street_id": list(c["street_id"].tolist()),
            "department_id": _texts(c["department_id"]),
            "assignee_id": _ints(c["assignee_id"], _NULL_INT),
            "lat": list(c["lat"].tolist()),
            "lon": list(c["lon"].tolist()),
            "description": [""] * n,
            "reporter_id": list(c["reporter_id"].tolist()),
            "priority": list(c["priority"].tolist()),
            "rating": _ints(c["rating"], _NULL_INT),
            "created_at": _times(c["created_at"], sqlite),
            "updated_at": _times(c["updated_at"], sqlite),
            "response_due_at": _times(c["response_due_at"], sqlite),
            "resolve_due_at": _times(c["resolve_due_at"], sqlite),
            "closed_at": _times(c["closed_at"], sqlite),
        }
    e = history.events
    return {
        "id": list(e["id"].tolist()),
        "case_id": list(e["case_id"].tolist()),
        "actor_id": _ints(e["actor_id"], _NULL_INT, _NULL_ACTOR),
        "action": list(e["action"].tolist()),
        "data": list(e["data"]),
        "created_at": _times(e["created_at"], sqlite),
    }


def _rows(cols: dict[str, list[Any]]) -> Iterator[list[tuple[Any, ...]]]:
    names = list(cols)
    n = len(cols[names[0]])
    for start in range(0, n, CHUNK):
        yield list(zip(*(cols[k][start : start + CHUNK] for k in names), strict=True))


# --------------------------------------------------------------------------- SQLite


def load_sqlite(path: str, history: History, extra_indexes: Sequence[str] = ()) -> None:
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=OFF")
        con.execute("PRAGMA cache_size=-1000000")
        indexes = [
            sql
            for (sql,) in con.execute(
                "SELECT sql FROM sqlite_master WHERE type='index' AND sql IS NOT NULL"
                f" AND tbl_name IN ({','.join('?' * len(TABLES))})",
                TABLES,
            )
        ]
        names = [
            name
            for (name,) in con.execute(
                "SELECT name FROM sqlite_master WHERE type='index' AND sql IS NOT NULL"
                f" AND tbl_name IN ({','.join('?' * len(TABLES))})",
                TABLES,
            )
        ]
        con.execute("BEGIN")
        for name in names:
            con.execute(f'DROP INDEX "{name}"')
        for table in TABLES:
            cols = columns(history, table, sqlite=True)
            sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
            for chunk in _rows(cols):
                con.executemany(sql, chunk)
        for sql in [*indexes, *extra_indexes]:
            con.execute(sql)
        con.execute("COMMIT")
        con.execute("ANALYZE")
    finally:
        con.close()


def sqlite_indexes(path: str) -> list[str]:
    con = sqlite3.connect(path)
    try:
        return [
            f"{table}: {sql.split(' ON ', 1)[1] if ' ON ' in sql else name}"
            for name, table, sql in con.execute(
                "SELECT name, tbl_name, sql FROM sqlite_master WHERE type='index'"
                " AND tbl_name IN ('cases', 'case_events') AND sql IS NOT NULL ORDER BY name"
            )
        ]
    finally:
        con.close()


# --------------------------------------------------------------------------- PostgreSQL


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def load_postgres(url: str, history: History, extra_indexes: Sequence[str] = ()) -> None:
    conn = await asyncpg.connect(_dsn(url))
    try:
        await conn.execute("SET session_replication_role = replica")  # no FK triggers
        await conn.execute("SET maintenance_work_mem = '512MB'")
        await conn.execute("SET synchronous_commit = off")
        rows = await conn.fetch(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i"
            " LEFT JOIN pg_constraint c ON c.conname = i.indexname"
            " WHERE i.schemaname = 'public' AND i.tablename = ANY($1::text[])"
            " AND c.conname IS NULL",
            list(TABLES),
        )
        for row in rows:
            await conn.execute(f'DROP INDEX "{row["indexname"]}"')
        for table in TABLES:
            cols = columns(history, table, sqlite=False)
            for chunk in _rows(cols):
                await conn.copy_records_to_table(table, records=chunk, columns=list(cols))
        for sql in [*(row["indexdef"] for row in rows), *extra_indexes]:
            await conn.execute(sql)
        for table in TABLES:
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                f" (SELECT max(id) FROM {table}))"
            )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def postgres_indexes(url: str) -> list[str]:
    conn = await asyncpg.connect(_dsn(url))
    try:
        rows = await conn.fetch(
            "SELECT tablename, indexdef FROM pg_indexes WHERE schemaname = 'public'"
            " AND tablename IN ('cases', 'case_events') ORDER BY indexname"
        )
        return [f"{r['tablename']}: {r['indexdef'].split(' USING ', 1)[-1]}" for r in rows]
    finally:
        await conn.close()
