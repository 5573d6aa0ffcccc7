"""Simulated residents: each reports one problem start to finish through the emulator.

A report is four updates, as a person sends them: a photo, a description, a location, and
the confirm button under the summary. The resident waits for the bot's answer before each
next step (no think time). The run is timed from the confirm press to the moment the case's
card (the message with buttons) reached its lane chief, as the emulator recorded it.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bench.emulated import TimedEmulator
from bot.i18n import t
from tgemu.models import Chat, SentMessage
from tgemu.text import inline_buttons, is_inline

NUMBER = re.compile(r"[A-Z]+-\d{8}-\d{4,}")
UPDATES_PER_REPORT = 4


@dataclass(frozen=True)
class Plan:
    """What one resident reports: their id, a photo already in the emulator, text, place."""

    user_id: int
    photo: list[dict[str, Any]]
    text: str
    lat: float
    lon: float


@dataclass
class Outcome:
    started: float
    confirmed: float | None = None
    answered: float | None = None  # the card reached its handler (bare bot: its reply)
    error: str | None = None

    @property
    def latency(self) -> float | None:
        if self.confirmed is None or self.answered is None:
            return None
        return self.answered - self.confirmed


class Cards:
    """When each case's card (a message with inline buttons naming the case) reached one of
    the handler chats."""

    def __init__(self, handler_chats: Iterable[int]) -> None:
        self.chats = frozenset(handler_chats)
        self.at: dict[str, float] = {}
        self._waiting: dict[str, asyncio.Future[float]] = {}

    def hook(self, now: float, chat: Chat, message: SentMessage) -> None:
        if chat.id not in self.chats or not is_inline(message.reply_markup):
            return
        found = NUMBER.search(message.content)
        if found is None or found.group(0) in self.at:
            return
        self.at[found.group(0)] = now
        waiter = self._waiting.pop(found.group(0), None)
        if waiter is not None and not waiter.done():
            waiter.set_result(now)

    async def wait(self, number: str, timeout: float) -> float:  # noqa: ASYNC109
        if number in self.at:
            return self.at[number]
        waiter = self._waiting.setdefault(number, asyncio.get_running_loop().create_future())
        return await asyncio.wait_for(waiter, timeout)


def _any(_message: SentMessage) -> bool:
    return True


def _summary(message: SentMessage) -> bool:
    return is_inline(message.reply_markup)


def _numbered(message: SentMessage) -> bool:
    return NUMBER.search(message.content) is not None


def _persona(emu: TimedEmulator, plan: Plan) -> tuple[Chat, Any]:
    persona = emu.user(plan.user_id, first_name=f"居民{plan.user_id}", language_code="zh-hans")
    return persona.chat, persona.user


async def report(emu: TimedEmulator, plan: Plan, cards: Cards, timeout: float) -> Outcome:  # noqa: ASYNC109
    """A full report to the real bot; `answered` when the lane chief's card is sent."""
    chat, user = _persona(emu, plan)
    out = Outcome(started=time.perf_counter())
    cursor = len(chat.events)
    try:
        emu.post_message(user, chat, {"photo": plan.photo})
        _, cursor = await emu.next_message(chat.id, cursor, _any, timeout)
        emu.post_message(user, chat, {"text": plan.text})
        _, cursor = await emu.next_message(chat.id, cursor, _any, timeout)
        emu.post_message(user, chat, {"location": {"latitude": plan.lat, "longitude": plan.lon}})
        summary, cursor = await emu.next_message(chat.id, cursor, _summary, timeout)
        confirm = t("zh", "button.confirm")
        data = next(
            b["callback_data"]
            for b in inline_buttons(summary.reply_markup)
            if b["text"] == confirm and "callback_data" in b
        )
        out.confirmed = time.perf_counter()
        emu.post_callback(user, chat, summary, data)
        created, cursor = await emu.next_message(chat.id, cursor, _numbered, timeout)
        found = NUMBER.search(created.content)
        assert found is not None
        out.answered = await cards.wait(found.group(0), timeout)
    except (TimeoutError, StopIteration) as exc:
        out.error = f"{type(exc).__name__} after {len(chat.events)} events in chat {chat.id}"
    return out


async def mid_report(emu: TimedEmulator, plan: Plan, timeout: float) -> Outcome:  # noqa: ASYNC109
    """A photo and a description, then stop where the bot asks for the location."""
    chat, user = _persona(emu, plan)
    out = Outcome(started=time.perf_counter())
    cursor = len(chat.events)
    try:
        emu.post_message(user, chat, {"photo": plan.photo})
        _, cursor = await emu.next_message(chat.id, cursor, _any, timeout)
        emu.post_message(user, chat, {"text": plan.text})
        asked, cursor = await emu.next_message(chat.id, cursor, _any, timeout)
        out.answered = emu.sent_at(chat.id, asked.message_id)
    except TimeoutError as exc:
        out.error = f"{type(exc).__name__} after {len(chat.events)} events in chat {chat.id}"
    return out


async def bare_report(emu: TimedEmulator, plan: Plan, timeout: float) -> Outcome:  # noqa: ASYNC109
    """The same four updates to the bare bot; `answered` when it replies to the last."""
    chat, user = _persona(emu, plan)
    out = Outcome(started=time.perf_counter())
    cursor = len(chat.events)
    try:
        emu.post_message(user, chat, {"photo": plan.photo})
        _, cursor = await emu.next_message(chat.id, cursor, _any, timeout)
        emu.post_message(user, chat, {"text": plan.text})
        _, cursor = await emu.next_message(chat.id, cursor, _any, timeout)
        emu.post_message(user, chat, {"location": {"latitude": plan.lat, "longitude": plan.lon}})
        last, cursor = await emu.next_message(chat.id, cursor, _any, timeout)
        out.confirmed = time.perf_counter()
        emu.post_callback(user, chat, last, "confirm")
        reply, cursor = await emu.next_message(chat.id, cursor, _any, timeout)
        out.answered = emu.sent_at(chat.id, reply.message_id)
    except TimeoutError as exc:
        out.error = f"{type(exc).__name__} after {len(chat.events)} events in chat {chat.id}"
    return out
