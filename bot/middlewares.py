"""Context for handlers: one database transaction per update, the person, their outbox."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update, User
from sqlalchemy.exc import IntegrityError

from bot.context import AppContext
from bot.i18n import language_from_telegram
from bot.outgoing import Outbox
from storage.fsm import current_session
from storage.models import ProcessedUpdate
from storage.people import get_or_create_person

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class UnitOfWork(BaseMiddleware):
    """Runs the handler in one transaction with the update's id, then wakes the sender.

    The update id is inserted in the same transaction as the handler's effects, so an update
    delivered twice (a webhook retry, two processes) is applied once. The person is saved in a
    short transaction of its own first, so that a handler can download a photo before it
    touches the database (SQLite would otherwise hold its write lock meanwhile).
    """

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        ctx: AppContext = data["ctx"]
        user: User | None = data.get("event_from_user")
        update_id = event.update_id if isinstance(event, Update) else None
        async with ctx.sessionmaker() as session:
            seen = None if update_id is None else await session.get(ProcessedUpdate, update_id)
            if seen is not None:
                log.info("update %s was applied before; skipped", update_id)
                return None
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
            if person is not None and person.banned:
                log.info("ignored an update from banned person %s", person.id)
                return None
            data["session"] = session
            data["person"] = person
            out = data["out"] = Outbox(session, ctx.clock.now())
            token = current_session.set(session)
            try:
                result = await handler(event, data)
                if update_id is not None:
                    session.add(ProcessedUpdate(update_id=update_id, processed_at=out.now))
                await session.commit()
            except IntegrityError:
                if update_id is None or not await _applied_elsewhere(ctx, update_id):
                    raise
                log.info("update %s was applied by another process; rolled back", update_id)
                return None
            finally:
                current_session.reset(token)
            await out.committed()
        ctx.sender.wake()
        return result


async def _applied_elsewhere(ctx: AppContext, update_id: int) -> bool:
    async with ctx.sessionmaker() as session:
        return await session.get(ProcessedUpdate, update_id) is not None
