"""Context for handlers: one database transaction per update, the person, their outbox."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, User

from bot.context import AppContext
from bot.i18n import language_from_telegram
from bot.outgoing import Outbox
from storage.people import get_or_create_person

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class UnitOfWork(BaseMiddleware):
    """Loads the person, runs the handler in one transaction, then wakes the sender.

    The person is saved in a short transaction of its own first, so that a handler can download
    a photo before it touches the database (SQLite would otherwise hold its write lock meanwhile).
    """

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        ctx: AppContext = data["ctx"]
        user: User | None = data.get("event_from_user")
        async with ctx.sessionmaker() as session:
            person = None
            if user is not None and not user.is_bot:
                person = await get_or_create_person(
                    session,
                    user.id,
                    now=ctx.clock.now(),
                    language=language_from_telegram(user.language_code),
                    name=user.full_name,
                    username=user.username,
                )
                if not person.language_chosen and user.language_code:
                    person.language = language_from_telegram(user.language_code)
                await session.commit()
                if person.banned:
                    log.info("ignored an update from banned person %s", person.id)
                    return None
            data["session"] = session
            data["person"] = person
            out = data["out"] = Outbox(session, ctx.clock.now())
            result = await handler(event, data)
            await session.commit()
            await out.committed()
        ctx.sender.wake()
        return result
