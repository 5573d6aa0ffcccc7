"""Forgetting a resident (/forget): who they are goes, what they reported stays.

What is done, in one transaction:
- the person's name and username are cleared, `forgotten_at` is set, and from then on the
  middleware no longer stores the name and username Telegram sends (storage/people.py);
- their cases lose every link to them: `reporter_id` and the idempotency key (which holds the
  person id) are cleared, and the timeline events they made lose their `actor_id`. The case
  keeps its number, photos (already stripped of metadata), place, description and timeline,
  so the district's work and its KPIs are unchanged; the resident no longer hears of those
  cases and cannot rate them (they close unrated);
- the copies of messages sent to them (the outbox) are deleted, as they say which cases they
  followed; messages still waiting to be sent lose their case link;
- the classifier's training labels of their cases are deleted: each holds a copy of their
  words, outside the case (bot/domain/labels.py).
The person row itself stays, with the Telegram id only: it is how the bot answers them, and it
keeps a ban a ban. People with a role act for the district and are not forgotten from the chat.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.labels import forget_labels
from storage.models import Case, CaseEvent, OutboxMessage, Person


async def reported(session: AsyncSession, person: Person, states: frozenset[str]) -> int:
    """How many cases the person reported that are in one of `states`."""
    count = await session.scalar(
        select(func.count())
        .select_from(Case)
        .where(Case.reporter_id == person.id, Case.state.in_(states))
    )
    return int(count or 0)


async def forget(session: AsyncSession, person: Person, now: datetime) -> int:
    """Anonymise a resident as described above; returns how many cases were unlinked."""
    if person.roles:
        raise ValueError("a person with a role is not forgotten from the chat")
    await forget_labels(session, person.id)  # while their cases still name them
    unlinked = await session.execute(
        update(Case)
        .where(Case.reporter_id == person.id)
        .values(reporter_id=None, idempotency_key=None)
    )
    await session.execute(
        update(CaseEvent).where(CaseEvent.actor_id == person.id).values(actor_id=None)
    )
    chat = OutboxMessage.chat_id == person.telegram_id
    await session.execute(delete(OutboxMessage).where(chat, OutboxMessage.status != "pending"))
    await session.execute(update(OutboxMessage).where(chat).values(case_id=None))
    person.name = None
    person.username = None
    person.forgotten_at = now
    return int(getattr(unlinked, "rowcount", 0) or 0)
