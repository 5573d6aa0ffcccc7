"""Flood control: a person who sends too much is asked, once, to slow down; the rest is ignored.

Two fixed windows per person: every update (messages, edits, button presses) counts towards
`messages_per_minute`, and confirming a report towards `reports_per_hour`. The first update over
a limit gets a polite answer; later ones in the same window get nothing, so a flood costs the
bot a counter increment and the person lookup, never a handler. Counters live in memory, or in
Redis when `REDIS_URL` is set so that every bot process counts together.

Registered inside `UnitOfWork` (see bot/app.py), so banned people are already ignored and the
slow-down message goes through the outbox in the update's transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update

from bot.config import Settings
from bot.context import AppContext
from bot.telegram.keyboards import ReportAction
from bot.telegram.outgoing import Outbox
from storage.models import Person

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]

MESSAGES_PER_MINUTE = 30
REPORTS_PER_HOUR = 10
_CONFIRM = ReportAction(action="confirm", draft="").pack()  # "rep:confirm:"


class Counter(Protocol):
    async def hit(self, key: str, window_s: int, now: float) -> int:
        """Count one event for `key` in the current window of `window_s`; the count so far."""


class MemoryCounter:
    """One process's counters; a window's entries are dropped once it is over."""

    MAX_KEYS = 50_000

    def __init__(self) -> None:
        self._counts: dict[tuple[str, int], tuple[int, int]] = {}  # → (window index, count)

    async def hit(self, key: str, window_s: int, now: float) -> int:
        window = int(now // window_s)
        start, count = self._counts.get((key, window_s), (window, 0))
        count = count + 1 if start == window else 1
        self._counts[(key, window_s)] = (window, count)
        if len(self._counts) > self.MAX_KEYS:
            self._counts = {k: v for k, v in self._counts.items() if v[0] == int(now // k[1])}
        return count


class RedisCounter:
    """Counters shared by every bot process: INCR on a key that expires with its window."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def hit(self, key: str, window_s: int, now: float) -> int:
        name = f"suipai:flood:{key}:{window_s}:{int(now // window_s)}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(name)
            pipe.expire(name, window_s + 60)
            count, _ = await pipe.execute()
        return int(count)


class FloodControl(BaseMiddleware):
    """Per-person limits on updates a minute and reports an hour (see the module's text)."""

    def __init__(
        self,
        counter: Counter,
        *,
        messages_per_minute: int = MESSAGES_PER_MINUTE,
        reports_per_hour: int = REPORTS_PER_HOUR,
    ) -> None:
        self.counter = counter
        self.messages_per_minute = messages_per_minute
        self.reports_per_hour = reports_per_hour

    @classmethod
    def for_settings(cls, settings: Settings) -> FloodControl:
        if settings.redis_url:
            from redis.asyncio import Redis

            return cls(RedisCounter(Redis.from_url(settings.redis_url)))
        return cls(MemoryCounter())

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        person: Person | None = data.get("person")
        if person is None or not isinstance(event, Update):
            return await handler(event, data)
        ctx: AppContext = data["ctx"]
        out: Outbox = data["out"]
        now = ctx.clock.now().timestamp()
        count = await self.counter.hit(f"u:{person.id}", 60, now)
        if count > self.messages_per_minute:
            if count == self.messages_per_minute + 1:
                log.warning("person %s sent over %s updates a minute", person.id, count - 1)
                await self._tell(event, out, person, "abuse.slow_down")
            return None
        query = event.callback_query
        if query is not None and (query.data or "").startswith(_CONFIRM):
            reports = await self.counter.hit(f"r:{person.id}", 3600, now)
            if reports > self.reports_per_hour:
                log.warning("person %s tried report %s within an hour", person.id, reports)
                await self._tell(event, out, person, "abuse.too_many_reports")
                return None
        return await handler(event, data)

    async def _tell(self, event: Update, out: Outbox, person: Person, key: str) -> None:
        """A button press is answered with an alert; anything else with a message."""
        me = out.to(person)
        if event.callback_query is not None:
            await event.callback_query.answer(me.t(key), show_alert=True)
        else:
            me.say(key)
