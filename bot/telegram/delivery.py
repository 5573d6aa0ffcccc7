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
from collections.abc import Awaitable, Callable
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
    DeleteMyCommands,
    EditMessageCaption,
    EditMessageReplyMarkup,
    EditMessageText,
    SendDocument,
    SendLocation,
    SendMediaGroup,
    SendMessage,
    SendPhoto,
    SendVenue,
    SetMyCommands,
    TelegramMethod,
)
from aiogram.types import FSInputFile, Message
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from storage.db import connection_lost, while_reachable
from storage.models import OutboxMessage, Person
from storage.outbox import FAILED, SENT, SKIPPED, claim_due, release, renew, sent_message_id

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
        SetMyCommands,
        DeleteMyCommands,
    )
}
_FILE_FIELDS = ("photo", "document")
MAX_BACKOFF = timedelta(minutes=5)
# The windows are a little longer than Telegram's, for its own counting's sake; the network's
# delays are covered by counting each message from its answer (see Stamp).
MARGIN_S = 0.05
# How long a claimed message is this sender's unless renewed: if the process dies mid-send,
# another sender (or this one restarted) takes it over after the lease. While the message is
# in hand (a slow send, its record waiting for the database) the claim is renewed.
LEASE = timedelta(seconds=30)


class Stamp:
    """One message on the limiter's windows: when it was let go, then when Telegram answered.

    Telegram counts a message when it arrives, which is some time between the two. Counting
    each answered message from its answer, and a message still on its way as arriving now,
    keeps the windows safe however slow or uneven the network is.
    """

    __slots__ = ("answered", "at")

    def __init__(self, at: float) -> None:
        self.at = at
        self.answered = False


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
        self._overall: deque[Stamp] = deque()
        self._chats: dict[int, deque[Stamp]] = {}

    def overall_delay(self) -> float:
        """Seconds until one more message keeps within the overall limit (0: now)."""
        return _window_wait(self._overall, self._clock(), 1.0 + MARGIN_S, self._overall_per_s)

    def chat_delay(self, chat_id: int) -> float:
        """Seconds until one more message to `chat_id` keeps within that chat's limits."""
        now = self._clock()
        sent = self._chats.get(chat_id, deque())
        if chat_id < 0:
            return _window_wait(sent, now, 60.0 + MARGIN_S, self._group_per_min)
        # A short burst, then one a second on average over ten seconds.
        return max(
            _window_wait(sent, now, 1.0 + MARGIN_S, self._chat_burst),
            _window_wait(sent, now, 10.0 + MARGIN_S, max(1, round(10 / self._chat_interval_s))),
        )

    def record(self, chat_id: int) -> Stamp:
        """A message to `chat_id` is let go now; call `answered` with the stamp when it is."""
        now = self._clock()
        stamp = Stamp(now)
        self._overall.append(stamp)
        self._chats.setdefault(chat_id, deque()).append(stamp)
        _forget(self._overall, now - 1.0 - MARGIN_S)
        horizon = now - 60.0 - MARGIN_S
        for key in [k for k, q in self._chats.items() if q and _stale(q[-1], horizon)]:
            del self._chats[key]
        _forget(self._chats[chat_id], horizon)
        return stamp

    def answered(self, stamp: Stamp) -> None:
        stamp.at = self._clock()
        stamp.answered = True


def _stale(stamp: Stamp, horizon: float) -> bool:
    return stamp.answered and stamp.at < horizon


def _forget(stamps: deque[Stamp], horizon: float) -> None:
    while stamps and _stale(stamps[0], horizon):
        stamps.popleft()


def _window_wait(stamps: deque[Stamp], now: float, window: float, limit: int) -> float:
    # A message still on its way may arrive at any moment: it counts as arriving now.
    recent = sorted(s.at if s.answered else now for s in stamps if not _stale(s, now - window))
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
        limiter: RateLimiter | None = None,
        lease: timedelta = LEASE,
        db_retry_s: float = 120.0,
    ) -> None:
        self._bot = bot
        self._db_retry_s = db_retry_s
        self._sessionmaker = sessionmaker
        self._clock = clock
        self._media_dir = media_dir
        self._batch = batch
        self._lease = lease
        self._idle_poll_s = idle_poll_s
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._loop_time = asyncio.get_running_loop().time
        self.limiter = limiter or RateLimiter(self._loop_time)
        self._permit = asyncio.Lock()
        # Called with a chat id when Telegram says the person blocked the bot (403).
        self.on_unreachable: Callable[[int], Awaitable[None]] | None = None
        # Chats waiting for their per-chat limit: loop time when they may be sent to again.
        self._paused: dict[int, float] = {}

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
            except Exception as exc:
                if connection_lost(exc):
                    log.warning("outbox: database unreachable (%s); retrying", exc)
                else:
                    log.exception("outbox drain failed; retrying")
                sent = 0
            if sent == 0 and not self._stopping:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self._idle_wait())

    def _idle_wait(self) -> float:
        """Sleep until the first paused chat may be sent to, or the idle poll."""
        now = self._loop_time()
        soonest = min(self._paused.values(), default=now + self._idle_poll_s)
        return max(0.0, min(self._idle_poll_s, soonest - now))

    async def drain(self) -> int:
        """Send everything due now, waiting out per-chat pauses; returns how many were sent."""
        total = 0
        while True:
            n = await self.drain_once()
            total += n
            if n == 0 and not self._paused:
                return total
            if n == 0:
                await asyncio.sleep(self._idle_wait())

    async def drain_once(self) -> int:
        """Claim the head message of each ready chat and send them side by side."""
        now = self._loop_time()
        self._paused = {c: t for c, t in self._paused.items() if t > now}
        async with self._sessionmaker() as session, session.begin():
            rows = await claim_due(
                session,
                now=self._clock.now(),
                lease=self._lease,
                limit=self._batch,
                skip_chats=list(self._paused),
            )
        ready, waiting = [], []
        for row in rows:
            wait = self.limiter.chat_delay(row.chat_id)
            if wait > 0:
                self._paused[row.chat_id] = now + wait
                waiting.append(row.id)
            else:
                ready.append(row)
        if waiting:
            async with self._sessionmaker() as session, session.begin():
                await release(session, waiting)
        if not ready:
            return 0
        in_hand = {row.id for row in ready}
        renewing = asyncio.create_task(self._keep_claims(in_hand))
        try:
            # Each one to its end (a failure of one must not orphan the others' claims).
            outcomes = await asyncio.gather(
                *(self._deliver(row, in_hand) for row in ready), return_exceptions=True
            )
        finally:
            renewing.cancel()
            await asyncio.wait([renewing])
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return len(ready)

    async def _keep_claims(self, in_hand: set[int]) -> None:
        """Renew the claim on the messages in hand every third of the lease: a send may take
        longer than the lease (aiogram waits 60 s for Telegram), and so may waiting for the
        database to record it; a claim that lapsed meanwhile would let another sender send
        the message again."""
        while in_hand:
            await asyncio.sleep(self._lease.total_seconds() / 3)
            try:
                async with self._sessionmaker() as session, session.begin():
                    await renew(session, list(in_hand), now=self._clock.now(), lease=self._lease)
            except Exception as exc:
                # The database is away: the claims have the rest of their lease, which is
                # meant to outlast DB_RETRY_S (see Settings.outbox_lease_s).
                log.warning("outbox: claims not renewed (%s)", exc)

    async def _deliver(self, row: OutboxMessage, in_hand: set[int]) -> None:
        try:
            await self._send(row)
        finally:
            in_hand.discard(row.id)

    async def _send(self, row: OutboxMessage) -> None:
        values: dict[str, Any]
        try:
            method = await self._build(row)
            if method is None:
                values = {"status": SKIPPED, "last_error": "the message to edit was never sent"}
            else:
                async with self._permit:
                    # Again after each pause: a message answered meanwhile moves the window.
                    while (wait := self.limiter.overall_delay()) > 0:  # noqa: ASYNC110
                        await asyncio.sleep(wait)
                    stamp = self.limiter.record(row.chat_id)
                try:
                    result = await self._bot(method)
                finally:
                    self.limiter.answered(stamp)
                values = {"status": SENT, "sent_at": self._clock.now()}
                values["telegram_message_id"] = _message_id(result)
        except TelegramRetryAfter as exc:
            self._paused[row.chat_id] = self._loop_time() + exc.retry_after
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
            if connection_lost(exc):
                raise  # nothing was sent; the claim lapses and the message is tried again
            log.error("outbox %s %s failed: %s", row.id, row.method, exc)
            values = {"status": FAILED, "last_error": str(exc)}
        values["attempts"] = row.attempts + 1
        values["claimed_until"] = None
        await self._record(row, values)

    async def _record(self, row: OutboxMessage, values: dict[str, Any]) -> None:
        """Store what became of a message; while the database is away, wait for it, so that
        a message Telegram accepted is not sent again when its claim lapses."""

        async def attempt() -> None:
            async with self._sessionmaker() as session, session.begin():
                await session.execute(
                    update(OutboxMessage).where(OutboxMessage.id == row.id).values(**values)
                )

        await while_reachable(attempt, self._db_retry_s, f"outbox {row.id}: recording")

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
        method = _METHODS[row.method]
        if "chat_id" in method.model_fields:  # a command menu names its chat in its scope
            params["chat_id"] = row.chat_id
        return method.model_validate(params)

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
        if self.on_unreachable is not None and chat_id > 0:
            await self.on_unreachable(chat_id)


def _message_id(result: object) -> int | None:
    if isinstance(result, Message):
        return result.message_id
    if isinstance(result, list) and result and isinstance(result[0], Message):
        return result[0].message_id
    return None
