"""The outbox: Bot API calls written in the transaction that causes them, sent by one sender."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import OutboxMessage

PENDING, SENT, FAILED, SKIPPED = "pending", "sent", "failed", "skipped"


def enqueue(
    session: AsyncSession,
    chat_id: int,
    method: str,
    params: dict[str, Any],
    *,
    now: datetime,
    ref: str | None = None,
    case_id: int | None = None,
) -> OutboxMessage:
    """Add a call to the session; it leaves only if the surrounding transaction commits."""
    row = OutboxMessage(
        chat_id=chat_id,
        method=method,
        params=params,
        ref=ref,
        case_id=case_id,
        status=PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(row)
    return row


async def claim_due(
    session: AsyncSession,
    *,
    now: datetime,
    lease: timedelta,
    limit: int,
    skip_chats: Sequence[int] = (),
) -> list[OutboxMessage]:
    """Claim the oldest due message of each chat, so a chat's messages leave in order.

    The claim is a conditional UPDATE on `claimed_until`, so two senders never take the same row.
    """
    head = (
        select(func.min(OutboxMessage.id))
        .where(OutboxMessage.status == PENDING)
        .group_by(OutboxMessage.chat_id)
    ).scalar_subquery()
    candidates = (
        await session.scalars(
            select(OutboxMessage.id)
            .where(
                OutboxMessage.id.in_(head),
                OutboxMessage.chat_id.not_in(skip_chats),
                OutboxMessage.next_attempt_at <= now,
                or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < now),
            )
            .order_by(OutboxMessage.id)
            .limit(limit)
        )
    ).all()
    if not candidates:
        return []
    claimed = (
        await session.scalars(
            update(OutboxMessage)
            .where(
                and_(
                    OutboxMessage.id.in_(candidates),
                    OutboxMessage.status == PENDING,
                    or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < now),
                )
            )
            .values(claimed_until=now + lease)
            .returning(OutboxMessage)
            .execution_options(synchronize_session=False)
        )
    ).all()
    return sorted(claimed, key=lambda row: row.id)


async def renew(
    session: AsyncSession, ids: Sequence[int], *, now: datetime, lease: timedelta
) -> None:
    """Extend the claim on messages still being sent (claimed and pending)."""
    await session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.id.in_(ids),
            OutboxMessage.status == PENDING,
            OutboxMessage.claimed_until.is_not(None),
        )
        .values(claimed_until=now + lease)
        .execution_options(synchronize_session=False)
    )


async def release(session: AsyncSession, ids: Sequence[int]) -> None:
    """Give claimed messages back unsent (their chat must wait for its rate limit)."""
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(ids))
        .values(claimed_until=None)
        .execution_options(synchronize_session=False)
    )


async def sent_message_id(session: AsyncSession, chat_id: int, ref: str) -> tuple[str, int | None]:
    """Status and Telegram message id of the newest message sent to `chat_id` under `ref`."""
    row = (
        await session.execute(
            select(OutboxMessage.status, OutboxMessage.telegram_message_id)
            .where(OutboxMessage.chat_id == chat_id, OutboxMessage.ref == ref)
            .order_by(OutboxMessage.id.desc())
            .limit(1)
        )
    ).first()
    if row is None:
        return SKIPPED, None
    return row[0], row[1]
