"""Banning and lifting a ban: the person's flag, and a `Ban` row saying who, when and why."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Ban, Person
from storage.people import get_or_create_person, person_by_telegram_id

MAX_REASON = 500


class BanRefused(Exception):
    """Not done; `code` names why (self, staff, already, unknown, not_banned)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


async def ban(
    session: AsyncSession, telegram_id: int, *, by: Person, reason: str | None, now: datetime
) -> Person:
    """Ban a Telegram account, also one that has not written yet; its updates are ignored."""
    person = await get_or_create_person(session, telegram_id, now=now, language="zh")
    if person.id == by.id:
        raise BanRefused("self")
    if person.roles:
        raise BanRefused("staff")  # remove their roles first: their cases need a new assignee
    if person.banned:
        raise BanRefused("already")
    person.banned = True
    text = (reason or "").strip()[:MAX_REASON] or None
    session.add(Ban(person_id=person.id, banned_by=by.id, reason=text, created_at=now))
    return person


async def unban(session: AsyncSession, telegram_id: int, *, by: Person, now: datetime) -> Person:
    person = await person_by_telegram_id(session, telegram_id)
    if person is None:
        raise BanRefused("unknown")
    if not person.banned:
        raise BanRefused("not_banned")
    person.banned = False
    current = await session.scalars(
        select(Ban).where(Ban.person_id == person.id, Ban.lifted_at.is_(None))
    )
    for row in current:
        row.lifted_at = now
        row.lifted_by = by.id
    return person
