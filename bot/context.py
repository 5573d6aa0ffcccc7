"""What every handler may use, assembled once per process (see bot/app.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.config import Settings
from bot.domain.district import District
from bot.domain.routing.classify import Classifier
from bot.domain.routing.locate import Locator
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
