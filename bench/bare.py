"""The baseline bot: aiogram and nothing else, one sendMessage per update.

`python -m bench.bare API_URL` polls the emulator until SIGTERM. It answers every message and
every button press with one short message: the least any bot built on aiogram does per update.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import CallbackQuery, Message

from bench.botproc import TOKEN


async def serve(api_url: str) -> None:
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(api_url)))
    dp = Dispatcher()

    @dp.message()
    async def on_message(message: Message) -> None:
        await message.answer("ok")

    @dp.callback_query()
    async def on_press(query: CallbackQuery) -> None:
        await bot.send_message(query.from_user.id, "ok")

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    polling = asyncio.create_task(dp.start_polling(bot, handle_signals=False))
    print("ready", flush=True)
    await stop.wait()
    await dp.stop_polling()
    await asyncio.gather(polling, return_exceptions=True)
    await bot.session.close()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1]))
