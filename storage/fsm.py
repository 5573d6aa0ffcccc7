"""FSM storage in the database, written in the update's own transaction when there is one.

So a resident's draft, the case it becomes and the messages it causes commit together, and a
half-finished report survives a restart. (With REDIS_URL set, aiogram's Redis storage is used
instead, for several processes; its writes are then not part of the database transaction.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, StorageKey
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import FsmState

# The session of the update being handled, set by the unit-of-work middleware.
current_session: ContextVar[AsyncSession | None] = ContextVar("current_session", default=None)


def _key(key: StorageKey) -> str:
    parts = (key.bot_id, key.chat_id, key.user_id, key.thread_id, key.business_connection_id)
    return ":".join("" if p is None else str(p) for p in parts) + f":{key.destiny}"


class SqlStorage(BaseStorage):
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[AsyncSession]:
        session = current_session.get()
        if session is not None:
            yield session
            return
        async with self._sessionmaker() as own, own.begin():
            yield own

    async def _row(self, session: AsyncSession, key: StorageKey) -> FsmState | None:
        return await session.get(FsmState, _key(key))

    async def set_state(self, key: StorageKey, state: str | State | None = None) -> None:
        value = state.state if isinstance(state, State) else state
        async with self._session() as session:
            row = await self._row(session, key)
            if row is None:
                if value is None:
                    return
                row = FsmState(key=_key(key), data={}, updated_at=datetime.now(UTC))
                session.add(row)
            row.state = value
            row.updated_at = datetime.now(UTC)
            await self._forget_if_empty(session, row)

    async def get_state(self, key: StorageKey) -> str | None:
        async with self._session() as session:
            row = await self._row(session, key)
            return row.state if row is not None else None

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        async with self._session() as session:
            row = await self._row(session, key)
            if row is None:
                if not data:
                    return
                row = FsmState(key=_key(key), state=None, updated_at=datetime.now(UTC))
                session.add(row)
            row.data = dict(data)
            row.updated_at = datetime.now(UTC)
            await self._forget_if_empty(session, row)

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        async with self._session() as session:
            row = await self._row(session, key)
            return dict(row.data or {}) if row is not None else {}

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
