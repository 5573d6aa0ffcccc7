"""PostgreSQL restarted while residents report: every case once, every message once.

The real `python -m bot run` (polling) runs in its own process on a PostgreSQL server of the
test's own, which the test stops and starts three times: while the residents' first updates
reach the bot, in the middle of the photos' transactions, and while they press Confirm.
Afterwards every case, card, confirmation and button answer is counted.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.app import make_bot, run_webhook
from bot.config import SAMPLE_DISTRICT_DIR
from bot.domain.district import load_district
from storage.db import make_engine, make_sessionmaker
from storage.migrate import upgrade
from storage.models import Case, CaseEvent, OutboxMessage, Photo
from tests.conftest import REDIS_URL
from tests.harness import grant_direct, noise_jpeg, running_bot, settings_for
from tests.private_postgres import PrivatePostgres, private_postgres, unavailable
from tests.test_cli import env_for
from tests.test_crash import bot_process, outbox_settled
from tests.test_webhook import SECRET, free_port
from tgemu.emulator import Persona, TelegramEmulator

pytestmark = pytest.mark.skipif(unavailable() is not None, reason=unavailable() or "")

RESIDENTS = 24
CHIEFS = 6


def cards(chief: Persona) -> int:
    return sum((m.text or "").startswith("📋") for m in chief.inbox())


def count(person: Persona, text: str) -> int:
    return sum(text in (m.text or "") for m in person.inbox())


async def test_postgresql_restarted_while_cases_come_in(tmp_path: Path) -> None:
    async with private_postgres() as pg:
        await upgrade(pg.url)
        emulator = TelegramEmulator()
        api = await emulator.start()
        lanes = sorted(load_district(SAMPLE_DISTRICT_DIR).lanes)[:CHIEFS]
        chiefs = []
        for i, lane in enumerate(lanes):
            await grant_direct(pg.url, 8400 + i, "chief", lane, "lane")
            chiefs.append(emulator.user(8400 + i, first_name=f"Chief {i}", language_code="en"))
        residents = [
            emulator.user(8500 + i, first_name=f"R{i}", language_code="en")
            for i in range(RESIDENTS)
        ]
        (tmp_path / "media").mkdir()
        log = tmp_path / "bot.log"
        # Every resident's update in the bot's hands during an outage (the bound on updates in
        # hand has its own test): Telegram then holds none of them unconfirmed.
        env = env_for(
            pg.url,
            tmp_path,
            TELEGRAM_API_URL=api,
            OUTBOX_LEASE_S="5",
            UPDATE_CONCURRENCY=str(RESIDENTS + CHIEFS),
        )
        try:
            async with bot_process(env, tmp_path, log=log):
                await asyncio.gather(*(c.send_command("/help") for c in chiefs))  # chats exist
                await emulator.wait_until(lambda: all(c.inbox() for c in chiefs), 90)
                # 1. The database is away when the residents scan the lane sign: the bot takes
                # their updates from Telegram meanwhile, then the server comes back.
                await pg.stop()
                await asyncio.gather(
                    *(
                        p.send_command("/start", f"lane_{lanes[i % CHIEFS]}")
                        for i, p in enumerate(residents)
                    )
                )
                await emulator.wait_until(lambda: not emulator.updates, 30)
                await pg.start()
                await asyncio.gather(
                    *(p.expect(contains="lane sign", timeout=90) for p in residents)
                )

                # 2. The server stops in the middle of the photos' updates: when the bot downloads
                # the first photo it has already read the conversation and saved the person, and
                # writes the draft after. It is back a second later.
                restarted = _restart_on_first_download(emulator, pg)
                await asyncio.gather(
                    *(
                        p.send_photo(
                            noise_jpeg(i), caption=f"Small ads glued on the wall, spot {i}"
                        )
                        for i, p in enumerate(residents)
                    )
                )
                await asyncio.gather(
                    *(p.expect(contains="Please check your report", timeout=120) for p in residents)
                )
                await restarted

                # 3. Half press Confirm and the server stops at once, under their transactions;
                # the other half press while it is down.
                first, second = residents[: RESIDENTS // 2], residents[RESIDENTS // 2 :]
                await asyncio.gather(*(p.press("✅ Confirm") for p in first))
                await pg.stop()
                await asyncio.gather(*(p.press("✅ Confirm") for p in second))
                await emulator.wait_until(lambda: not emulator.updates, 30)
                await pg.start()

                await asyncio.gather(
                    *(p.expect(contains="Your case number is", timeout=120) for p in residents)
                )
                await emulator.wait_until(lambda: sum(cards(c) for c in chiefs) >= RESIDENTS, 120)
                # Every button press was answered (the emulator refuses a second answer).
                await emulator.wait_until(
                    lambda: all(len(p.callback_answers) == 1 for p in residents), 60
                )
                await outbox_settled(pg.url, timeout=60)
        finally:
            await emulator.stop()

        written = log.read_text(errors="replace")
        # The outages really met the bot's updates, in the middle of their transactions
        # and before them, and it retried rather than gave up.
        assert "database connection lost; update" in written, written[-3000:]
        assert "database connection lost; conversation state" in written, written[-3000:]
        assert "not applied: the database is unreachable" not in written

        engine = make_engine(pg.url)
        async with make_sessionmaker(engine)() as session:
            numbers = (await session.scalars(select(Case.number))).all()
            submitted = await session.scalar(
                select(func.count()).select_from(CaseEvent).where(CaseEvent.action == "submitted")
            )
            unsent = await session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.status != "sent")
            )
        await engine.dispose()

    assert len(numbers) == RESIDENTS == len(set(numbers)) == submitted
    assert unsent == 0
    assert [cards(c) for c in chiefs] == [RESIDENTS // CHIEFS] * CHIEFS  # one card per case
    for p in residents:
        assert count(p, "lane sign") == 1
        assert count(p, "Please check your report") == 1
        assert count(p, "Your case number is") == 1
        assert len(p.callback_answers) == 1


def _restart_on_first_download(
    emulator: TelegramEmulator, pg: PrivatePostgres
) -> asyncio.Task[None]:
    """Stop the server when the bot first asks for a file; start it again a second later."""
    name, get_file = emulator.api.methods["getfile"]
    stopping: list[bool] = []
    stopped = asyncio.Event()

    async def stop_then_answer(params: Any) -> Any:
        if not stopping:
            stopping.append(True)
            await pg.stop()
            stopped.set()
        await stopped.wait()
        return await get_file(params)

    async def restart() -> None:
        await stopped.wait()
        await asyncio.sleep(1.0)  # the outage's length, not a wait for a result
        await pg.start()
        emulator.api.methods["getfile"] = (name, get_file)

    emulator.api.methods["getfile"] = (name, stop_then_answer)
    return asyncio.create_task(restart())


async def test_webhook_answers_500_while_the_database_is_away_and_telegram_redelivers(
    tmp_path: Path,
) -> None:
    """Past DB_RETRY_S the update is not lost: Telegram gets 500 and delivers it again."""
    async with private_postgres() as pg:
        await upgrade(pg.url)
        emulator = TelegramEmulator()
        api = await emulator.start()
        port = free_port()
        hook = f"http://127.0.0.1:{port}/tg/hook"
        settings = settings_for(
            pg.url,
            tmp_path / "media",
            api,
            webhook_url=hook,
            webhook_secret=SECRET,
            web_port=port,
            db_retry_s=0.5,
        )
        server = asyncio.create_task(run_webhook(settings, make_bot(settings)))
        try:
            await emulator.wait_until(lambda: emulator.webhook is not None, timeout=30)
            webhook = emulator.webhook
            assert webhook is not None
            resident = emulator.user(8600, first_name="Wu", language_code="en")
            await pg.stop()
            await resident.send_command("/start")
            await emulator.wait_until(lambda: webhook.last_error_message, timeout=30)
            assert "500" in (webhook.last_error_message or "")
            health = f"http://127.0.0.1:{port}/healthz"
            async with aiohttp.ClientSession() as http, http.get(health) as answer:
                assert answer.status == 503
                assert (await answer.json())["database"] == "unreachable"
            assert not resident.inbox()
            await pg.start()
            await resident.expect(contains="Snap it, get it handled", timeout=30)
            await outbox_settled(pg.url)
        finally:
            server.cancel()
            await asyncio.gather(server, return_exceptions=True)
            await emulator.stop()
    assert count(resident, "Snap it, get it handled") == 1


@pytest.mark.skipif(not REDIS_URL, reason="TEST_REDIS_URL is not set: Redis drafts are not tested")
async def test_a_draft_kept_in_redis_is_not_changed_twice_by_a_retried_update(
    tmp_path: Path,
) -> None:
    """Redis is written at once, not with the transaction: the update applied again after
    the database came back must find the draft as it was, or the photo would count twice."""
    assert REDIS_URL is not None
    async with private_postgres() as pg:
        await upgrade(pg.url)
        media = tmp_path / "media"
        media.mkdir()
        async with running_bot(pg.url, media, redis_url=REDIS_URL) as h:
            resident = h.emulator.user(8700, first_name="Zhao", language_code="en")
            await resident.send_command("/start", "lane_CW-001")
            await resident.expect(contains="lane sign")
            restarted = _restart_on_first_download(h.emulator, pg)
            await resident.send_photo(noise_jpeg(1), caption="A pothole by the bus stop")
            summary = await resident.expect(contains="Please check your report", timeout=60)
            await restarted
            await resident.press("✅ Confirm")
            await resident.expect(contains="Your case number is", timeout=30)
            async with h.session() as session:
                case = (await session.scalars(select(Case))).one()
                photos = await session.scalar(
                    select(func.count()).select_from(Photo).where(Photo.case_id == case.id)
                )
    assert photos == 1, summary.text
