"""The real bot, unmodified, polling the Telegram emulator over HTTP; helpers to act as people."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiogram import Dispatcher
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import app_context, make_bot, make_dispatcher
from bot.clock import FakeClock
from bot.config import SAMPLE_DISTRICT_DIR, Settings
from bot.context import AppContext
from bot.telegram.delivery import RateLimiter
from storage.models import Case, CaseEvent, OutboxMessage, Photo
from tgemu.emulator import TelegramEmulator

TOKEN = "123456789:TEST-token-for-the-emulator"


@dataclass
class Harness:
    emulator: TelegramEmulator
    ctx: AppContext
    dp: Dispatcher
    clock: FakeClock

    @property
    def district(self) -> Any:
        return self.ctx.district

    def session(self) -> AsyncSession:
        return self.ctx.sessionmaker()

    async def count(self, model: type[Any]) -> int:
        async with self.session() as session:
            return int(await session.scalar(select(func.count()).select_from(model)) or 0)

    async def cases(self) -> Sequence[Case]:
        async with self.session() as session:
            return (await session.scalars(select(Case).order_by(Case.id))).all()

    async def events(self, case_id: int) -> Sequence[CaseEvent]:
        async with self.session() as session:
            return (
                await session.scalars(
                    select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)
                )
            ).all()

    async def nothing_stored(self) -> bool:
        return await self.count(Case) == 0 and await self.count(Photo) == 0

    async def outbox_drained(self) -> bool:
        async with self.session() as session:
            pending = await session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.status == "pending")
            )
        return pending == 0


def settings_for(database_url: str, media_dir: Path, api_url: str, **extra: Any) -> Settings:
    """The bot's settings for a test; `extra` adds or overrides (`district_dir=…`)."""
    given: dict[str, Any] = {
        "bot_token": TOKEN,
        "telegram_api_url": api_url,
        "database_url": database_url,
        "district_dir": SAMPLE_DISTRICT_DIR,
        "media_dir": media_dir,
        **extra,
    }
    return Settings(_env_file=None, **given)


@asynccontextmanager
async def running_bot(
    database_url: str, media_dir: Path, **settings_extra: Any
) -> AsyncIterator[Harness]:
    """Start emulator, bot (polling) and sender; stop them all afterwards."""
    emulator = TelegramEmulator()
    url = await emulator.start()
    settings = settings_for(database_url, media_dir, url, **settings_extra)
    bot = make_bot(settings)
    clock = FakeClock()
    # Conversations in tests run faster than people type: allow ten messages a second per chat
    # (after Telegram's burst of three) so that waits stay short. Delivery tests use the
    # production limits.
    limiter = RateLimiter(asyncio.get_running_loop().time, chat_interval_s=0.1)
    try:
        async with app_context(settings, bot, clock, limiter=limiter) as ctx:
            for chat_id, title in _district_chats(ctx):
                emulator.group(chat_id, title)
            dp = make_dispatcher(ctx, settings)
            polling = asyncio.create_task(
                dp.start_polling(bot, handle_signals=False, polling_timeout=1)
            )
            sending = asyncio.create_task(ctx.sender.run())
            try:
                yield Harness(emulator=emulator, ctx=ctx, dp=dp, clock=clock)
            finally:
                ctx.sender.stop()
                await dp.stop_polling()
                await asyncio.gather(polling, sending, return_exceptions=True)
                await dp.storage.close()
    finally:
        await bot.session.close()
        await emulator.stop()


def _district_chats(ctx: AppContext) -> list[tuple[int, str]]:
    """The department and triage groups the district file names: the bot is a member of each."""
    district = ctx.district
    chats = [(d.chat_id, d.name_zh) for d in district.departments.values() if d.chat_id]
    chats += [
        (s.triage_chat_id, s.name_zh) for s in district.street_offices.values() if s.triage_chat_id
    ]
    return chats


def jpeg(
    color: tuple[int, int, int] = (200, 60, 40),
    size: tuple[int, int] = (640, 480),
    *,
    exif: Image.Exif | None = None,
) -> bytes:
    """A small real JPEG, optionally with EXIF."""
    image = Image.new("RGB", size, color)
    for x in range(0, size[0], 40):  # some structure, so perceptual hashes differ by colour
        for y in range(0, size[1], 40):
            if (x // 40 + y // 40 + color[0]) % 3 == 0:
                image.paste((color[2], color[0], color[1]), (x, y, x + 40, y + 40))
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=85, exif=exif if exif is not None else Image.Exif())
    return buf.getvalue()


def gps_exif(lat: float, lon: float) -> Image.Exif:
    """EXIF carrying a GPS position, as a phone camera writes it."""

    def dms(value: float) -> tuple[float, float, float]:
        value = abs(value)
        degrees = int(value)
        minutes_full = (value - degrees) * 60
        minutes = int(minutes_full)
        return (float(degrees), float(minutes), round((minutes_full - minutes) * 60, 4))

    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0110] = "PhoneModel X"  # Model
    gps = exif.get_ifd(0x8825)
    gps[1] = "N" if lat >= 0 else "S"
    gps[2] = dms(lat)
    gps[3] = "E" if lon >= 0 else "W"
    gps[4] = dms(lon)
    return exif


async def grant(
    h: Harness, telegram_id: int, role: str, scope: str | None = None, kind: str | None = None
) -> None:
    """Give a person a role, as `python -m bot people add` does."""
    from bot.domain.people import grant as grant_role

    async with h.session() as session, session.begin():
        await grant_role(
            session,
            h.district,
            telegram_id=telegram_id,
            role=role,
            scope=scope,
            kind=kind,
            name=f"{role} {telegram_id}",
            now=h.clock.now(),
        )


def plain_text(lang: str, key: str, **params: object) -> str:
    """A catalogue text as the person reads it: HTML tags gone, entities resolved."""
    import html
    import re

    from bot.i18n import t

    return html.unescape(re.sub(r"<[^>]+>", "", t(lang, key, **params)))


def noise_jpeg(seed: int) -> bytes:
    """A JPEG of random pixels: every seed looks different, even to a perceptual hash."""
    import random

    rng = random.Random(seed)
    small = Image.frombytes("RGB", (16, 16), bytes(rng.randrange(256) for _ in range(16 * 16 * 3)))
    buf = io.BytesIO()
    small.resize((320, 240), Image.Resampling.NEAREST).save(buf, "JPEG", quality=90)
    return buf.getvalue()


async def grant_direct(
    database_url: str, telegram_id: int, role: str, scope: str | None, kind: str | None
) -> None:
    """Give a role straight in the database, for tests whose bot runs in other processes."""
    from bot.clock import SystemClock
    from bot.domain.district import load_district
    from bot.domain.people import grant as grant_role
    from storage.db import make_engine, make_sessionmaker

    engine = make_engine(database_url)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            await grant_role(
                session,
                load_district(SAMPLE_DISTRICT_DIR),
                telegram_id=telegram_id,
                role=role,
                scope=scope,
                kind=kind,
                name=None,
                now=SystemClock().now(),
            )
    finally:
        await engine.dispose()
