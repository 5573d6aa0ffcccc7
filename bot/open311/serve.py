"""The Open311 API on its own (`python -m bot open311 --port P`), beside or without the bot.

It needs what the bot needs to take a report: the district, the database and an outbox
sender, so that the cards a new case causes reach the chiefs from this process too (as in
`bot.app.run_polling`). Without BOT_TOKEN nothing is sent from here: the messages wait in the
outbox for the bot's own sender (`python -m bot run` on the same database).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiogram import Bot
from aiohttp import web

from bot.app import app_context, make_bot
from bot.config import Settings
from bot.open311.app import ContextSource, make_app

PREFIX = "/open311/v2"
_NO_TOKEN = "1:open311-without-a-bot-token"


def mount(root: web.Application, api: web.Application) -> None:
    """Put the API under /open311/v2/ of a web server's application."""
    root.add_subapp(PREFIX + "/", api)


def mount_with_own_context(root: web.Application, settings: Settings, bot: Bot) -> None:
    """Mount the API in a server that has no AppContext of its own (the sandbox page).

    The context is opened when the server starts and closed when it stops. Its sender is not
    run: the bot running beside it on the same database sends what the API queues.
    """
    source = ContextSource()

    async def context(_app: web.Application) -> AsyncIterator[None]:
        try:
            async with app_context(settings, bot) as ctx:
                source.ctx = ctx
                yield
                source.ctx = None
        finally:
            await bot.session.close()

    root.cleanup_ctx.append(context)
    mount(root, make_app(source))


@asynccontextmanager
async def running_api(settings: Settings, *, host: str, port: int) -> AsyncIterator[str]:
    """Serve until the block ends; yields the API's base URL (`port` 0 picks a free one)."""
    deliver = not settings.uses_emulator
    bot = make_bot(settings, None if deliver else _NO_TOKEN)
    try:
        async with app_context(settings, bot) as ctx:
            sending = asyncio.create_task(ctx.sender.run()) if deliver else None
            root = web.Application()
            mount(root, make_app(ctx))
            runner = web.AppRunner(root, access_log=None, shutdown_timeout=1.0)
            await runner.setup()
            try:
                await web.TCPSite(runner, host, port).start()
                bound = runner.addresses[0][1]
                shown = "127.0.0.1" if host in ("", "0.0.0.0") else host
                yield f"http://{shown}:{bound}{PREFIX}"
            finally:
                await runner.cleanup()
                ctx.sender.stop()
                if sending is not None:
                    with contextlib.suppress(asyncio.CancelledError):
                        await sending
    finally:
        await bot.session.close()
