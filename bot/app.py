"""Assembly: Bot, Dispatcher, routers, middlewares, sender; polling."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.exceptions import TelegramAPIError
from aiogram.fsm.storage.base import BaseEventIsolation, BaseStorage
from aiogram.methods import TelegramMethod
from aiogram.types import BotCommand, ErrorEvent, Update
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.context import AppContext
from bot.domain.district import load_district
from bot.domain.intake import Routed
from bot.domain.routing.classify import Classifier, TextModel
from bot.domain.routing.locate import Locator
from bot.health import CTX, healthz
from bot.i18n import language_from_telegram, t
from bot.jobs.scheduler import start_scheduler
from bot.telegram.abuse import FloodControl
from bot.telegram.delivery import Sender
from bot.telegram.fsm import LocalEventIsolation, RedisChatLocks, SqlStorage
from bot.telegram.handlers import root_router
from bot.telegram.menus import EVERYONE, MENU_LANGUAGES, follow_role_changes, menu
from bot.telegram.middlewares import HoldButtonAnswers, UnitOfWork
from bot.telegram.notify import announce, assignee_unreachable
from bot.telegram.outgoing import Outbox
from storage.db import connection_lost, make_engine, make_sessionmaker

log = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"

# Wherever the bot is assembled (polling, webhook, the sandbox, Open311's server), a role
# granted or removed queues the person's new menu; the domain itself knows no Telegram.
follow_role_changes()


def make_bot(settings: Settings, token: str | None = None) -> Bot:
    """A Bot that talks to `TELEGRAM_API_URL` for API calls and file downloads alike."""
    api = TelegramAPIServer.from_base(settings.telegram_api_url)
    bot = Bot(token or settings.bot_token, session=AiohttpSession(api=api))
    bot.session.middleware(HoldButtonAnswers())
    return bot


def make_fsm(ctx: AppContext) -> tuple[BaseStorage, BaseEventIsolation]:
    """Redis for several processes; otherwise the database, in each update's transaction."""
    if ctx.settings.redis_url:
        from aiogram.fsm.storage.redis import RedisStorage

        storage = RedisStorage.from_url(ctx.settings.redis_url)
        return storage, RedisChatLocks(storage.redis)
    return SqlStorage(ctx.sessionmaker, retry_s=ctx.settings.db_retry_s), LocalEventIsolation()


def make_dispatcher(ctx: AppContext, settings: Settings) -> Dispatcher:
    storage, isolation = make_fsm(ctx)
    dp = Dispatcher(storage=storage, events_isolation=isolation, ctx=ctx)
    dp.update.outer_middleware(UnitOfWork())
    dp.update.outer_middleware(FloodControl.for_settings(settings))  # inside: person known
    dp.include_router(root_router())
    dp.errors.register(_on_error)
    return dp


async def _on_error(event: ErrorEvent, ctx: AppContext) -> Any:
    """Log the failure and tell the person, so nobody is left waiting on a silent bot."""
    if connection_lost(event.exception):
        # The database stayed away longer than DB_RETRY_S. Unhandled: a webhook answers 500
        # and Telegram delivers the update again later; polling logs it as lost.
        log.error("update %s not applied: the database is unreachable", event.update.update_id)
        return UNHANDLED
    log.exception("update %s failed", event.update.update_id, exc_info=event.exception)
    user = event.update.event.from_user if hasattr(event.update.event, "from_user") else None
    if user is None or user.is_bot:
        return True
    chat = getattr(event.update.event, "chat", None)
    chat_id = chat.id if chat is not None else user.id
    lang = language_from_telegram(user.language_code)
    if event.update.callback_query is not None:
        # The handler's own answer was dropped with its transaction; stop the spinner.
        with contextlib.suppress(TelegramAPIError):
            await event.update.callback_query.answer(t(lang, "error.internal"), show_alert=True)
    async with ctx.sessionmaker() as session, session.begin():
        Outbox(session, ctx.clock.now()).chat(chat_id, lang).say("error.internal")
    ctx.sender.wake()
    return True


@asynccontextmanager
async def app_context(
    settings: Settings, bot: Bot, clock: Clock | None = None, **sender_options: Any
) -> AsyncIterator[AppContext]:
    """Everything a running bot needs; the database must already be migrated."""
    district = load_district(settings.district_dir)
    engine = make_engine(settings.database_url)
    sessionmaker = make_sessionmaker(engine)
    clock = clock or SystemClock()
    media_dir = settings.media_dir.resolve()
    media_dir.mkdir(parents=True, exist_ok=True)
    sender_options.setdefault("lease", timedelta(seconds=settings.outbox_lease_s))
    if settings.outbox_lease_s < settings.db_retry_s:
        log.warning(
            "OUTBOX_LEASE_S (%s) is below DB_RETRY_S (%s): a message sent just as the database "
            "goes away for longer than the lease may be sent twice",
            settings.outbox_lease_s,
            settings.db_retry_s,
        )
    sender_options.setdefault("db_retry_s", settings.db_retry_s)
    sender = Sender(bot, sessionmaker, clock, media_dir, **sender_options)
    model = TextModel.load(settings.classifier_model) if settings.classifier_model else None
    classifier = Classifier(
        list(district.categories.values()), model, threshold=settings.classifier_threshold
    )
    ctx = AppContext(
        settings=settings,
        clock=clock,
        engine=engine,
        sessionmaker=sessionmaker,
        district=district,
        locator=Locator(district),
        classifier=classifier,
        sender=sender,
        media_dir=media_dir,
    )
    sender.on_unreachable = partial(assignee_unreachable, ctx)
    ctx.announcer = partial(announce_in_telegram, ctx)
    try:
        yield ctx
    finally:
        sender.stop()
        await engine.dispose()


async def announce_in_telegram(
    ctx: AppContext, session: AsyncSession, routed: Routed, now: datetime
) -> None:
    """The app's announcer (`bot.domain.intake.Announcer`): the reporter's message and the
    cards, to the outbox in `session`'s transaction, whichever channel the report came by."""
    await announce(ctx, Outbox(session, now), routed, routed.reporter)


async def set_commands(bot: Bot) -> None:
    """The default menu, everyone's: a person with a role has their own (bot/telegram/menus.py)."""
    for lang, code in MENU_LANGUAGES:
        commands = [BotCommand.model_validate(item) for item in menu(lang, EVERYONE)]
        await bot.set_my_commands(commands, language_code=code)


async def run_polling(settings: Settings, bot: Bot) -> None:
    """Run until cancelled: the sender drains the outbox while the dispatcher polls."""
    async with app_context(settings, bot) as ctx:
        dp = make_dispatcher(ctx, settings)
        await set_commands(bot)
        sender_task = asyncio.create_task(ctx.sender.run(), name="outbox-sender")
        scheduler = start_scheduler(ctx)
        try:
            # Updates beyond the limit wait at Telegram, not for a database connection.
            await dp.start_polling(
                bot, handle_signals=False, tasks_concurrency_limit=settings.update_concurrency
            )
        finally:
            scheduler.shutdown(wait=False)
            ctx.sender.stop()
            await sender_task
            await dp.storage.close()
            await bot.session.close()


class BoundedRequestHandler(SimpleRequestHandler):
    """Webhook updates: the secret checked first, then at most `limit` handled at once, and
    200 answered only for an update that was handled.

    Each update in hand holds a database connection for a while: without a bound, a burst
    starves the pool and updates fail waiting for one (seen at 1,000 residents at once). The
    secret is checked before a turn is taken, so forged posts cannot keep real ones waiting.

    Telegram waits about a minute for the answer. aiogram answers 200 after 55 s with the
    update still in hand, which was lost if its handling then failed (a database outage of
    `DB_RETRY_S`). Here an update not handled within `answer_within_s` (waiting for a turn, for
    its chat, for the database) is answered 503 while its handling goes on: Telegram delivers
    it again, and the redelivery waits for that same work, or finds it applied.
    """

    def __init__(self, *args: Any, limit: int, answer_within_s: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._turns = asyncio.Semaphore(limit)
        self._answer_within_s = answer_within_s
        self._in_hand: dict[int, asyncio.Task[Any]] = {}

    async def handle(self, request: web.Request) -> web.Response:
        bot = await self.resolve_bot(request)
        if not self.verify_secret(request.headers.get(SECRET_HEADER, ""), bot):
            return web.Response(body="Unauthorized", status=401)
        raw = await request.json(loads=bot.session.json_loads)
        update = Update.model_validate(raw, context={"bot": bot})
        try:
            async with asyncio.timeout(self._answer_within_s):
                result = await asyncio.shield(self._work_on(bot, update))
        except TimeoutError:
            log.warning(
                "update %s still in hand after %s s: answered 503, Telegram delivers it again",
                update.update_id,
                self._answer_within_s,
            )
            return web.Response(status=503, text="Not handled yet")
        except Exception as exc:
            log.warning("update %s failed (%s): answered 500", update.update_id, exc)
            return web.Response(status=500, text="Not handled")
        method = result if isinstance(result, TelegramMethod) else None
        return web.Response(body=self._build_response_writer(bot=bot, result=method))

    def _work_on(self, bot: Bot, update: Update) -> asyncio.Task[Any]:
        """The handling of `update`: the one already in hand for an earlier delivery, or new."""
        work = self._in_hand.get(update.update_id)
        if work is None:
            work = asyncio.create_task(self._in_turn(bot, update))
            self._in_hand[update.update_id] = work
            work.add_done_callback(lambda _: self._in_hand.pop(update.update_id, None))
        return work

    async def _in_turn(self, bot: Bot, update: Update) -> Any:
        async with self._turns:
            return await self.dispatcher.feed_update(bot, update, **self.data)

    async def close(self) -> None:
        """On shutdown: whatever is still in hand was answered 503 and will come again."""
        for work in self._in_hand.values():
            work.cancel()
        await asyncio.gather(*self._in_hand.values(), return_exceptions=True)
        await super().close()


async def run_webhook(settings: Settings, bot: Bot) -> None:
    """Serve Telegram's webhook (and /healthz) until cancelled; any number of processes.

    Updates are handled before the answer, so Telegram retries one whose handling failed or
    is not over by `WEBHOOK_ANSWER_S`; the update id recorded with its effects makes the retry
    harmless.
    """
    secret = settings.require_webhook_secret()
    assert settings.webhook_url is not None
    path = urlsplit(settings.webhook_url).path or "/"
    async with app_context(settings, bot) as ctx:
        dp = make_dispatcher(ctx, settings)
        app = web.Application()
        app[CTX] = ctx
        app.router.add_get("/healthz", healthz)
        BoundedRequestHandler(
            dispatcher=dp,
            bot=bot,
            limit=settings.update_concurrency,
            answer_within_s=settings.webhook_answer_s,
            secret_token=secret,
        ).register(app, path=path)
        setup_application(app, dp, bot=bot)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, settings.web_host, settings.web_port)
        await site.start()
        await set_commands(bot)
        await bot.set_webhook(
            settings.webhook_url,
            secret_token=secret,
            allowed_updates=dp.resolve_used_update_types(),
        )
        log.info("webhook listening on %s:%s%s", settings.web_host, settings.web_port, path)
        sender_task = asyncio.create_task(ctx.sender.run(), name="outbox-sender")
        scheduler = start_scheduler(ctx)
        try:
            await asyncio.Event().wait()
        finally:
            scheduler.shutdown(wait=False)
            ctx.sender.stop()
            await sender_task
            await runner.cleanup()
            await dp.storage.close()
            await bot.session.close()
