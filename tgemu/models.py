"""The emulator's records: users, chats, and what the bot sent as a user's client sees it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from tgemu.text import inline_buttons, reply_buttons


class ApiCall(NamedTuple):
    """One Bot API call the bot made: canonical method name and decoded parameters."""

    method: str
    params: dict[str, Any]


@dataclass
class User:
    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            if (value := getattr(self, key)) is not None:
                out[key] = value
        return out


@dataclass
class MessageEdit:
    """One edit of a bot message: the content right after it."""

    message_id: int
    method: str
    date: int
    text: str | None
    caption: str | None
    reply_markup: dict[str, Any] | None
    message: SentMessage = field(repr=False, compare=False)

    @property
    def content(self) -> str:
        return self.text if self.text is not None else self.caption or ""


@dataclass
class SentMessage:
    """A bot message in its current state, with its edits; `raw_text` is what the bot sent
    before its parse_mode was applied, `text`/`caption` what the user reads."""

    message_id: int
    chat_id: int
    method: str
    date: int
    text: str | None = None
    caption: str | None = None
    entities: list[dict[str, Any]] = field(default_factory=list)
    raw_text: str | None = None
    parse_mode: str | None = None
    reply_markup: dict[str, Any] | None = None
    photo: list[dict[str, Any]] = field(default_factory=list)
    photo_bytes: bytes | None = None
    document: dict[str, Any] | None = None
    document_bytes: bytes | None = None
    location: dict[str, Any] | None = None
    venue: dict[str, Any] | None = None
    media_group_id: str | None = None
    reply_to_message_id: int | None = None
    edit_date: int | None = None
    edits: list[MessageEdit] = field(default_factory=list, repr=False)
    deleted: bool = False

    @property
    def content(self) -> str:
        """Text or caption: what a substring expectation looks at."""
        return self.text if self.text is not None else self.caption or ""

    @property
    def photo_file_ids(self) -> list[str]:
        return [size["file_id"] for size in self.photo]

    @property
    def photo_file_id(self) -> str | None:
        """The largest size, which is what a bot usually re-sends or downloads."""
        return self.photo[-1]["file_id"] if self.photo else None

    @property
    def buttons(self) -> list[str]:
        """Texts of the inline or reply-keyboard buttons attached to the message."""
        markup = self.reply_markup
        return [b["text"] for b in inline_buttons(markup) + reply_buttons(markup)]

    def summary(self, method: str | None = None) -> str:
        body = self.content.replace("\n", " ⏎ ")
        if len(body) > 120:
            body = body[:117] + "..."
        kind = "photo " if self.photo else "document " if self.document else ""
        if self.location is not None:
            kind = "location "
        buttons = f" [{' | '.join(self.buttons)}]" if self.buttons else ""
        return f"#{self.message_id} {method or self.method}: {kind}{body}{buttons}"


@dataclass
class CallbackAnswer:
    """What answerCallbackQuery showed for one button press."""

    callback_query_id: str
    message_id: int | None
    data: str | None
    text: str | None
    show_alert: bool
    url: str | None


@dataclass(frozen=True)
class ChatEvent:
    """One line of a chat's history, in order: what `expect` scans and transcripts print."""

    kind: Literal["user", "message", "edit", "delete", "answer"]
    summary: str
    message: SentMessage | None = None
    edit: MessageEdit | None = None


@dataclass
class Chat:
    id: int
    type: str
    title: str | None = None
    user: User | None = None
    started: bool = False
    """A private chat exists for the bot only once its user wrote; groups always do."""
    blocked: bool = False
    members: set[int] = field(default_factory=set)
    next_message_id: int = 1
    user_messages: dict[int, dict[str, Any]] = field(default_factory=dict)
    bot_messages: dict[int, SentMessage] = field(default_factory=dict)
    events: list[ChatEvent] = field(default_factory=list)

    @property
    def private(self) -> bool:
        return self.type == "private"

    def as_json(self) -> dict[str, Any]:
        if self.user is not None:
            out: dict[str, Any] = {"id": self.id, "type": "private"}
            user = self.user.as_json()
            out.update({k: user[k] for k in ("first_name", "last_name", "username") if k in user})
            return out
        return {"id": self.id, "type": self.type, "title": self.title or ""}

    def allocate_id(self) -> int:
        message_id = self.next_message_id
        self.next_message_id += 1
        return message_id
