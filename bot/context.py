"""What every handler may use, assembled once per process (see bot/app.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.config import Settings
from bot.domain.district import District
from bot.domain.intake import Announcer, Routed
from bot.domain.routing.classify import Classifier
from bot.domain.routing.locate import Locator

if TYPE_CHECKING:  # the context reaches every layer; only the type is Telegram's
    from bot.telegram.delivery import Sender


@dataclass
class AppContext:
    settings: Settings
    clock: Clock
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    district: District
    locator: Locator
    classifier: Classifier
    sender: Sender
    media_dir: Path
    announcer: Announcer | None = None  # set at assembly (bot/app.py), once the context exists

    async def announce(self, session: AsyncSession, routed: Routed, now: datetime) -> None:
        """Tell the people concerned what became of a report, in `session`'s transaction; a
        report submitted before was announced then."""
        if not routed.created:
            return
        if self.announcer is None:
            raise RuntimeError("no announcer: the app context was assembled without one")
        await self.announcer(session, routed, now)
