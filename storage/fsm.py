"""Conversation state rows (`fsm_states`): under each key a state name and its data (a
resident's draft), read and written in the caller's session.

Plain persistence: which transaction a row is written in, and how a chat's key is made, is the
Telegram layer's business (bot/telegram/fsm.py, aiogram's storage on top of these).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import FsmState


async def get_state(session: AsyncSession, key: str) -> str | None:
    row = await session.get(FsmState, key)
    return row.state if row is not None else None


async def get_data(session: AsyncSession, key: str) -> dict[str, Any]:
    row = await session.get(FsmState, key)
    return dict(row.data or {}) if row is not None else {}


async def set_state(session: AsyncSession, key: str, state: str | None) -> None:
    row = await session.get(FsmState, key)
    if row is None:
        if state is None:
            return
        row = FsmState(key=key, data={}, updated_at=datetime.now(UTC))
        session.add(row)
    row.state = state
    row.updated_at = datetime.now(UTC)
    await _forget_if_empty(session, row)


async def set_data(session: AsyncSession, key: str, data: Mapping[str, Any]) -> None:
    row = await session.get(FsmState, key)
    if row is None:
        if not data:
            return
        row = FsmState(key=key, state=None, updated_at=datetime.now(UTC))
        session.add(row)
    row.data = dict(data)
    row.updated_at = datetime.now(UTC)
    await _forget_if_empty(session, row)


async def _forget_if_empty(session: AsyncSession, row: FsmState) -> None:
    """No state and no data: nothing to keep."""
    if row.state is None and not row.data:
        if row in session.new:
            session.expunge(row)
        else:
            await session.delete(row)
    await session.flush()
