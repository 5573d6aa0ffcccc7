"""Start the whole sandbox: emulator, cast, the real bot polling it, and the web page."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from sqlalchemy import delete

from bot.app import make_bot, run_polling
from bot.config import Settings
from bot.domain.district import load_district
from bot.open311.serve import mount_with_own_context
from bot.sandbox.cast import cast_for, enter, load_cast
from bot.sandbox.web import Sandbox, make_app
from storage.db import make_engine
from storage.migrate import upgrade
from storage.models import ProcessedUpdate
from tgemu.emulator import TelegramEmulator

# Any `<digits>:<text>` token is the emulator's one bot.
SANDBOX_TOKEN = "1000000001:SANDBOX-local-emulator"
# Relative to the working directory, as DATABASE_URL's default data/suipai.db is.
SANDBOX_DIR = Path("data/sandbox")
_DB_FILE = "suipai.db"


def own_data(settings: Settings, folder: Path = SANDBOX_DIR) -> Settings:
    """The settings with the sandbox's own database and media under `folder`.

    Whatever DATABASE_URL, MEDIA_DIR, REDIS_URL and BOT_TOKEN say: the cast's roles, the
    outbox the sandbox's bot drains, deadlines and digests would otherwise be a district's.
    """
    return settings.model_copy(
        update={
            "bot_token": "",
            "database_url": f"sqlite+aiosqlite:///{folder / _DB_FILE}",
            "media_dir": folder / "media",
            "redis_url": None,
        }
    )


def reset(folder: Path = SANDBOX_DIR) -> None:
    """Forget everything played: the sandbox's database and media, nothing else in `folder`."""
    for suffix in ("", "-journal", "-wal", "-shm"):
        (folder / f"{_DB_FILE}{suffix}").unlink(missing_ok=True)
    shutil.rmtree(folder / "media", ignore_errors=True)


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
    only pointed at the emulator (on a free port, so it never clashes with anything). It uses
    the database `settings` name: the command line passes `own_data(...)`, tests their own.
    """
    district = load_district(settings.district_dir)
    await upgrade(settings.database_url)
    await _forget_updates(settings.database_url)
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
        app = make_app(sandbox, hosts=_names(host))
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


async def _forget_updates(database_url: str) -> None:
    """A new emulator numbers its updates from 1 again: the ids the bot recorded as handled
    last time (to ignore Telegram's redeliveries) would have it ignore the new ones."""
    engine = make_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(delete(ProcessedUpdate))
    finally:
        await engine.dispose()


def _names(host: str) -> frozenset[str]:
    """The host name the page is served under besides IP addresses and localhost, if any."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return frozenset({host}) if host else frozenset()
    return frozenset()


async def serve_forever(settings: Settings, *, host: str, port: int, fresh: bool = False) -> None:
    """The CLI's sandbox, on its own data: say so and where to look, then run until the bot
    stops or Ctrl+C. `fresh` forgets what was played before."""
    if fresh:
        reset()
    async with running_sandbox(own_data(settings), host=host, port=port) as running:
        print(
            f"Suipai sandbox (the bot against a built-in Telegram emulator) on its own data in "
            f"{SANDBOX_DIR}/, not DATABASE_URL (python -m bot sandbox --reset starts afresh): "
            f"open {running.url} in a browser, Ctrl+C stops it. To connect a real bot, set "
            'BOT_TOKEN in .env (README, "Connecting a real bot").',
            flush=True,
        )
        # Scripts (and the browser test) may act as the bot there, e.g. to try a message.
        api = f"{running.sandbox.emulator.base_url}/bot{SANDBOX_TOKEN}/"
        print(f"Its emulated Telegram Bot API: {api}<method>", flush=True)
        await running.bot_task
