"""The bot process killed with SIGKILL mid-report and mid-sending: nothing lost, nothing doubled.

The real `python -m bot run` runs in its own process against the emulator; the test kills it
and starts it again on the same database.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import func, select

from bot.clock import SystemClock
from bot.telegram.outgoing import Outbox
from storage.db import make_engine, make_sessionmaker
from storage.models import Case, OutboxMessage
from tests.harness import jpeg
from tests.test_cli import env_for
from tgemu.emulator import TelegramEmulator


@asynccontextmanager
async def bot_process(
    env: dict[str, str], cwd: Path, *, log: Path | None = None
) -> AsyncIterator[asyncio.subprocess.Process]:
    """`python -m bot run`, its log written to `log` if given; killed on the way out."""
    log_fd = os.open(log or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            cwd=str(cwd),
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=log_fd,
        )
    finally:
        os.close(log_fd)
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def outbox_settled(database_url: str, timeout: float = 20.0) -> None:  # noqa: ASYNC109
    """Wait until no outbox message is pending (checked every 50 ms, for up to `timeout` s)."""
    engine = make_engine(database_url)
    try:
        async with asyncio.timeout(timeout):
            while True:
                async with make_sessionmaker(engine)() as session:
                    pending = await session.scalar(
                        select(func.count())
                        .select_from(OutboxMessage)
                        .where(OutboxMessage.status == "pending")
                    )
                if pending == 0:
                    return
                await asyncio.sleep(0.05)
    finally:
        await engine.dispose()


def kill(proc: asyncio.subprocess.Process) -> None:
    os.kill(proc.pid, signal.SIGKILL)


async def test_killed_in_the_middle_of_a_report_the_draft_survives(
    database_url: str, tmp_path: Path
) -> None:
    emulator = TelegramEmulator()
    url = await emulator.start()
    env = env_for(database_url, tmp_path, TELEGRAM_API_URL=url, OUTBOX_LEASE_S="2")
    (tmp_path / "media").mkdir(exist_ok=True)
    try:
        resident = emulator.user(6001, first_name="Zhou", language_code="en")
        async with bot_process(env, tmp_path) as first:
            await resident.send_photo(jpeg(), caption="Flyers glued all over the lamp post")
            await resident.expect(contains="Where is it?", timeout=60)
            # Killed between the resident's steps, once the bot has recorded its answer as sent
            # (a kill inside that last millisecond is the other test's case).
            await outbox_settled(database_url)
            kill(first)
            await first.wait()
        # While the bot is down the resident goes on: the update waits at Telegram.
        await resident.send_location(39.92361, 116.44325)
        async with bot_process(env, tmp_path) as second:
            summary = await resident.expect(contains="Please check your report", timeout=60)
            assert "Flyers glued all over the lamp post" in (summary.text or "")
            await resident.press("✅ Confirm")
            await resident.expect(contains="Your case number is", timeout=20)
            # Sorted and sent on: to a chief, a department or the street office's triage.
            await emulator.wait_until(
                lambda: any(
                    "was sent to" in (m.text or "") or "being sorted" in (m.text or "")
                    for m in resident.inbox()
                ),
                20,
            )
            kill(second)
            await second.wait()
        texts = [m.text or "" for m in resident.inbox()]
        assert sum("Where is it?" in x for x in texts) == 1
        assert sum("Please check your report" in x for x in texts) == 1
        assert sum("Your case number is" in x for x in texts) == 1
    finally:
        await emulator.stop()
    engine = make_engine(database_url)
    async with make_sessionmaker(engine)() as session:
        assert await session.scalar(select(func.count()).select_from(Case)) == 1
    await engine.dispose()


async def test_killed_in_the_middle_of_sending_every_message_arrives(
    database_url: str, tmp_path: Path
) -> None:
    emulator = TelegramEmulator()
    url = await emulator.start()
    env = env_for(database_url, tmp_path, TELEGRAM_API_URL=url, OUTBOX_LEASE_S="2")
    (tmp_path / "media").mkdir(exist_ok=True)
    people = [emulator.user(7000 + i, first_name=f"P{i}") for i in range(20)]
    for p in people:
        await p.send_command("/help")
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    try:
        async with bot_process(env, tmp_path) as first:
            await emulator.wait_until(lambda: all(p.inbox() for p in people), 60)
            # Now a burst of 200 notices, 10 per chat: the per-chat limit makes this take
            # several seconds, and the process is killed part-way through.
            async with sessions() as session, session.begin():
                out = Outbox(session, SystemClock().now())
                for i in range(10):
                    for p in people:
                        out.chat(p.chat_id, "en").text(f"notice {i}")
            await emulator.wait_until(
                lambda: (
                    sum(m.text.startswith("notice") for p in people for m in p.inbox() if m.text)
                    >= 40
                ),
                60,
            )
            kill(first)
            await first.wait()
        sent_before = sum(
            1 for p in people for m in p.inbox() if (m.text or "").startswith("notice")
        )
        assert sent_before < 200
        async with bot_process(env, tmp_path):
            await emulator.wait_until(
                lambda: all(
                    len({m.text for m in p.inbox() if (m.text or "").startswith("notice")}) == 10
                    for p in people
                ),
                90,
            )
            await outbox_settled(database_url)  # every message recorded as sent
        # Every notice arrived, in order. A message whose answer came back from Telegram just
        # before the kill, but was not yet recorded, is sent again: at most the one message
        # each chat had in flight (the delivery guarantee is at-least-once; see README).
        doubled = 0
        for p in people:
            notices = [m.text for m in p.inbox() if (m.text or "").startswith("notice")]
            collapsed = [n for i, n in enumerate(notices) if i == 0 or n != notices[i - 1]]
            assert collapsed == [f"notice {i}" for i in range(10)], (p.chat_id, notices)
            assert len(notices) - len(collapsed) <= 1, (p.chat_id, notices)
            doubled += len(notices) - len(collapsed)
        assert doubled <= len(people)
        async with sessions() as session:
            unsent = (
                await session.execute(
                    select(OutboxMessage.status, OutboxMessage.last_error).where(
                        OutboxMessage.status != "sent"
                    )
                )
            ).all()
        assert unsent == []
    finally:
        await engine.dispose()
        await emulator.stop()
