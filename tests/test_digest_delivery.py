"""The daily digest reaching supervisors: through the emulator, once a day however many senders.

The week of tests/casebook.py is in the database; the clock stands at Monday 23 November, so
the digest due is Sunday 22 November's, whose figures tests/test_kpi.py works out by hand.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import time, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func, select

from bot.__main__ import build_parser
from bot.app import app_context, make_bot
from bot.clock import FakeClock
from bot.config import SAMPLE_DISTRICT_DIR, get_settings
from bot.context import AppContext
from bot.domain.district import load_district
from bot.domain.people import grant as grant_role
from bot.i18n import t
from bot.jobs.digests import Digests, due_day
from bot.jobs.scheduler import digests
from storage.db import make_engine, make_sessionmaker
from storage.models import DigestRun, OutboxMessage
from tests.casebook import DAY, NOW, chaowai_week
from tests.harness import Harness, grant, settings_for

SUPERVISOR, ADMIN = 4001, 4002


@pytest.fixture
async def h(h: Harness) -> Harness:
    """The running bot (tests/conftest.py) with the casebook's week in its database."""
    h.clock.set(NOW)  # 08:00 local: the digest time has just come
    async with h.session() as session:
        await chaowai_week(session)
        await session.commit()
    return h


async def runs(h: Harness | AppContext) -> int:
    maker = h.ctx.sessionmaker if isinstance(h, Harness) else h.sessionmaker
    async with maker() as session:
        return int(await session.scalar(select(func.count()).select_from(DigestRun)) or 0)


async def test_a_supervisor_gets_the_chart_and_the_figures_of_yesterday(h: Harness) -> None:
    await grant(h, SUPERVISOR, "supervisor", "chaowai", "street")
    supervisor = h.emulator.user(SUPERVISOR, first_name="陈静", language_code="zh-hans")
    await supervisor.send_command("/start")
    await supervisor.expect(contains="随拍即办")

    assert await digests(h.ctx) == 1
    chart = await supervisor.expect(predicate=lambda m: m.method == "sendPhoto")
    assert chart.caption == "朝外街道 · 随拍即办日报\n2026年11月22日"
    assert chart.photo_bytes is not None
    image = Image.open(io.BytesIO(chart.photo_bytes))
    assert image.width >= 800 and image.height >= 400  # readable on a phone
    text = await supervisor.expect(
        contains="受理 5 件，重复报告 1 件；派单 5 件（自动 4，经分拣 1）"
    )
    body = text.text or ""
    assert "响应率 83%（5/6）↑83个百分点" in body
    assert "解决率 75%（3/4）↑75个百分点" in body
    assert "满意率 67%（2/3）" in body
    assert "当前超期 2 件" in body

    # Every minute the job looks again: nothing more today.
    h.clock.advance(timedelta(minutes=1))
    assert await digests(h.ctx) == 0
    assert await runs(h) == 1


async def test_nothing_before_the_digest_time_and_admins_get_the_district(h: Harness) -> None:
    await grant(h, ADMIN, "admin")
    admin = h.emulator.user(ADMIN, first_name="Admin", language_code="en")
    await admin.send_command("/start")
    await admin.expect(contains="随拍即办")

    h.clock.set(NOW - timedelta(minutes=1))  # 07:59
    assert await digests(h.ctx) == 0
    h.clock.set(NOW)
    assert await digests(h.ctx) == 1
    chart = await admin.expect(predicate=lambda m: m.method == "sendPhoto")
    assert chart.caption == "Chaoyang District, Beijing · Suipai daily digest\n22 Nov 2026"
    # The district counts 三里屯's case M too: six received that Sunday.
    await admin.expect(contains="Received 6, repeat reports 1")


async def test_digest_command_resends_on_demand(h: Harness) -> None:
    await grant(h, SUPERVISOR, "supervisor", "chaowai", "street")
    supervisor = h.emulator.user(SUPERVISOR, first_name="Chen", language_code="en")
    resident = h.emulator.user(1001, first_name="王芳", language_code="zh-hans")
    await supervisor.send_command("/start")
    await supervisor.expect(contains="Snap it")
    assert await digests(h.ctx) == 1
    await supervisor.expect(predicate=lambda m: m.method == "sendPhoto")

    await supervisor.send_command("/digest")
    again = await supervisor.expect(predicate=lambda m: m.method == "sendPhoto")
    assert again.caption == "Chaowai Subdistrict · Suipai daily digest\n22 Nov 2026"
    await supervisor.expect(contains="Response rate 83% (5/6)")
    assert await runs(h) == 1  # on demand is a resend, not the day's digest

    await resident.send_command("/digest")
    await resident.expect(contains=t("zh", "stats.not_allowed").split("。")[0])


def test_the_digest_is_due_once_the_local_time_has_passed() -> None:
    district = load_district(SAMPLE_DISTRICT_DIR)
    # 23:59 UTC on the 22nd is 07:59 on the 23rd in Beijing: not yet; a minute later it is.
    assert due_day(NOW - timedelta(minutes=1), district, time(8)) is None
    assert due_day(NOW, district, time(8)) == DAY
    assert due_day(NOW + timedelta(hours=15, minutes=59), district, time(8)) == DAY
    assert due_day(NOW + timedelta(hours=16), district, time(8)) is None  # 00:00 next day


@asynccontextmanager
async def two_processes(
    database_url: str, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[tuple[AppContext, AppContext]]:
    """Two bot processes' contexts over one database (their senders not started)."""
    async with AsyncExitStack() as stack:
        contexts = []
        for name in ("a", "b"):
            settings = settings_for(database_url, tmp_path / f"media-{name}", "http://127.0.0.1:9")
            bot = make_bot(settings)
            stack.push_async_callback(bot.session.close)
            contexts.append(await stack.enter_async_context(app_context(settings, bot, clock)))
        yield contexts[0], contexts[1]


async def give(database_url: str, staff: list[tuple[int, str, str | None, str | None]]) -> None:
    """Roles, as `python -m bot people add` gives them."""
    engine = make_engine(database_url)
    district = load_district(SAMPLE_DISTRICT_DIR)
    async with make_sessionmaker(engine)() as session, session.begin():
        for telegram_id, role, scope, kind in staff:
            await grant_role(
                session,
                district,
                telegram_id=telegram_id,
                role=role,
                scope=scope,
                kind=kind,
                name=None,
                now=NOW,
            )
    await engine.dispose()


async def test_two_senders_at_once_send_each_digest_once(database_url: str, tmp_path: Path) -> None:
    clock = FakeClock(NOW)
    staff: list[tuple[int, str, str | None, str | None]] = [
        (4001 + i, "supervisor", "chaowai", "street") for i in range(4)
    ]
    staff += [(4101, "supervisor", "sanlitun", "street"), (4201, "admin", None, None)]
    await give(database_url, staff)
    async with two_processes(database_url, tmp_path, clock) as (a, b):
        async with a.sessionmaker() as session:
            await chaowai_week(session)
            await session.commit()

        sent = await asyncio.gather(digests(a), digests(b), digests(a), digests(b))
        assert sum(sent) == len(staff)
        assert await asyncio.gather(digests(a), digests(b)) == [0, 0]

        assert await runs(a) == len(staff)
        async with a.sessionmaker() as session:
            rows = await session.execute(
                select(OutboxMessage.chat_id, func.count())
                .where(OutboxMessage.method == "sendPhoto")
                .group_by(OutboxMessage.chat_id)
            )
            photos = {chat_id: count for chat_id, count in rows.all()}
            sent_at = (await session.scalars(select(DigestRun.sent_at))).all()
        assert photos == {telegram_id: 1 for telegram_id, *_ in staff}
        assert all(at is not None for at in sent_at)

        # On demand it goes again; the day's runs stay one per person.
        assert await Digests.of(a).send_now(DAY, 4001) == 1
        assert await runs(a) == len(staff)


@pytest.fixture
def shell(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str) -> Iterator[Path]:
    """The settings `python -m bot` would read, in this process."""
    monkeypatch.chdir(tmp_path)  # away from any .env in the checkout
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("DISTRICT_DIR", str(SAMPLE_DISTRICT_DIR))
    monkeypatch.setenv("MEDIA_DIR", str(tmp_path / "media"))
    monkeypatch.setenv("DIGEST_TIME", "00:00")
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


async def run(argv: list[str]) -> int:
    """`main` runs the command's coroutine with asyncio.run; inside a test, await it instead."""
    args = build_parser().parse_args(argv)
    return int(await args.func(args))


async def test_digest_send_from_the_shell(
    shell: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await give(database_url, [(SUPERVISOR, "supervisor", "chaowai", "street")])
    assert await run(["digest", "send", "--now", "--day", "2026-11-22"]) == 0
    assert "queued the digest of 2026-11-22 for 1 person(s)" in capsys.readouterr().out
    assert await run(["digest", "send", "--day", "2026-11-22"]) == 2
    assert "--now" in capsys.readouterr().err
    for queued in (1, 0):  # the scheduled one (yesterday's, by the real clock) goes once
        assert await run(["digest", "send"]) == 0
        assert f"queued {queued} digest(s)" in capsys.readouterr().out
    assert await run(["digest", "send", "--now", "--telegram-id", "999"]) == 1
    assert "999 is no supervisor or admin" in capsys.readouterr().err
    engine = make_engine(database_url)
    async with make_sessionmaker(engine)() as session:
        photos = await session.scalar(
            select(func.count()).where(OutboxMessage.method == "sendPhoto")
        )
        assert (photos, await session.scalar(select(func.count(DigestRun.id)))) == (2, 1)
    await engine.dispose()
    assert list((shell / "media" / "digests").glob("*.png"))


async def test_the_new_tables_match_their_migration(database_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from storage.models import Base

    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(
                    MigrationContext.configure(c, opts={"compare_type": True}), Base.metadata
                )
            )
    finally:
        await engine.dispose()
    assert [d for d in diff if "digest_runs" in str(d) or "role_changes" in str(d)] == []


async def test_one_failing_digest_does_not_hold_up_the_others(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.figures.digest

    real = bot.figures.digest.build_digest

    async def broken_for_sanlitun(*args: Any, **kwargs: Any) -> Any:
        if args[2] == "sanlitun":
            raise RuntimeError("a bug in one street's figures")
        return await real(*args, **kwargs)

    monkeypatch.setattr(bot.figures.digest, "build_digest", broken_for_sanlitun)
    await give(
        database_url,
        [(4101, "supervisor", "sanlitun", "street"), (4001, "supervisor", "chaowai", "street")],
    )
    async with two_processes(database_url, tmp_path, FakeClock(NOW)) as (a, _b):
        assert await digests(a) == 1
        assert await runs(a) == 1  # 三里屯's was rolled back: it is tried again next minute
        monkeypatch.setattr(bot.figures.digest, "build_digest", real)
        assert await digests(a) == 1
        assert await runs(a) == 2
