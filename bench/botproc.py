"""The real bot in a process of its own, polling the emulator: `python -m bench.botproc CONFIG`.

CONFIG is JSON: api_url, database_url, district_dir, media_dir, limits ("production": the
sender's default RateLimiter, as `python -m bot run` has it; "lifted": a limiter that never
waits, to measure what the process itself can take). It runs what `bot.app.run_polling` runs
(minus setMyCommands) until SIGTERM: polling, the outbox sender and the scheduler.

With BENCH_HOLD_RESPONSE_MODELS=1 in the environment it first applies the fix proposed in
bench/RESULTS.md (commit b786082, reverted pending review): hold aiogram's `Response[T]`
models so that pydantic's weak cache stops rebuilding them after each garbage collection.
The bot itself is unchanged; this only lets the benchmark measure the proposal.

It polls with aiogram's `tasks_concurrency_limit` set to the bot's UPDATE_CONCURRENCY, as
`python -m bot run` does since 2b0f0be (no bound on earlier commits, which have no such
setting); BENCH_TASKS_LIMIT=K sets K instead (how the bound was measured before 2b0f0be).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from bot.app import app_context, make_bot, make_dispatcher
from bot.clock import SystemClock
from bot.config import Settings
from bot.jobs.scheduler import start_scheduler
from bot.telegram.delivery import RateLimiter

TOKEN = "123456789:BENCH-token-for-the-emulator"


_held: dict[Any, type[Any]] = {}
# The methods b786082 held, as named there.
PROPOSAL_METHODS = (
    "AnswerCallbackQuery",
    "DeleteMessage",
    "DeleteWebhook",
    "EditMessageCaption",
    "EditMessageReplyMarkup",
    "EditMessageText",
    "GetFile",
    "GetMe",
    "GetUpdates",
    "SendDocument",
    "SendLocation",
    "SendMediaGroup",
    "SendMessage",
    "SendPhoto",
    "SendVenue",
    "SetMyCommands",
    "SetWebhook",
)


def hold_response_models() -> None:
    """The proposal of b786082 (bot/api_types.py there): build once and hold `Response[T]`
    for the result type of each Bot API method the bot calls."""
    from aiogram import methods
    from aiogram.methods.base import Response

    for name in PROPOSAL_METHODS:
        returning = getattr(methods, name).__returning__
        if returning not in _held:
            _held[returning] = Response[returning]  # type: ignore[valid-type]


def lifted_limiter() -> RateLimiter:
    """A limiter that never waits: Telegram's outgoing limits taken away."""
    big = 10**9
    return RateLimiter(
        asyncio.get_running_loop().time,
        overall_per_s=big,
        chat_burst=big,
        chat_interval_s=1e-9,
        group_per_min=big,
    )


async def serve(config: dict[str, Any]) -> None:
    if os.environ.get("BENCH_HOLD_RESPONSE_MODELS") == "1":
        hold_response_models()
    settings = Settings(
        bot_token=TOKEN,
        telegram_api_url=config["api_url"],
        database_url=config["database_url"],
        district_dir=Path(config["district_dir"]),
        media_dir=Path(config["media_dir"]),
        log_level="WARNING",
        _env_file=None,
    )
    bot = make_bot(settings)
    options: dict[str, Any] = {}
    if config.get("limits", "production") == "lifted":
        options["limiter"] = lifted_limiter()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with app_context(settings, bot, SystemClock(), **options) as ctx:
        dp = make_dispatcher(ctx, settings)
        # As `bot run` polls: UPDATE_CONCURRENCY where the bot has it (2b0f0be on), else no
        # bound; BENCH_TASKS_LIMIT overrides either.
        limit = os.environ.get("BENCH_TASKS_LIMIT")
        bound = int(limit) if limit else getattr(settings, "update_concurrency", None)
        polling = asyncio.create_task(
            dp.start_polling(bot, handle_signals=False, tasks_concurrency_limit=bound)
        )
        sending = asyncio.create_task(ctx.sender.run())
        scheduler = start_scheduler(ctx)
        print("ready", flush=True)
        await stop.wait()
        scheduler.shutdown(wait=False)
        ctx.sender.stop()
        await dp.stop_polling()
        await asyncio.gather(polling, sending, return_exceptions=True)
        await dp.storage.close()
    await bot.session.close()


def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(serve(json.loads(sys.argv[1])))


if __name__ == "__main__":
    main()
