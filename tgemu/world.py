"""Everything the emulated Telegram knows (users, chats, messages, files, the update queue),
the users' side of it, and the event-driven waiting that tests rely on."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from tgemu.clock import Clock, SystemClock
from tgemu.files import FileStore
from tgemu.limits import RateLimiter, Violations
from tgemu.models import (
    ApiCall,
    CallbackAnswer,
    Chat,
    ChatEvent,
    MessageEdit,
    SentMessage,
    User,
)
from tgemu.text import is_inline

_T = TypeVar("_T")

Update = dict[str, Any]
"""An update exactly as the bot receives it (JSON-ready)."""

_OFF_BY_DEFAULT = frozenset({"chat_member", "message_reaction", "message_reaction_count"})


@dataclass
class WebhookConfig:
    url: str
    secret_token: str | None
    max_connections: int
    last_error_date: int | None = None
    last_error_message: str | None = None


@dataclass(frozen=True)
class PendingCallback:
    user_id: int
    chat_id: int
    message_id: int
    data: str


def describe_content(content: dict[str, Any]) -> str:
    """A one-line rendering of a user's message for transcripts."""
    for key in ("text", "caption"):
        if key in content:
            kinds = [k for k in ("photo", "document") if k in content]
            prefix = f"[{kinds[0]}] " if kinds and key == "caption" else ""
            return prefix + str(content[key]).replace("\n", " ⏎ ")
    kind = next((k for k in content if k not in ("media_group_id", "forward_origin")), "?")
    return f"[{kind}]"


class World:
    """The emulated Telegram's state. `TelegramEmulator` adds the HTTP server on top."""

    def __init__(
        self,
        clock: Clock | None,
        *,
        enforce_limits: bool,
        per_chat_burst: int,
        bot_username: str,
        bot_first_name: str,
        photo_max_side: int,
    ) -> None:
        if per_chat_burst < 1:
            raise ValueError("per_chat_burst must be at least 1")
        self.clock: Clock = clock or SystemClock()
        self.enforce_limits = enforce_limits
        self.bot_id = 0
        self.token = ""
        self.bot_username = bot_username
        self.bot_first_name = bot_first_name
        self.files = FileStore(photo_max_side)
        self.chats: dict[int, Chat] = {}
        self.updates: deque[Update] = deque()
        self.allowed_updates: frozenset[str] = frozenset()
        self.webhook: WebhookConfig | None = None
        self.calls: list[ApiCall] = []
        self.violations = Violations()
        self.limiter = RateLimiter(per_chat_burst)
        self.callbacks: dict[str, PendingCallback] = {}
        self.answers: dict[int, list[CallbackAnswer]] = {}
        self.commands: dict[tuple[str, str], list[dict[str, str]]] = {}
        self.closing = False
        self._changed = asyncio.Event()
        self._next_update_id = 1
        self._sequence = 0

    # --- waiting -----------------------------------------------------------------------------

    def touch(self) -> None:
        """Wake every waiter to re-check its predicate; called on every change of state.

        A fresh Event per change (rather than a Condition) lets synchronous code notify
        without taking a lock, so no change can slip past a waiter.
        """
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(self, predicate: Callable[[], object], within: float | None) -> bool:
        """Wait until `predicate()` holds or `within` seconds pass (None: forever)."""
        loop = asyncio.get_running_loop()
        deadline = None if within is None else loop.time() + within
        while not predicate():
            changed = self._changed
            try:
                async with asyncio.timeout_at(deadline):
                    await changed.wait()
            except TimeoutError:
                return bool(predicate())
        return True

    async def wait_until(self, predicate: Callable[[], _T | None], timeout: float = 5.0) -> _T:  # noqa: ASYNC109
        """Wait for `predicate()` to return something truthy and return it; re-checked on every
        API call and user action, never by polling. Raises AssertionError on timeout."""
        found: list[_T] = []

        def check() -> bool:
            result = predicate()
            if result:
                found.append(result)
            return bool(result)

        if not await self.wait_for(check, timeout):
            raise AssertionError(f"condition not met within {timeout}s")
        return found[-1]

    # --- time and identities -----------------------------------------------------------------

    def now(self) -> datetime:
        return self.clock.now()

    def timestamp(self) -> int:
        return int(self.clock.now().timestamp())

    def next_id(self) -> int:
        self._sequence += 1
        return self._sequence

    def bot_json(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": self.bot_username,
        }

    # --- reading chats -----------------------------------------------------------------------

    def messages_to(self, chat_id: int) -> list[SentMessage]:
        """Every message the bot sent to a chat, oldest first, deleted ones flagged."""
        chat = self.chats.get(chat_id)
        return list(chat.bot_messages.values()) if chat else []

    def transcript(self, chat_id: int, last: int = 20) -> list[str]:
        chat = self.chats.get(chat_id)
        return [event.summary for event in chat.events[-last:]] if chat else []

    def message_json(self, chat: Chat, message_id: int, *, nested: bool = False) -> Any:
        """A message of either side as a Message object; None if unknown."""
        sent = chat.bot_messages.get(message_id)
        if sent is not None:
            return None if sent.deleted else self.bot_message_json(chat, sent, nested=nested)
        message = chat.user_messages.get(message_id)
        if message is None:
            return None
        return {k: v for k, v in message.items() if k != "reply_to_message"} if nested else message

    def bot_message_json(
        self, chat: Chat, message: SentMessage, *, nested: bool = False
    ) -> dict[str, Any]:
        """The Message object Telegram returns for a bot message (only inline keyboards echo)."""
        out: dict[str, Any] = {
            "message_id": message.message_id,
            "from": self.bot_json(),
            "chat": chat.as_json(),
            "date": message.date,
        }
        if message.edit_date is not None:
            out["edit_date"] = message.edit_date
        if message.media_group_id is not None:
            out["media_group_id"] = message.media_group_id
        if message.reply_to_message_id is not None and not nested:
            replied = self.message_json(chat, message.reply_to_message_id, nested=True)
            if replied is not None:
                out["reply_to_message"] = replied
        entities_key = "entities"
        if message.text is not None:
            out["text"] = message.text
        if message.photo:
            out["photo"] = message.photo
        if message.document is not None:
            out["document"] = message.document
        if message.caption is not None:
            out["caption"] = message.caption
            entities_key = "caption_entities"
        if message.entities:
            out[entities_key] = message.entities
        if message.location is not None:
            out["location"] = message.location
        if message.venue is not None:
            out["venue"] = message.venue
        if is_inline(message.reply_markup):
            out["reply_markup"] = message.reply_markup
        return out

    # --- the bot's side: recording what it sent ----------------------------------------------

    def record_sent(self, chat: Chat, method: str, **content: Any) -> SentMessage:
        message = SentMessage(
            message_id=chat.allocate_id(),
            chat_id=chat.id,
            method=method,
            date=self.timestamp(),
            **content,
        )
        chat.bot_messages[message.message_id] = message
        chat.events.append(ChatEvent("message", f"← {message.summary()}", message=message))
        return message

    def record_edit(self, chat: Chat, message: SentMessage, method: str) -> None:
        message.edit_date = self.timestamp()
        edit = MessageEdit(
            message_id=message.message_id,
            method=method,
            date=message.edit_date,
            text=message.text,
            caption=message.caption,
            reply_markup=message.reply_markup,
            message=message,
        )
        message.edits.append(edit)
        summary = f"✎ {message.summary(method)}"
        chat.events.append(ChatEvent("edit", summary, message=message, edit=edit))

    # --- updates -----------------------------------------------------------------------------

    def wants(self, kind: str) -> bool:
        """allowed_updates as Telegram applies it: empty means all but the opt-in kinds."""
        if not self.allowed_updates:
            return kind not in _OFF_BY_DEFAULT
        return kind in self.allowed_updates

    def enqueue(self, kind: str, payload: dict[str, Any]) -> Update:
        update: Update = {"update_id": self._next_update_id, kind: payload}
        self._next_update_id += 1
        if self.wants(kind):
            self.updates.append(update)
        self.touch()
        return update

    def confirm_updates(self, offset: int) -> None:
        """getUpdates' offset: a positive one confirms older updates, a negative one keeps the
        last -offset."""
        if offset > 0:
            while self.updates and self.updates[0]["update_id"] < offset:
                self.updates.popleft()
        elif offset < 0:
            while len(self.updates) > -offset:
                self.updates.popleft()

    # --- the users' side ---------------------------------------------------------------------

    def _check_member(self, user: User, chat: Chat) -> None:
        if not chat.private and user.id not in chat.members:
            raise AssertionError(f"{user.first_name} is not a member of {chat.title!r}")

    def post_message(
        self, user: User, chat: Chat, content: dict[str, Any], *, reply_to: int | None = None
    ) -> Update:
        """A user writes to a chat; the bot gets a `message` update."""
        self._check_member(user, chat)
        if chat.blocked:  # writing again means pressing "Restart", which unblocks
            self.post_block(user, chat, False)
        chat.started = True
        message: dict[str, Any] = {
            "message_id": chat.allocate_id(),
            "from": user.as_json(),
            "chat": chat.as_json(),
            "date": self.timestamp(),
            **content,
        }
        if reply_to is not None:
            replied = self.message_json(chat, reply_to, nested=True)
            if replied is None:
                raise AssertionError(f"no message {reply_to} to reply to in chat {chat.id}")
            message["reply_to_message"] = replied
        chat.user_messages[message["message_id"]] = message
        chat.events.append(ChatEvent("user", f"→ {user.first_name}: {describe_content(content)}"))
        return self.enqueue("message", message)

    def post_edit(self, user: User, chat: Chat, message_id: int, content: dict[str, Any]) -> Update:
        """A user edits their own message; the bot gets an `edited_message` update."""
        original = chat.user_messages.get(message_id)
        if original is None or original["from"]["id"] != user.id:
            raise AssertionError(f"{user.first_name} has no message {message_id} in chat {chat.id}")
        edited = {k: v for k, v in original.items() if k not in ("text", "entities")}
        edited.update(content, edit_date=self.timestamp())
        chat.user_messages[message_id] = edited
        summary = f"✎ {user.first_name} #{message_id}: {describe_content(content)}"
        chat.events.append(ChatEvent("user", summary))
        return self.enqueue("edited_message", edited)

    def post_callback(self, user: User, chat: Chat, message: SentMessage, data: str) -> Update:
        """A user presses an inline button; the bot gets a `callback_query` update."""
        self._check_member(user, chat)
        if message.deleted:
            raise AssertionError(f"message {message.message_id} was deleted; nothing to press")
        query_id = f"{user.id}{self.next_id():08d}"
        self.callbacks[query_id] = PendingCallback(user.id, chat.id, message.message_id, data)
        query = {
            "id": query_id,
            "from": user.as_json(),
            "message": self.bot_message_json(chat, message),
            "chat_instance": f"emu{chat.id}",
            "data": data,
        }
        summary = f"→ {user.first_name} pressed #{message.message_id} [{data}]"
        chat.events.append(ChatEvent("user", summary))
        return self.enqueue("callback_query", query)

    def post_block(self, user: User, chat: Chat, blocked: bool) -> Update:
        """A user blocks or unblocks the bot; the bot gets a `my_chat_member` update."""
        chat.blocked = blocked
        old, new = ("member", "kicked") if blocked else ("kicked", "member")

        def member(status: str) -> dict[str, Any]:
            kicked = {"until_date": 0} if status == "kicked" else {}
            return {"status": status, "user": self.bot_json()} | kicked

        update = {
            "chat": chat.as_json(),
            "from": user.as_json(),
            "date": self.timestamp(),
            "old_chat_member": member(old),
            "new_chat_member": member(new),
        }
        chat.events.append(ChatEvent("user", f"→ {user.first_name} {new} the bot"))
        return self.enqueue("my_chat_member", update)
