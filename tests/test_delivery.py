"""The sender under Telegram's limits and faults: every message delivered once, none lost.

The sender runs with Telegram's production limits against the emulator, which counts every
breach. Time for retries is a controllable clock; per-chat pacing uses the event loop's clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.app import make_bot
from bot.clock import FakeClock, SystemClock
from bot.telegram.delivery import MARGIN_S, RateLimiter, Sender
from bot.telegram.outgoing import Outbox
from storage.db import make_engine, make_sessionmaker
from storage.models import OutboxMessage, Person
from tests.harness import settings_for
from tgemu.emulator import Persona, TelegramEmulator


@dataclass
class Rig:
    emulator: TelegramEmulator
    sender: Sender
    clock: FakeClock
    sessions: object

    async def enqueue(self, chats: list[Persona], per_chat: int) -> None:
        async with self.sessions() as session, session.begin():  # type: ignore[operator]
            out = Outbox(session, self.clock.now())
            for i in range(per_chat):
                for chat in chats:
                    out.chat(chat.chat_id, "en").text(f"message {i} for {chat.chat_id}")

    async def counts(self) -> dict[str, int]:
        async with self.sessions() as session:  # type: ignore[operator]
            rows = await session.execute(
                select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
            )
            return {status: n for status, n in rows.all()}

    async def drain_through(self, step: timedelta = timedelta(seconds=5), limit: int = 200) -> None:
        """Send until nothing is pending, moving the clock past each retry's wait."""
        for _ in range(limit):
            await self.sender.drain()
            if (await self.counts()).get("pending", 0) == 0:
                return
            self.clock.advance(step)
        raise AssertionError(f"still pending after {limit} steps: {await self.counts()}")


@pytest.fixture
async def rig(database_url: str, media_dir: Path) -> AsyncIterator[Rig]:
    emulator = TelegramEmulator()
    url = await emulator.start()
    settings = settings_for(database_url, media_dir, url)
    bot = make_bot(settings)
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    clock = FakeClock()
    loop = asyncio.get_running_loop()
    sender = Sender(bot, sessions, clock, media_dir, limiter=RateLimiter(loop.time))
    try:
        yield Rig(emulator, sender, clock, sessions)
    finally:
        await bot.session.close()
        await engine.dispose()
        await emulator.stop()


def residents(rig: Rig, n: int) -> list[Persona]:
    people = [rig.emulator.user(5000 + i, first_name=f"R{i}") for i in range(n)]
    return people


async def started(people: list[Persona]) -> None:
    for p in people:
        await p.send_command("/start")  # the chat exists once they wrote to the bot


def delivered_once(people: list[Persona], per_chat: int) -> None:
    for p in people:
        texts = [m.text for m in p.inbox()]
        assert texts == [f"message {i} for {p.chat_id}" for i in range(per_chat)], p.chat_id


async def test_messages_leave_in_order_within_every_limit(rig: Rig) -> None:
    people = residents(rig, 12)
    await started(people)
    await rig.enqueue(people, per_chat=5)
    await rig.drain_through()
    delivered_once(people, 5)
    assert rig.emulator.violations.total == 0, rig.emulator.violations.as_dict()
    assert await rig.counts() == {"sent": 60}


async def test_a_storm_of_429s_is_waited_out_and_nothing_is_lost_or_doubled(rig: Rig) -> None:
    people = residents(rig, 4)
    await started(people)
    await rig.enqueue(people, per_chat=3)
    rig.emulator.fail_next(code=429, count=8, retry_after=1)
    await rig.drain_through(step=timedelta(seconds=1))
    delivered_once(people, 3)
    assert await rig.counts() == {"sent": 12}
    async with rig.sessions() as session:  # type: ignore[operator]
        retried = await session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.attempts > 1)
        )
    assert retried and retried >= 1


async def test_server_errors_are_retried_with_backoff(rig: Rig) -> None:
    people = residents(rig, 2)
    await started(people)
    await rig.enqueue(people, per_chat=2)
    rig.emulator.fail_next(code=500, count=3)
    await rig.sender.drain()
    assert (await rig.counts()).get("pending", 0) > 0  # waiting for its backoff
    await rig.drain_through(step=timedelta(seconds=10))
    delivered_once(people, 2)


async def test_telegram_unreachable_for_a_minute_then_back(rig: Rig) -> None:
    people = residents(rig, 3)
    await started(people)
    await rig.enqueue(people, per_chat=2)
    rig.emulator.set_unreachable(True, mode="refuse")
    for _ in range(12):  # a minute of simulated time
        await rig.sender.drain()
        rig.clock.advance(timedelta(seconds=5))
    assert all(not p.inbox() for p in people)
    assert (await rig.counts()).get("pending") == 6
    rig.emulator.set_unreachable(False)
    await rig.drain_through(step=timedelta(seconds=30))
    delivered_once(people, 2)


async def test_a_person_who_blocked_the_bot_is_marked_unreachable(rig: Rig) -> None:
    people = residents(rig, 2)
    await started(people)
    async with rig.sessions() as session, session.begin():  # type: ignore[operator]
        for p in people:
            session.add(
                Person(telegram_id=p.chat_id, language="en", created_at=rig.clock.now(), roles=[])
            )
    await people[0].block()
    seen: list[int] = []

    async def told(chat_id: int) -> None:
        seen.append(chat_id)

    rig.sender.on_unreachable = told
    await rig.enqueue(people, per_chat=1)
    await rig.drain_through()
    assert await rig.counts() == {"sent": 1, "failed": 1}
    assert seen == [people[0].chat_id]
    async with rig.sessions() as session:  # type: ignore[operator]
        rows = await session.execute(select(Person.telegram_id, Person.unreachable))
        flags = {telegram_id: unreachable for telegram_id, unreachable in rows.all()}
    assert flags == {people[0].chat_id: True, people[1].chat_id: False}


def test_a_message_counts_from_telegrams_answer_not_from_when_it_left() -> None:
    now = [0.0]
    limiter = RateLimiter(lambda: now[0], overall_per_s=2)
    first, second = limiter.record(1), limiter.record(2)
    # Both on their way: they may arrive at any moment, so the window starts now.
    assert limiter.overall_delay() == pytest.approx(1.0 + MARGIN_S)
    now[0] = 0.3  # a slow network: Telegram answered 300 ms later
    limiter.answered(first)
    limiter.answered(second)
    now[0] = 1.0
    assert limiter.overall_delay() == pytest.approx(0.3 + 1.0 + MARGIN_S - 1.0)
    now[0] = 1.4
    assert limiter.overall_delay() == 0.0


async def test_a_slow_and_uneven_network_never_bunches_messages_at_telegram(rig: Rig) -> None:
    """The link is congested for a second (requests take 400 ms to reach Telegram), then
    clear (no delay), and so on; Telegram counts arrivals: never too many in any window."""
    people = residents(rig, 40)
    await started(people)
    loop = asyncio.get_running_loop()
    began = loop.time()
    call = rig.emulator.call

    async def congested_then_clear(method: str, params: Any) -> tuple[int, dict[str, Any]]:
        if (loop.time() - began) % 2.0 < 1.0:
            await asyncio.sleep(0.4)  # the network's delay, not a wait for a result
        return await call(method, params)

    rig.emulator.call = congested_then_clear  # type: ignore[method-assign]
    await rig.enqueue(people, per_chat=3)
    await rig.drain_through()
    delivered_once(people, 3)
    assert rig.emulator.violations.total == 0, rig.emulator.violations.as_dict()


async def test_two_senders_and_a_send_slower_than_the_lease_deliver_each_message_once(
    database_url: str, media_dir: Path
) -> None:
    """Two senders (two processes) share the outbox, and Telegram takes three leases to answer
    the first sender's messages: the claims are renewed meanwhile, so the second sender does
    not take them over and send them again."""
    emulator = TelegramEmulator()
    url = await emulator.start()
    bot = make_bot(settings_for(database_url, media_dir, url))
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    lease = timedelta(seconds=1)
    loop = asyncio.get_running_loop()
    first, second = (
        Sender(bot, sessions, SystemClock(), media_dir, lease=lease, limiter=RateLimiter(loop.time))
        for _ in range(2)
    )
    people = [emulator.user(5100 + i, first_name=f"S{i}") for i in range(3)]
    held = _hold_sends(emulator, len(people))
    try:
        await started(people)
        async with sessions() as session, session.begin():
            out = Outbox(session, SystemClock().now())
            for p in people:
                out.chat(p.chat_id, "en").text(f"message 0 for {p.chat_id}")
        sending = asyncio.create_task(first.drain_once())
        await emulator.wait_until(lambda: len(held) == len(people), 10)
        await asyncio.sleep(3 * lease.total_seconds())  # Telegram is slow to answer
        assert await second.drain_once() == 0  # nothing to take over: the claims are alive
        for release in held:
            release.set()
        assert await sending == len(people)
        assert await second.drain() == 0
        delivered_once(people, 1)
    finally:
        await bot.session.close()
        await engine.dispose()
        await emulator.stop()


def _hold_sends(emulator: TelegramEmulator, count: int) -> list[asyncio.Event]:
    """The first `count` sendMessage calls wait until the test sets their event; later ones
    (a second sender's) go through."""
    name, send = emulator.api.methods["sendmessage"]
    held: list[asyncio.Event] = []

    async def slow(params: Any) -> Any:
        if len(held) < count:
            release = asyncio.Event()
            held.append(release)
            emulator.touch()
            await release.wait()
        return await send(params)

    emulator.api.methods["sendmessage"] = (name, slow)
    return held
