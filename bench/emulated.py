"""The Telegram emulator with a stopwatch: when each message reached each chat.

The stock emulator wakes every waiter on every change, which is right for tests with a few
people; a thousand simulated residents need each to wait on their own chat only, so the
benchmark's clock is not spent in the driver. Timestamps are `time.perf_counter()` in this
(the driver's) process, taken as the emulator records a sent message.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from tgemu.emulator import TelegramEmulator
from tgemu.models import Chat, SentMessage

SentHook = Callable[[float, Chat, SentMessage], None]


class TimedEmulator(TelegramEmulator):
    """`sent` logs (time, chat id, method) of every message; `on_sent` sees each one."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.sent: list[tuple[float, int, str]] = []
        self._sent_at: dict[tuple[int, int], float] = {}
        self.on_sent: SentHook | None = None
        self._chat_events: dict[int, asyncio.Event] = {}

    def record_sent(self, chat: Chat, method: str, **content: Any) -> SentMessage:
        message = super().record_sent(chat, method, **content)
        now = time.perf_counter()
        self.sent.append((now, chat.id, method))
        self._sent_at[chat.id, message.message_id] = now
        if self.on_sent is not None:
            self.on_sent(now, chat, message)
        self._changed_chat(chat.id)
        return message

    def sent_at(self, chat_id: int, message_id: int) -> float:
        """When the bot's message `message_id` reached chat `chat_id`."""
        return self._sent_at[chat_id, message_id]

    def record_edit(self, chat: Chat, message: SentMessage, method: str) -> None:
        super().record_edit(chat, message, method)
        self._changed_chat(chat.id)

    def _changed_chat(self, chat_id: int) -> None:
        event = self._chat_events.pop(chat_id, None)
        if event is not None:
            event.set()

    async def next_message(
        self,
        chat_id: int,
        cursor: int,
        predicate: Callable[[SentMessage], bool],
        timeout: float,  # noqa: ASYNC109
    ) -> tuple[SentMessage, int]:
        """The first bot message in the chat at or after event index `cursor` that satisfies
        `predicate`, and the index after it. Raises TimeoutError."""
        chat = self.chats[chat_id]
        async with asyncio.timeout(timeout):
            while True:
                events = chat.events
                for index in range(cursor, len(events)):
                    message = events[index].message
                    if events[index].kind == "message" and message and predicate(message):
                        return message, index + 1
                cursor = max(cursor, len(events))
                event = self._chat_events.setdefault(chat_id, asyncio.Event())
                await event.wait()

    def messages_in_last(self, seconds: float) -> int:
        """How many messages were sent in the last `seconds` (for quiescence checks)."""
        since = time.perf_counter() - seconds
        return sum(1 for at, _chat, _method in reversed(self.sent[-1000:]) if at > since)
