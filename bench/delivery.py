"""Benchmark 2, delivery: drain 3,000 messages to 300 chats through the real `Sender`.

Production limits (the sender's default `RateLimiter`), the real clock (asyncio's loop time,
as in production: a simulated clock would hide the network jitter the limiter must absorb),
and an emulator that refuses with 429 any send that breaks Telegram's limits, counting it.
Baseline: Telegram's 30 messages/s overall limit.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.databases import fresh_database
from bench.emulated import TimedEmulator
from bench.report import Results, Row
from bot.app import make_bot
from bot.clock import SystemClock
from bot.config import Settings
from bot.telegram.delivery import Sender
from storage.db import make_engine, make_sessionmaker
from storage.outbox import enqueue

SECTION = "2 delivery"
TOKEN = "123456789:BENCH-delivery"
CHAT_BASE = 40_000_000
LIMIT_PER_S = 30


async def _fill(database_url: str, chats: int, messages: int) -> None:
    engine = make_engine(database_url)
    now = datetime.now(UTC)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            for i in range(messages):
                chat = CHAT_BASE + i % chats
                params = {"text": f"消息 {i}：案件进展通知", "parse_mode": "HTML"}
                enqueue(session, chat, "sendMessage", params, now=now)
    finally:
        await engine.dispose()


async def drain(
    workdir: Path, backend: str, chats: int, messages: int
) -> tuple[float, int, dict[str, int]]:
    """(messages/s from the first send to the last, 429s answered, breaches by rule)."""
    async with fresh_database(backend, workdir) as url:
        await _fill(url, chats, messages)
        emu = TimedEmulator(enforce_limits=True)
        api = await emu.start()
        for i in range(chats):
            emu.user(CHAT_BASE + i).chat.started = True
        settings = Settings(bot_token=TOKEN, telegram_api_url=api, database_url=url, _env_file=None)
        bot = make_bot(settings)
        engine = make_engine(url)
        sender = Sender(bot, make_sessionmaker(engine), SystemClock(), workdir)
        task = asyncio.create_task(sender.run())
        try:
            started = time.perf_counter()

            def delivered() -> bool:
                return sum(1 for _at, _chat, m in emu.sent if m == "sendMessage") >= messages

            if not await emu.wait_for(delivered, 30 + 3 * messages / LIMIT_PER_S):
                raise RuntimeError(f"only {len(emu.sent)} of {messages} delivered")
            first, last = emu.sent[0][0], emu.sent[-1][0]
            refused = emu.violations.total
            by_rule = {k: v for k, v in emu.violations.as_dict().items() if v}
        finally:
            sender.stop()
            await task
            await bot.session.close()
            await engine.dispose()
            await emu.stop()
    print(f"    {messages} in {last - started:.1f} s after start", flush=True)
    return (messages - 1) / (last - first), refused, by_rule


async def bench_delivery(
    results: Results, workdir: Path, *, backends: list[str], chats: int, messages: int
) -> None:
    for backend in backends:
        print(f"  delivery: {messages} messages to {chats} chats, {backend}", flush=True)
        rate, refused, by_rule = await drain(workdir, backend, chats, messages)
        subject = f"{messages:,} messages to {chats} chats, {backend}"
        rules = ", ".join(f"{k} {v}" for k, v in by_rule.items())
        results.add(
            Row(
                SECTION,
                subject,
                "messages/s achieved",
                rate,
                "/s",
                "Telegram's overall limit",
                LIMIT_PER_S,
                "real clock",
            ),
            Row(
                SECTION,
                subject,
                "limit violations seen by the emulator",
                refused,
                "",
                "Telegram's limits",
                0,
                f"must be 0{'; ' + rules if rules else ''}",
            ),
        )
    results.how[SECTION] = "python -m bench --only delivery [--backends sqlite|postgresql]"
