"""aiogram's conversation state in the database, written in the update's own transaction when
there is one; and the per-chat locks that let one update of a chat in at a time.

So a resident's draft, the case it becomes and the messages it causes commit together, and a
half-finished report survives a restart. (With REDIS_URL set, aiogram's Redis storage is used
instead, for several processes; its writes are then not part of the database transaction.)
The rows themselves are storage/fsm.py's; the locks are in memory or in Redis.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import (
    BaseEventIsolation,
    BaseStorage,
    DefaultKeyBuilder,
    KeyBuilder,
    StorageKey,
)
from redis.exceptions import LockNotOwnedError, RedisError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage import fsm as rows
from storage.db import while_reachable

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.lock import Lock

log = logging.getLogger(__name__)
_T = TypeVar("_T")

# The session of the update being handled, set by the unit-of-work middleware.
current_session: ContextVar[AsyncSession | None] = ContextVar("current_session", default=None)


def _key(key: StorageKey) -> str:
    parts = (key.bot_id, key.chat_id, key.user_id, key.thread_id, key.business_connection_id)
    return ":".join("" if p is None else str(p) for p in parts) + f":{key.destiny}"


class SqlStorage(BaseStorage):
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], *, retry_s: float = 120.0
    ) -> None:
        self._sessionmaker = sessionmaker
        self._retry_s = retry_s

    async def _in_session(self, op: Callable[[AsyncSession], Awaitable[_T]]) -> _T:
        """Run `op` in the update's transaction, or else in a short one of its own.

        Its own transaction is tried again while the database is unreachable: aiogram reads
        the state before the update's transaction starts, and a restart must not lose it.
        """
        session = current_session.get()
        if session is not None:
            return await op(session)

        async def attempt() -> _T:
            async with self._sessionmaker() as own, own.begin():
                return await op(own)

        return await while_reachable(attempt, self._retry_s, "conversation state")

    async def set_state(self, key: StorageKey, state: str | State | None = None) -> None:
        value = state.state if isinstance(state, State) else state
        await self._in_session(lambda session: rows.set_state(session, _key(key), value))

    async def get_state(self, key: StorageKey) -> str | None:
        return await self._in_session(lambda session: rows.get_state(session, _key(key)))

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        await self._in_session(lambda session: rows.set_data(session, _key(key), data))

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        return await self._in_session(lambda session: rows.get_data(session, _key(key)))

    async def close(self) -> None:
        return None


@dataclass
class _Turn:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0  # holding it or waiting for it


class LocalEventIsolation(BaseEventIsolation):
    """One update at a time per chat and person, in this process.

    aiogram's SimpleEventIsolation keeps a lock for everyone who ever wrote to the bot; here a
    lock lives only while an update holds it or waits for it.
    """

    def __init__(self) -> None:
        self._turns: dict[StorageKey, _Turn] = {}

    # Not __len__: aiogram takes `events_isolation or DisabledEventIsolation()`, and an
    # isolation with no locks would then be false and replaced by none.
    @property
    def chats_locked(self) -> int:
        """How many chats have a lock now (held or waited for)."""
        return len(self._turns)

    @asynccontextmanager
    async def lock(self, key: StorageKey) -> AsyncIterator[None]:
        turn = self._turns.setdefault(key, _Turn())
        turn.users += 1
        try:
            async with turn.lock:
                yield
        finally:
            turn.users -= 1
            if turn.users == 0:
                del self._turns[key]

    async def close(self) -> None:
        self._turns.clear()


class RedisChatLocks(BaseEventIsolation):
    """One update at a time per chat and person, across processes, with a lock in Redis.

    The lock expires after `lease_s` only so that a chat is not locked for ever by a process
    that died: while its update is in hand (waiting out a database outage for DB_RETRY_S, a
    slow download) the lock is renewed every third of the lease. A lock that was lost anyway
    (Redis restarted, a renewal failed) is logged on release, not raised: by then the update's
    work is committed, and the person must not be told that it failed.
    """

    def __init__(
        self, redis: Redis, *, lease_s: float = 30.0, key_builder: KeyBuilder | None = None
    ) -> None:
        self._redis = redis
        self._lease_s = lease_s
        self._keys = key_builder or DefaultKeyBuilder()

    @asynccontextmanager
    async def lock(self, key: StorageKey) -> AsyncIterator[None]:
        lock = self._redis.lock(self._keys.build(key, "lock"), timeout=self._lease_s)
        await lock.acquire()
        renewing = asyncio.create_task(self._renew(lock))
        try:
            yield
        finally:
            renewing.cancel()
            await asyncio.wait([renewing])
            try:
                await lock.release()
            except RedisError as exc:
                log.warning("chat lock %s lost while its update was in hand: %s", lock.name, exc)

    async def _renew(self, lock: Lock) -> None:
        while True:
            await asyncio.sleep(self._lease_s / 3)
            try:
                await lock.reacquire()
            except LockNotOwnedError:
                log.warning("chat lock %s expired while its update was in hand", lock.name)
                return
            except RedisError as exc:  # Redis away for a moment: the lease has time left
                log.warning("chat lock %s not renewed: %s", lock.name, exc)

    async def close(self) -> None:
        return None
