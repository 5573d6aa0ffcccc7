"""The one way out: drains the outbox to Telegram within its limits, retrying what may succeed.

Delivery guarantee: a message committed to the outbox is sent at least once and, unless the
process dies between Telegram's answer and the commit that records it, exactly once; it is
retried on 429 (after `retry_after`), on 5xx and on network errors with backoff, and given up
only on a permanent answer (403 blocked, 400 bad request), which is recorded on the row.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import (
    DeleteMessage,
    EditMessageCaption,
    EditMessageReplyMarkup,
    EditMessageText,
    SendDocument,
    SendLocation,
    SendMediaGroup,
    SendMessage,
    SendPhoto,
    SendVenue,
    TelegramMethod,
)
from aiogram.types import FSInputFile, Message
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from storage.models import OutboxMessage, Person
from storage.outbox import FAILED, SENT, SKIPPED, claim_due, sent_message_id

log = logging.getLogger(__name__)

_METHODS: dict[str, type[TelegramMethod[Any]]] = {
    cls.__api_method__: cls
    for cls in (
        SendMessage,
        SendPhoto,
        SendMediaGroup,
        SendDocument,
        SendLocation,
        SendVenue,
        EditMessageText,
        EditMessageCaption,
        EditMessageReplyMarkup,
        DeleteMessage,
    )
}
_FILE_FIELDS = ("photo", "document")
MAX_BACKOFF = timedelta(minutes=5)
LEASE = timedelta(seconds=60)


class RateLimiter:
    """Telegram's limits as sliding windows: overall per second, per private chat, per group."""

    def __init__(
        self,
        clock: Callable[[], float],
        *,
        overall_per_s: int = 30,
        chat_burst: int = 3,
        chat_interval_s: float = 1.0,
        group_per_min: int = 20,
    ) -> None:
        self._clock = clock
        self._overall_per_s = overall_per_s
        self._chat_burst = chat_burst
        self._chat_interval_s = chat_interval_s
        self._group_per_min = group_per_min
        self._overall: deque[float] = deque()
        self._chats: dict[int, deque[float]] = {}

    def delay(self, chat_id: int) -> float:
        """Seconds to wait before a message to `chat_id` keeps within every limit (0: now)."""
        now = self._clock()
        waits = [_window_wait(self._overall, now, 1.0, self._overall_per_s)]
        sent = self._chats.get(chat_id, deque())
        if chat_id < 0:
            waits.append(_window_wait(sent, now, 60.0, self._group_per_min))
        else:
            waits.append(_window_wait(sent, now, 1.0, self._chat_burst))
            # After a burst, keep to one a second on average over ten seconds.
            waits.append(_window_wait(sent, now, 10.0, int(10 / self._chat_interval_s)))
        return max(waits)

    def record(self, chat_id: int) -> None:
        now = self._clock()
        self._overall.append(now)
        self._chats.setdefault(chat_id, deque()).append(now)
        horizon = now - 60.0
        while self._overall and self._overall[0] < now - 1.0:
            self._overall.popleft()
        for key in [k for k, q in self._chats.items() if q and q[-1] < horizon]:
            del self._chats[key]
        queue = self._chats[chat_id]
        while queue and queue[0] < horizon:
            queue.popleft()


def _window_wait(times: deque[float], now: float, window: float, limit: int) -> float:
    recent = [t for t in times if t > now - window]
    if len(recent) < limit:
        return 0.0
    return recent[-limit] + window - now


class Sender:
    """Drains the outbox; `wake()` after committing new messages, `run()` loops until stopped."""

    def __init__(
        self,
        bot: Bot,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        media_dir: Path,
        *,
        batch: int = 30,
        idle_poll_s: float = 1.0,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        self._bot = bot
        self._sessionmaker = sessionmaker
        self._clock = clock
        self._media_dir = media_dir
        self._batch = batch
        self._idle_poll_s = idle_poll_s
        self._wakeup = asyncio.Event()
        self._stopping = False
        self.limiter = RateLimiter(monotonic or asyncio.get_running_loop().time)

    def wake(self) -> None:
        self._wakeup.set()

    def stop(self) -> None:
        self._stopping = True
        self._wakeup.set()

    async def run(self) -> None:
        while not self._stopping:
            # Clear before draining, so a wake() during the drain is not lost.
            self._wakeup.clear()
            try:
                sent = await self.drain_once()
            except Exception:
                log.exception("outbox drain failed; retrying")
                sent = 0
            if sent == 0 and not self._stopping:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self._idle_poll_s)

    async def drain(self) -> int:
        """Send everything due now (tests and the CLI); returns how many calls were made."""
        total = 0
        while n := await self.drain_once():
            total += n
        return total

    async def drain_once(self) -> int:
        async with self._sessionmaker() as session, session.begin():
            rows = await claim_due(session, now=self._clock.now(), lease=LEASE, limit=self._batch)
        for row in rows:
            await self._deliver(row)
        return len(rows)

    async def _deliver(self, row: OutboxMessage) -> None:
        wait = self.limiter.delay(row.chat_id)
        if wait > 0:
            await asyncio.sleep(wait)
        values: dict[str, Any]
        try:
            method = await self._build(row)
            if method is None:
                values = {"status": SKIPPED, "last_error": "the message to edit was never sent"}
            else:
                self.limiter.record(row.chat_id)
                result = await self._bot(method)
                values = {"status": SENT, "sent_at": self._clock.now()}
                values["telegram_message_id"] = _message_id(result)
        except TelegramRetryAfter as exc:
            values = self._retry_values(row, timedelta(seconds=exc.retry_after), str(exc))
        except (TelegramServerError, TelegramNetworkError) as exc:
            backoff = min(MAX_BACKOFF, timedelta(seconds=2 ** min(row.attempts, 8)))
            values = self._retry_values(row, backoff, str(exc))
        except TelegramForbiddenError as exc:
            values = {"status": FAILED, "last_error": str(exc)}
            await self._mark_unreachable(row.chat_id)
        except TelegramBadRequest as exc:
            if "message is not modified" in str(exc):
                values = {"status": SENT, "sent_at": self._clock.now()}
            else:
                log.error("outbox %s %s refused: %s", row.id, row.method, exc)
                values = {"status": FAILED, "last_error": str(exc)}
        except (TelegramAPIError, OSError, ValueError) as exc:
            log.error("outbox %s %s failed: %s", row.id, row.method, exc)
            values = {"status": FAILED, "last_error": str(exc)}
        values["attempts"] = row.attempts + 1
        values["claimed_until"] = None
        async with self._sessionmaker() as session, session.begin():
            await session.execute(
                update(OutboxMessage).where(OutboxMessage.id == row.id).values(**values)
            )

    def _retry_values(self, row: OutboxMessage, after: timedelta, error: str) -> dict[str, Any]:
        log.warning("outbox %s %s: retry in %s (%s)", row.id, row.method, after, error)
        return {"next_attempt_at": self._clock.now() + after, "last_error": error}

    async def _build(self, row: OutboxMessage) -> TelegramMethod[Any] | None:
        params = dict(row.params)
        message_ref = params.pop("message_ref", None)
        if message_ref is not None:
            async with self._sessionmaker() as session:
                status, message_id = await sent_message_id(session, row.chat_id, message_ref)
            if status != SENT or message_id is None:
                return None
            params["message_id"] = message_id
        for field in _FILE_FIELDS:
            if isinstance(params.get(field), dict):
                params[field] = self._file(params[field])
        if row.method == SendMediaGroup.__api_method__:
            params["media"] = [
                {**item, "media": self._file(item["media"])}
                if isinstance(item["media"], dict)
                else item
                for item in params["media"]
            ]
        return _METHODS[row.method].model_validate({"chat_id": row.chat_id, **params})

    def _file(self, spec: dict[str, str]) -> FSInputFile:
        path = (self._media_dir / spec["path"]).resolve()
        if self._media_dir.resolve() not in path.parents:
            raise ValueError(f"refusing to send a file outside MEDIA_DIR: {spec['path']}")
        return FSInputFile(path, filename=spec.get("filename"))

    async def _mark_unreachable(self, chat_id: int) -> None:
        async with self._sessionmaker() as session, session.begin():
            await session.execute(
                update(Person).where(Person.telegram_id == chat_id).values(unreachable=True)
            )


def _message_id(result: object) -> int | None:
    if isinstance(result, Message):
        return result.message_id
    if isinstance(result, list) and result and isinstance(result[0], Message):
        return result[0].message_id
    return None
