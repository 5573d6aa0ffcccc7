"""Context for handlers: one database transaction per update, the person, their outbox."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import TelegramAPIError
from aiogram.fsm.context import FSMContext
from aiogram.methods import AnswerCallbackQuery, TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import TelegramObject, Update, User
from sqlalchemy.exc import IntegrityError

from bot.context import AppContext
from bot.i18n import language_from_telegram
from bot.telegram.fsm import SqlStorage, current_session
from bot.telegram.outgoing import Outbox
from storage.db import while_reachable
from storage.models import ProcessedUpdate
from storage.people import get_or_create_person

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]

# Button answers a handler gave during the attempt in progress; sent once it has committed.
_held_answers: ContextVar[list[AnswerCallbackQuery] | None] = ContextVar(
    "held_answers", default=None
)


class UnitOfWork(BaseMiddleware):
    """Runs the handler in one transaction with the update's id, then wakes the sender.

    The update id is inserted in the same transaction as the handler's effects, so an update
    delivered twice (a webhook retry, two processes) is applied once. The person is saved in a
    short transaction of its own first, so that a handler can download a photo before it
    touches the database (SQLite would otherwise hold its write lock meanwhile).

    If the database connection is lost (a restart, a failover), the transaction rolled back
    whole, so the update is applied again from the start once the server answers, for up to
    `DB_RETRY_S`. A button's answer is held until its transaction commits: the person sees
    the outcome that was stored, once, whatever attempt stored it.
    """

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        ctx: AppContext = data["ctx"]
        draft = await _Draft.of(data.get("state"))
        held: list[AnswerCallbackQuery] = []

        async def attempt() -> Any:
            held.clear()
            token = _held_answers.set(held)
            try:
                # A fresh copy each attempt: handlers and inner middlewares add to `data`.
                return await self._apply(handler, event, dict(data))
            finally:
                _held_answers.reset(token)

        update_id = event.update_id if isinstance(event, Update) else None
        result = await while_reachable(
            attempt, ctx.settings.db_retry_s, f"update {update_id}", before_retry=draft.restore
        )
        await _answer(data["bot"], held)
        ctx.sender.wake()
        return result

    async def _apply(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
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
        return result


class _Draft:
    """The conversation as the update found it, when it is kept outside the database.

    Redis storage is written at once, not with the transaction: an attempt that failed may
    have changed it, so it is put back before the update is applied again (otherwise a photo
    would be added to the draft twice).
    """

    def __init__(self, state: FSMContext | None, saved: tuple[str | None, dict[str, Any]]) -> None:
        self._state, self._saved = state, saved

    @classmethod
    async def of(cls, state: FSMContext | None) -> _Draft:
        if state is None or isinstance(state.storage, SqlStorage):
            return cls(None, (None, {}))  # rolled back with the transaction
        return cls(state, (await state.get_state(), await state.get_data()))

    async def restore(self) -> None:
        if self._state is not None:
            await self._state.set_state(self._saved[0])
            await self._state.set_data(self._saved[1])


class HoldButtonAnswers(BaseRequestMiddleware):
    """Keeps a handler's answerCallbackQuery until its update's transaction has committed."""

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Any:
        held = _held_answers.get()
        if held is not None and isinstance(method, AnswerCallbackQuery):
            held.append(method)
            return True
        return await make_request(bot, method)


async def _answer(bot: Bot, answers: list[AnswerCallbackQuery]) -> None:
    for method in answers:
        try:
            await bot(method)
        except TelegramAPIError as exc:
            # Telegram forgets a query after some seconds (a long database outage); the
            # person's chat still shows the outcome through the outbox.
            log.warning("button answer not shown: %s", exc)


async def _applied_elsewhere(ctx: AppContext, update_id: int) -> bool:
    async with ctx.sessionmaker() as session:
        return await session.get(ProcessedUpdate, update_id) is not None
