"""Three webhook processes behind one URL, on PostgreSQL and Redis: 200 residents report at once.

Every case exists once, every card is sent once, and the deadline sweeps of several processes
never fire a step twice.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import func, select

from bot.app import app_context, make_bot
from bot.clock import FakeClock
from bot.config import SAMPLE_DISTRICT_DIR
from bot.domain.district import load_district
from bot.jobs.scheduler import sweep
from storage.db import make_engine, make_sessionmaker
from storage.models import Case, CaseEvent, Deadline
from tests.conftest import PG_URL, REDIS_URL
from tests.harness import grant_direct, noise_jpeg, settings_for
from tests.test_cli import env_for
from tests.test_webhook import SECRET, free_port
from tgemu.emulator import Persona, TelegramEmulator

pytestmark = pytest.mark.skipif(
    not (PG_URL and REDIS_URL),
    reason="TEST_DATABASE_URL and TEST_REDIS_URL are needed: several processes share them",
)

RESIDENTS = 200
PROCESSES = 3
CHIEFS = 20


async def round_robin(backends: list[str]) -> tuple[web.AppRunner, str]:
    """The load balancer: each webhook POST goes to the next process."""
    turn = itertools.cycle(backends)
    session = aiohttp.ClientSession()

    async def forward(request: web.Request) -> web.Response:
        body = await request.read()
        async with session.post(
            next(turn) + request.path, data=body, headers=request.headers
        ) as answer:
            return web.Response(status=answer.status, body=await answer.read())

    async def close(_app: web.Application) -> None:
        await session.close()

    app = web.Application()
    app.router.add_post("/{tail:.*}", forward)
    app.on_cleanup.append(close)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


async def flush_redis(url: str) -> None:
    from redis.asyncio import Redis

    redis = Redis.from_url(url)
    await redis.flushdb()
    await redis.aclose()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_three_processes_two_hundred_residents(database_url: str, tmp_path: Path) -> None:
    assert REDIS_URL is not None
    await flush_redis(REDIS_URL)
    emulator = TelegramEmulator()
    api = await emulator.start()
    ports = [free_port() for _ in range(PROCESSES)]
    balancer, public = await round_robin([f"http://127.0.0.1:{p}" for p in ports])
    hook = f"{public}/tg/hook"
    (tmp_path / "media").mkdir()
    procs = []
    # Twenty lanes, each with its chief: cards spread over chats as they would in a district.
    lanes = sorted(load_district(SAMPLE_DISTRICT_DIR).lanes)[:CHIEFS]
    chiefs = []
    for i, lane in enumerate(lanes):
        await grant_direct(database_url, 8000 + i, "chief", lane, "lane")
        chief = emulator.user(8000 + i, first_name=f"Chief {i}", language_code="zh-hans")
        await chief.send_command("/help")  # the chief's chat exists
        chiefs.append(chief)
    try:
        for port in ports:
            env = env_for(
                database_url,
                tmp_path,
                TELEGRAM_API_URL=api,
                WEBHOOK_URL=hook,
                WEBHOOK_SECRET=SECRET,
                WEB_PORT=str(port),
                REDIS_URL=REDIS_URL,
            )
            procs.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "bot",
                    "run",
                    "--webhook",
                    cwd=str(tmp_path),
                    env=env,
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                )
            )
        await emulator.wait_until(lambda: emulator.webhook is not None, 90)
        await asyncio.gather(*(c.expect(contains="随拍即办", timeout=90) for c in chiefs))

        people = [
            emulator.user(9000 + i, first_name=f"R{i}", language_code="en")
            for i in range(RESIDENTS)
        ]
        await asyncio.gather(*(report(p, i, lanes[i % CHIEFS]) for i, p in enumerate(people)))
        await asyncio.gather(
            *(p.expect(contains="Please check your report", timeout=120) for p in people)
        )
        await asyncio.gather(*(p.press("✅ Confirm") for p in people))
        await asyncio.gather(
            *(p.expect(contains="Your case number is", timeout=180) for p in people)
        )
        await emulator.wait_until(lambda: sum(cards(c) for c in chiefs) >= RESIDENTS, 180)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()
        await balancer.cleanup()
        await emulator.stop()

    engine = make_engine(database_url)
    async with make_sessionmaker(engine)() as session:
        numbers = (await session.scalars(select(Case.number))).all()
        submitted = await session.scalar(
            select(func.count()).select_from(CaseEvent).where(CaseEvent.action == "submitted")
        )
    await engine.dispose()
    assert len(numbers) == RESIDENTS == len(set(numbers)) == submitted
    assert [cards(c) for c in chiefs] == [RESIDENTS // CHIEFS] * CHIEFS  # one card per case
    for p in people:
        assert sum("Your case number is" in (m.text or "") for m in p.inbox()) == 1


def cards(chief: Persona) -> int:
    return sum((m.text or "").startswith("📋") for m in chief.inbox())


async def report(person: Persona, i: int, lane: str) -> None:
    """From the lane's street sign: the QR code sets the lane, the photo and words follow."""
    await person.send_command("/start", f"lane_{lane}")
    await person.expect(contains="lane sign", timeout=120)
    await person.send_photo(noise_jpeg(i), caption=f"Small ads glued on the wall, spot {i}")


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_sweeps_in_several_processes_fire_each_step_once(
    database_url: str, media_dir: Path
) -> None:
    """Three contexts sweep the same database at once: each due step fires once."""
    emulator = TelegramEmulator()
    api = await emulator.start()
    settings = settings_for(database_url, media_dir, api)
    clock = FakeClock()
    bots = [make_bot(settings) for _ in range(PROCESSES)]
    try:
        async with (
            app_context(settings, bots[0], clock) as a,
            app_context(settings, bots[1], clock) as b,
            app_context(settings, bots[2], clock) as c,
        ):
            async with a.sessionmaker() as session, session.begin():
                session.add(
                    Case(
                        number="CY-20261123-9999",
                        state="dispatched",
                        source="chat",
                        description="x",
                        priority=0,
                        created_at=clock.now(),
                        updated_at=clock.now(),
                        photos=[],
                    )
                )
                await session.flush()
                case = (await session.scalars(select(Case))).one()
                for n in range(300):
                    session.add(
                        Deadline(
                            case_id=case.id,
                            kind="respond_50",
                            due_at=clock.now() + timedelta(seconds=n),
                            cancelled=False,
                        )
                    )
            clock.advance(timedelta(hours=1))
            fired = await asyncio.gather(sweep(a), sweep(b), sweep(c))
            assert sum(fired) == 300
            async with a.sessionmaker() as session:
                events = await session.scalar(
                    select(func.count())
                    .select_from(CaseEvent)
                    .where(CaseEvent.action == "reminded")
                )
            assert events == 300
    finally:
        for bot in bots:
            await bot.session.close()
        await emulator.stop()
