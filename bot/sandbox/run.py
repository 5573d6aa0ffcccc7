"""Start the whole sandbox: emulator, cast, the real bot polling it, and the web page."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web

from bot.app import make_bot, run_polling
from bot.config import Settings
from bot.district import load_district
from bot.open311.serve import mount_with_own_context
from bot.sandbox.cast import cast_for, enter, load_cast
from bot.sandbox.emulator import TelegramEmulator
from bot.sandbox.web import Sandbox, make_app
from storage.migrate import upgrade

# Any `<digits>:<text>` token is the emulator's one bot.
SANDBOX_TOKEN = "1000000001:SANDBOX-local-emulator"


@dataclass
class Running:
    url: str
    sandbox: Sandbox
    bot_task: asyncio.Task[None]


@asynccontextmanager
async def running_sandbox(
    settings: Settings, *, host: str = "127.0.0.1", port: int = 8080
) -> AsyncIterator[Running]:
    """Everything up and serving until the block ends; `port` 0 picks a free one.

    The bot is started with `run_polling`, as `python -m bot run` starts it against Telegram,
    only pointed at the emulator (on a free port, so it never clashes with anything).
    """
    district = load_district(settings.district_dir)
    await upgrade(settings.database_url)
    emulator = TelegramEmulator()
    api_url = await emulator.start()
    runner: web.AppRunner | None = None
    bot_task: asyncio.Task[None] | None = None
    try:
        cast = cast_for(district)
        await load_cast(settings.database_url, district, cast)
        personas = enter(emulator, district, cast)
        local = settings.model_copy(update={"telegram_api_url": api_url})
        bot_task = asyncio.create_task(
            run_polling(local, make_bot(local, SANDBOX_TOKEN)), name="sandbox-bot"
        )
        sandbox = Sandbox(emulator, district, cast, personas)
        app = make_app(sandbox)
        mount_with_own_context(app, local, make_bot(local, SANDBOX_TOKEN))  # at /open311/v2/
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        bound = runner.addresses[0][1]
        shown = "127.0.0.1" if host in ("", "0.0.0.0") else host
        yield Running(f"http://{shown}:{bound}/", sandbox, bot_task)
    finally:
        if runner is not None:
            await runner.cleanup()
        if bot_task is not None:
            bot_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await bot_task
        await emulator.stop()


async def serve_forever(settings: Settings, *, host: str, port: int) -> None:
    """The CLI's sandbox: print where to look, then run until the bot stops or Ctrl+C."""
    async with running_sandbox(settings, host=host, port=port) as running:
        print(f"Suipai sandbox: open {running.url} in a browser (Ctrl+C stops it)", flush=True)
        # Scripts (and the browser test) may act as the bot there, e.g. to try a message.
        api = f"{running.sandbox.emulator.base_url}/bot{SANDBOX_TOKEN}/"
        print(f"Its emulated Telegram Bot API: {api}<method>", flush=True)
        await running.bot_task
