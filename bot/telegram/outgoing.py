"""Messages to people, written to the outbox in the caller's transaction (never sent directly)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiogram.types import (
    ForceReply,
    InlineKeyboardMarkup,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)
from sqlalchemy.ext.asyncio import AsyncSession

from bot.i18n import t
from storage.models import Person
from storage.outbox import enqueue

Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | ForceReply


def _markup(markup: Markup | None) -> dict[str, Any]:
    if markup is None:
        return {}
    return {"reply_markup": markup.model_dump(mode="json", exclude_none=True)}


class Outbox:
    """Writes Bot API calls for one transaction; `to(person)` renders in that person's language."""

    def __init__(self, session: AsyncSession, now: datetime) -> None:
        self.session = session
        self.now = now
        self._after_commit: list[Callable[[], Awaitable[Any]]] = []

    def after_commit(self, action: Callable[[], Awaitable[Any]]) -> None:
        """Run `action` only once the transaction has committed (e.g. forgetting a draft)."""
        self._after_commit.append(action)

    async def committed(self) -> None:
        actions, self._after_commit = self._after_commit, []
        for action in actions:
            await action()

    def to(self, person: Person) -> Recipient:
        return Recipient(self, person.telegram_id, person.language)

    def chat(self, chat_id: int, language: str) -> Recipient:
        return Recipient(self, chat_id, language)

    def call(
        self,
        chat_id: int,
        method: str,
        params: dict[str, Any],
        *,
        ref: str | None = None,
        case_id: int | None = None,
    ) -> None:
        enqueue(self.session, chat_id, method, params, now=self.now, ref=ref, case_id=case_id)


class Recipient:
    """One chat and the language its messages are written in."""

    def __init__(self, outbox: Outbox, chat_id: int, language: str) -> None:
        self.outbox = outbox
        self.chat_id = chat_id
        self.language = language

    def t(self, key: str, /, **params: Any) -> str:
        return t(self.language, key, **params)

    def say(
        self,
        key: str,
        /,
        markup: Markup | None = None,
        *,
        ref: str | None = None,
        case_id: int | None = None,
        **params: Any,
    ) -> None:
        """Send the catalogue text `key`."""
        self.text(self.t(key, **params), markup, ref=ref, case_id=case_id)

    def text(
        self,
        text: str,
        markup: Markup | None = None,
        *,
        ref: str | None = None,
        case_id: int | None = None,
    ) -> None:
        params = {"text": text, "parse_mode": "HTML", **_markup(markup)}
        self.outbox.call(self.chat_id, "sendMessage", params, ref=ref, case_id=case_id)

    def photos(
        self, paths: list[str], caption: str | None = None, *, case_id: int | None = None
    ) -> None:
        """One stored photo as a photo message, several as an album (caption on the first)."""
        if len(paths) == 1:
            params: dict[str, Any] = {"photo": {"path": paths[0]}}
            if caption:
                params |= {"caption": caption, "parse_mode": "HTML"}
            self.outbox.call(self.chat_id, "sendPhoto", params, case_id=case_id)
            return
        media: list[dict[str, Any]] = []
        for i, path in enumerate(paths[:10]):
            item: dict[str, Any] = {"type": "photo", "media": {"path": path}}
            if i == 0 and caption:
                item |= {"caption": caption, "parse_mode": "HTML"}
            media.append(item)
        self.outbox.call(self.chat_id, "sendMediaGroup", {"media": media}, case_id=case_id)

    def document(self, path: str, filename: str, caption: str | None = None) -> None:
        """A file under MEDIA_DIR (`path` relative to it), shown to the reader as `filename`."""
        params: dict[str, Any] = {"document": {"path": path, "filename": filename}}
        if caption:
            params |= {"caption": caption, "parse_mode": "HTML"}
        self.outbox.call(self.chat_id, "sendDocument", params)

    def location(self, lat: float, lon: float, *, case_id: int | None = None) -> None:
        params = {"latitude": lat, "longitude": lon}
        self.outbox.call(self.chat_id, "sendLocation", params, case_id=case_id)

    def edit_markup(self, message_id: int, markup: InlineKeyboardMarkup | None = None) -> None:
        self.outbox.call(
            self.chat_id, "editMessageReplyMarkup", {"message_id": message_id, **_markup(markup)}
        )

    def edit_text(
        self,
        text: str,
        *,
        message_id: int | None = None,
        message_ref: str | None = None,
        markup: InlineKeyboardMarkup | None = None,
    ) -> None:
        """Edit a message known by id, or by the ref it was sent under (sent or still queued)."""
        params: dict[str, Any] = {"text": text, "parse_mode": "HTML", **_markup(markup)}
        if message_id is not None:
            params["message_id"] = message_id
        else:
            params["message_ref"] = message_ref
        self.outbox.call(self.chat_id, "editMessageText", params)


TEXT_LIMIT = 4096  # Telegram's longest message


def split_text(text: str, limit: int = TEXT_LIMIT, sep: str = "\n\n") -> list[str]:
    """Within Telegram's limit per message, cut between blocks (so no tag is cut in two)."""
    pieces: list[str] = []
    for block in text.split(sep):
        if pieces and len(pieces[-1]) + len(sep) + len(block) <= limit:
            pieces[-1] += sep + block
        else:
            pieces.append(block[:limit])
    return pieces
