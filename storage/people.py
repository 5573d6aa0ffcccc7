"""People and their roles, by use."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Person, Role


async def person_by_telegram_id(session: AsyncSession, telegram_id: int) -> Person | None:
    return await session.scalar(select(Person).where(Person.telegram_id == telegram_id))


async def get_or_create_person(
    session: AsyncSession,
    telegram_id: int,
    *,
    now: datetime,
    language: str,
    name: str | None = None,
    username: str | None = None,
) -> Person:
    """The person behind a Telegram account, created on first contact."""
    person = await person_by_telegram_id(session, telegram_id)
    if person is None:
        person = Person(
            telegram_id=telegram_id,
            name=name,
            username=username,
            language=language,
            language_chosen=False,
            unreachable=False,
            banned=False,
            created_at=now,
            roles=[],
        )
        session.add(person)
        await session.flush()
    elif person.forgotten_at is None:  # after /forget, who they are is no longer kept
        person.name = name or person.name
        person.username = username or person.username
    if person.unreachable:
        person.unreachable = False  # they wrote to us, so we can write to them again
    return person


async def people_with_role(
    session: AsyncSession, role: str, scope: str | None = None
) -> list[Person]:
    query = select(Person).join(Role, Role.person_id == Person.id).where(Role.role == role)
    if scope is not None:
        query = query.where(Role.scope == scope)
    return list((await session.scalars(query.order_by(Person.id))).unique())
