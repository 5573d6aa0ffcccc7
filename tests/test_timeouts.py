"""Per-chat locks: bounded in memory, and in Redis held as long as the update is in hand.

One update of a chat is handled at a time. In memory a lock is kept only while it is held or
waited for, so the mapping does not grow with everyone who ever wrote. In Redis the lock's
expiry only frees the chat of a process that died: it is renewed while an update waits out a
database outage (DB_RETRY_S) or a slow download, and a lock lost anyway does not make the bot
tell the person that their update, saved by then, failed.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from aiogram.fsm.storage.base import DefaultKeyBuilder, StorageKey

from bot.telegram.fsm import LocalEventIsolation, RedisChatLocks
from tests.conftest import REDIS_URL
from tests.harness import noise_jpeg, plain_text, running_bot
from tests.test_webhook import hold_downloads

needs_redis = pytest.mark.skipif(not REDIS_URL, reason="TEST_REDIS_URL is not set")


def key(chat_id: int) -> StorageKey:
    return StorageKey(bot_id=123456789, chat_id=chat_id, user_id=chat_id)


async def test_a_local_lock_lets_one_in_at_a_time_and_is_dropped_when_nobody_needs_it() -> None:
    locks = LocalEventIsolation()
    inside, leave = asyncio.Event(), asyncio.Event()
    order: list[str] = []

    async def first() -> None:
        async with locks.lock(key(1)):
            order.append("first in")
            inside.set()
            await leave.wait()
            order.append("first out")

    async def second() -> None:
        async with locks.lock(key(1)):
            order.append("second in")

    holder = asyncio.create_task(first())
    await inside.wait()
    waiter = asyncio.create_task(second())
    async with locks.lock(key(2)):  # another chat is not held up
        order.append("other chat")
    assert locks.chats_locked == 1  # chat 1: held and waited for; chat 2's is gone
    leave.set()
    await asyncio.gather(holder, waiter)
    assert order == ["first in", "other chat", "first out", "second in"]
    assert locks.chats_locked == 0


async def test_locks_do_not_pile_up_with_the_number_of_people(
    database_url: str, media_dir: Path
) -> None:
    async with running_bot(database_url, media_dir) as h:
        people = [h.emulator.user(3300 + i, language_code="en") for i in range(30)]
        await asyncio.gather(*(p.send_command("/help") for p in people))
        await asyncio.gather(*(p.expect(contains="How to report a problem") for p in people))
        isolation = h.dp.fsm.events_isolation
        assert isinstance(isolation, LocalEventIsolation)
        assert isolation.chats_locked == 0


@needs_redis
async def test_a_chat_lock_in_redis_is_kept_while_its_update_is_in_hand() -> None:
    """The update takes three leases (a database outage, a slow download): the lock is still
    its own, so another process's update of that chat waits."""
    from redis.asyncio import Redis

    assert REDIS_URL is not None
    redis = Redis.from_url(REDIS_URL)
    locks = RedisChatLocks(redis, lease_s=0.6)
    chat = key(-(3_000_000 + os.getpid()))
    name = DefaultKeyBuilder().build(chat, "lock")
    try:
        async with locks.lock(chat):
            await asyncio.sleep(1.8)  # the update in hand for three leases
            assert not await redis.lock(name, timeout=5).acquire(blocking=False)
        assert not await redis.exists(name)
    finally:
        await redis.delete(name)
        await redis.aclose()


@needs_redis
async def test_a_lost_redis_lock_does_not_tell_the_person_their_saved_update_failed(
    media_dir: Path, tmp_path: Path
) -> None:
    """Redis loses the chat's lock while a photo is handled (a Redis restart, a renewal that
    failed): the photo is taken and the person is not told that something went wrong."""
    from redis.asyncio import Redis

    from storage.migrate import upgrade

    assert REDIS_URL is not None
    url = f"sqlite+aiosqlite:///{tmp_path / 'locks.db'}"
    await upgrade(url)
    resident_id = 3400 + os.getpid() % 1000
    redis = Redis.from_url(REDIS_URL)
    name = f"fsm:{resident_id}:{resident_id}:lock"
    await redis.delete(*[k async for k in redis.scan_iter(f"fsm:{resident_id}:*")] or [name])
    try:
        async with running_bot(url, media_dir, redis_url=REDIS_URL) as h:
            held = hold_downloads(h.emulator)
            resident = h.emulator.user(resident_id, first_name="Li", language_code="en")
            await resident.send_photo(noise_jpeg(3), caption="The drain cover is missing")
            await h.emulator.wait_until(lambda: held, timeout=30)
            assert await redis.delete(name) == 1  # the lock is lost while the update is in hand
            held[0].set()
            await resident.expect(contains="Where is it?", timeout=30)
            await resident.send_command("/help")  # handled after the photo's update, in turn
            await resident.expect(contains="How to report a problem", timeout=30)
    finally:
        await redis.delete(*[k async for k in redis.scan_iter(f"fsm:{resident_id}:*")] or [name])
        await redis.aclose()
    went_wrong = plain_text("en", "error.internal")
    assert not [m.text for m in resident.inbox() if m.text == went_wrong]
