"""FSM storage in the database, written in the update's own transaction when there is one.

So a resident's draft, the case it becomes and the messages it causes commit together, and a
half-finished report survives a restart. (With REDIS_URL set, aiogram's Redis storage is used
instead, for several processes; its writes are then not part of the database transaction.)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, StorageKey
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.db import while_reachable
from storage.models import FsmState

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

        async def op(session: AsyncSession) -> None:
            row = await session.get(FsmState, _key(key))
            if row is None:
                if value is None:
                    return
                row = FsmState(key=_key(key), data={}, updated_at=datetime.now(UTC))
                session.add(row)
            row.state = value
            row.updated_at = datetime.now(UTC)
            await self._forget_if_empty(session, row)

        await self._in_session(op)

    async def get_state(self, key: StorageKey) -> str | None:
        async def op(session: AsyncSession) -> str | None:
            row = await session.get(FsmState, _key(key))
            return row.state if row is not None else None

        return await self._in_session(op)

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        async def op(session: AsyncSession) -> None:
            row = await session.get(FsmState, _key(key))
            if row is None:
                if not data:
                    return
                row = FsmState(key=_key(key), state=None, updated_at=datetime.now(UTC))
                session.add(row)
            row.data = dict(data)
            row.updated_at = datetime.now(UTC)
            await self._forget_if_empty(session, row)

        await self._in_session(op)

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        async def op(session: AsyncSession) -> dict[str, Any]:
            row = await session.get(FsmState, _key(key))
            return dict(row.data or {}) if row is not None else {}

        return await self._in_session(op)

    async def close(self) -> None:
        return None

    @staticmethod
    async def _forget_if_empty(session: AsyncSession, row: FsmState) -> None:
        """No state and no data: nothing to keep."""
        if row.state is None and not row.data:
            if row in session.new:
                session.expunge(row)
            else:
                await session.delete(row)
        await session.flush()
