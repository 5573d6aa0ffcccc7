"""Where the KPI benchmark's time goes: every SQL statement of one digest and one district
month, timed and named by the function that issued it, and the plan of the slowest.

`python -m bench.kpi_profile [--backend postgresql] [--cases 1000000] [--top 6]
[--index SQL ...] [--pg-set jit=off ...] [--median-one-pass] [--out PATH]` loads the same
synthetic history as `--only kpi` into a fresh database (plus any candidate index given with
--index, and any database setting given with --pg-set), runs the digest once to warm up, then
once more and the district month once with a timer on every statement, prints the statements
by total time and writes their SQL and plans (EXPLAIN ANALYZE on PostgreSQL, EXPLAIN QUERY
PLAN on SQLite) to --out (default bench/out/kpi-profile-BACKEND.txt). --median-one-pass
measures a proposal: the medians read in one pass instead of `kpi_sql._median`'s two.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import inspect
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import event, select

from bench.databases import _admin, drop_template, fresh_database
from bench.kpi_data import generate
from bench.kpi_load import load_postgres, load_sqlite
from bench.kpis import DAY, MONTH, NOW, STREET, district
from bot.figures import kpi, kpi_sql
from bot.figures.digest import build_digest
from storage.db import make_engine, make_sessionmaker

HERE = Path(__file__).resolve().parent


@dataclass
class Statement:
    where: str
    sql: str
    params: Any
    seconds: list[float] = field(default_factory=list)


_stack: list[str] = []


def _caller() -> str:
    """kpi_sql.response ← kpi.ranking: who issued the statement (innermost first)."""
    return " ← ".join(dict.fromkeys(reversed(_stack))) or "digest (directly)"


def _label(module: Any, name: str, label: str) -> None:
    """Wrap `module.name` (a coroutine function) so the statements it issues carry `label`.
    The SQL runs in SQLAlchemy's greenlet, whose stack does not show the async callers."""
    fn = getattr(module, name)

    @functools.wraps(fn)
    async def labelled(*args: Any, **kwargs: Any) -> Any:
        _stack.append(label)
        try:
            return await fn(*args, **kwargs)
        finally:
            _stack.pop()

    setattr(module, name, labelled)


def label_kpi_functions() -> None:
    for name, fn in list(vars(kpi_sql).items()):
        if inspect.iscoroutinefunction(fn) and name != "_tally":
            _label(kpi_sql, name, f"kpi_sql.{name}")
    for name in ("compute", "rates", "trend", "most_overdue", "ranking", "hotspots"):
        _label(kpi, name, f"kpi.{name}")


async def _median_one_pass(session: Any, stmt: Any) -> float | None:
    """A proposal, measured here only (--median-one-pass): the median of what `stmt` selects
    read in one pass and taken in Python, where `kpi_sql._median` runs the query twice (a
    COUNT, then ORDER BY … OFFSET n/2). Same result, rounded the same way."""
    inner = stmt.subquery()
    rows = await session.scalars(select(inner.c[0]).where(inner.c[0].is_not(None)))
    values = sorted(float(v) for v in rows.all())
    n = len(values)
    if n == 0:
        return None
    middle = values[(n - 1) // 2 : n // 2 + 1]
    return round(sum(middle) / len(middle), 3)


class Timer:
    """Times each statement the engine runs while `phase` is set."""

    def __init__(self) -> None:
        self.phase: str | None = None
        self.by_phase: dict[str, dict[tuple[str, str], Statement]] = defaultdict(dict)
        self._started: list[float] = []

    def attach(self, sync_engine: Any) -> None:
        event.listen(sync_engine, "before_cursor_execute", self._before)
        event.listen(sync_engine, "after_cursor_execute", self._after)

    def _before(self, conn: Any, cursor: Any, sql: str, params: Any, ctx: Any, many: bool) -> None:
        self._started.append(time.perf_counter())

    def _after(self, conn: Any, cursor: Any, sql: str, params: Any, ctx: Any, many: bool) -> None:
        took = time.perf_counter() - self._started.pop()
        if self.phase is None:
            return
        where = _caller()
        key = (where, sql)
        found = self.by_phase[self.phase].setdefault(key, Statement(where, sql, params))
        if took > max(found.seconds, default=0.0):
            found.params = params  # the plan shown is the slowest run's
        found.seconds.append(took)


async def profile(args: argparse.Namespace) -> list[str]:
    workdir: Path = args.workdir
    place = district(workdir)
    history = generate(place, args.cases, NOW)
    lines: list[str] = []
    try:
        async with fresh_database(args.backend, workdir) as url:
            started = time.perf_counter()
            if args.backend == "sqlite":
                load_sqlite(url.split("///", 1)[1], history, args.index)
            else:
                await load_postgres(url, history, args.index)
            print(f"loaded {args.cases:,} cases in {time.perf_counter() - started:.0f} s")
            for setting in args.pg_set:
                name, value = setting.split("=", 1)
                database = url.rsplit("/", 1)[1]
                await _admin(f'ALTER DATABASE "{database}" SET {name} = {value}')
                lines.append(f"ALTER DATABASE … SET {name} = {value}")
            if args.median_one_pass:
                kpi_sql._median = _median_one_pass  # type: ignore[assignment]
                lines.append("kpi_sql._median replaced by a one-pass median (proposal)")
            label_kpi_functions()
            engine = make_engine(url)
            timer = Timer()
            timer.attach(engine.sync_engine)
            try:
                async with make_sessionmaker(engine)() as session:
                    month = kpi.Period(*MONTH, place.tz)

                    async def digest() -> None:
                        await build_digest(session, place, STREET, day=DAY, now=NOW, lang="zh")

                    async def district_month() -> None:
                        await kpi.compute(session, kpi.Scope.district(), month, now=NOW)

                    await digest()  # warm-up: fonts, compiled statements, cache
                    for phase, fn in (("digest", digest), ("district month", district_month)):
                        timer.phase = phase
                        started = time.perf_counter()
                        await fn()
                        total = time.perf_counter() - started
                        timer.phase = None
                        lines += _report(phase, total, timer.by_phase[phase], args.top)
                    lines += ["", "=" * 78, "Plans of the slowest statements", "=" * 78]
                    async with engine.connect() as conn:
                        for phase, statements in timer.by_phase.items():
                            ranked = sorted(statements.values(), key=lambda s: -sum(s.seconds))
                            for s in ranked[: args.top]:
                                lines += await _plan(conn, args.backend, phase, s)
            finally:
                await engine.dispose()
    finally:
        if args.backend == "postgresql":
            await drop_template()
    return lines


def _report(
    phase: str, total: float, statements: dict[tuple[str, str], Statement], top: int
) -> list[str]:
    in_sql = sum(sum(s.seconds) for s in statements.values())
    runs = sum(len(s.seconds) for s in statements.values())
    head = (
        f"{phase}: {1000 * total:,.0f} ms, of which {1000 * in_sql:,.0f} ms in {runs} SQL"
        f" statements ({in_sql / total:.0%})"
    )
    lines = ["", head]
    ranked = sorted(statements.values(), key=lambda s: -sum(s.seconds))
    for s in ranked[: max(top, 12)]:
        spent = sum(s.seconds)
        lines.append(
            f"  {1000 * spent:9,.0f} ms {spent / total:5.1%}  ×{len(s.seconds):<2} {s.where}"
        )
    print("\n".join(lines), flush=True)
    return lines


async def _plan(conn: Any, backend: str, phase: str, s: Statement) -> list[str]:
    explain = "EXPLAIN (ANALYZE, BUFFERS) " if backend == "postgresql" else "EXPLAIN QUERY PLAN "
    head = f"--- {phase}: {s.where}: {1000 * sum(s.seconds):,.0f} ms in {len(s.seconds)} run(s)"
    try:
        result = await conn.exec_driver_sql(explain + s.sql, s.params)
        rows = result.all()
        plan = [" | ".join(str(c) for c in row) for row in rows]
    except Exception as exc:  # a plan we cannot get is reported, not fatal
        plan = [f"(no plan: {type(exc).__name__}: {exc})"]
    return ["", head, s.sql, f"params: {s.params!r}", *plan]


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.kpi_profile", description=__doc__)
    p.add_argument("--backend", default="postgresql", choices=("sqlite", "postgresql"))
    p.add_argument("--cases", type=int, default=1_000_000)
    p.add_argument("--top", type=int, default=6, help="plans of this many slowest statements")
    p.add_argument("--index", action="append", default=[], help="a candidate CREATE INDEX")
    p.add_argument(
        "--pg-set", action="append", default=[], help="NAME=VALUE for the database, e.g. jit=off"
    )
    p.add_argument(
        "--median-one-pass",
        action="store_true",
        help="measure the proposed one-pass median in place of kpi_sql._median",
    )
    p.add_argument("--out", type=Path)
    p.add_argument("--workdir", type=Path, default=HERE / "out")
    args = p.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    lines = asyncio.run(profile(args))
    out = args.out or args.workdir / f"kpi-profile-{args.backend}.txt"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"plans in {out}")


if __name__ == "__main__":
    main()
