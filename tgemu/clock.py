"""The emulator's time: whatever has `now()` (aware, UTC), so that a test's fake clock drives the
bot and the emulated Telegram alike (bot.clock.FakeClock is one); the real time by default.

Its own protocol rather than bot.clock's, so that the emulator stays a package of its own that
imports nothing of the bot it plays Telegram for.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """The real time, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)
