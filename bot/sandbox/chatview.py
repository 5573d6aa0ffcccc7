"""Chats as the sandbox page shows them: messages of both sides as JSON, the reply keyboard in
force, and a feed of what changed since it was last read.

The page gets a message's whole current state each time it changes (new, edited or deleted)
and replaces its copy by id, so it never has to apply edits itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tgemu.emulator import SentMessage
from tgemu.models import Chat
from tgemu.text import is_inline, reply_buttons

Json = dict[str, Any]

# A photo shown in a 360 px wide chat needs no more than this many pixels on its long side.
_SHOWN_SIDE = 800


def _photo(sizes: list[dict[str, Any]] | None) -> Json | None:
    """The size to show: the largest that still fits `_SHOWN_SIDE`, else the smallest."""
    if not sizes:
        return None
    fitting = [s for s in sizes if 0 < max(s.get("width", 0), s.get("height", 0)) <= _SHOWN_SIDE]
    size = fitting[-1] if fitting else sizes[-1]
    full = sizes[-1]
    return {
        "file_id": size["file_id"],
        "full_id": full["file_id"],
        "width": size.get("width", 0),
        "height": size.get("height", 0),
    }


def _place(location: dict[str, Any] | None, venue: dict[str, Any] | None) -> Json:
    out: Json = {}
    if location is not None:
        out["location"] = {"lat": location["latitude"], "lon": location["longitude"]}
    if venue is not None:
        out["venue"] = {"title": venue.get("title", ""), "address": venue.get("address", "")}
    return out


def _document(document: dict[str, Any] | None) -> Json:
    if document is None:
        return {}
    name = document.get("file_name") or "file"
    return {"document": {"file_id": document["file_id"], "file_name": name}}


def bot_message(message: SentMessage) -> Json:
    """A bot message in its current state; a deleted one is only its id and the flag."""
    if message.deleted:
        return {"id": message.message_id, "from": "bot", "deleted": True}
    markup = message.reply_markup
    out: Json = {
        "id": message.message_id,
        "from": "bot",
        "date": message.date,
        "text": message.content,
        "entities": message.entities,
        "photo": _photo(message.photo),
        "album": message.media_group_id,
        "edited": message.edit_date is not None,
        "reply_to": message.reply_to_message_id,
        "inline_keyboard": markup["inline_keyboard"] if markup and is_inline(markup) else None,
    }
    return out | _place(message.location, message.venue) | _document(message.document)


def user_message(message: Mapping[str, Any]) -> Json:
    """A message the persona sent, shown as their own client shows it."""
    text = message.get("text", message.get("caption", ""))
    entities = message.get("entities", message.get("caption_entities", []))
    out: Json = {
        "id": message["message_id"],
        "from": "user",
        "date": message["date"],
        "text": text,
        "entities": entities,
        "photo": _photo(message.get("photo")),
        "album": message.get("media_group_id"),
        "edited": "edit_date" in message,
    }
    if "contact" in message:
        out["contact"] = message["contact"].get("phone_number", "")
    return (
        out
        | _place(message.get("location"), message.get("venue"))
        | _document(message.get("document"))
    )


def history(chat: Chat) -> list[Json]:
    """Both sides' messages in the order they were sent (ids are allocated per chat, in order);
    deleted bot messages are left out."""
    mine = [(i, user_message(m)) for i, m in chat.user_messages.items()]
    theirs = [(i, bot_message(m)) for i, m in chat.bot_messages.items() if not m.deleted]
    return [message for _, message in sorted(mine + theirs, key=lambda pair: pair[0])]


def reply_keyboard(chat: Chat) -> Json | None:
    """The reply keyboard in force: the newest bot message that set or removed one decides.

    Deleted messages count too: on Telegram a keyboard stays after its message is deleted.
    A one-time keyboard is `hidden` once the user has written after it (it can be reopened).
    """
    for message in reversed(chat.bot_messages.values()):
        markup = message.reply_markup
        if markup is None or is_inline(markup):
            continue
        if "keyboard" in markup:
            rows = [
                [
                    {
                        "text": b["text"],
                        "request_location": bool(b.get("request_location")),
                        "request_contact": bool(b.get("request_contact")),
                    }
                    for b in reply_buttons({"keyboard": [row]})
                ]
                for row in markup["keyboard"]
            ]
            written_after = max(chat.user_messages, default=0) > message.message_id
            hidden = bool(markup.get("one_time_keyboard")) and written_after
            return {"rows": rows, "hidden": hidden}
        if markup.get("remove_keyboard"):
            return None
    return None


def reply_button(chat: Chat, text: str) -> Json | None:
    """The button of the keyboard in force with this text, if any."""
    keyboard = reply_keyboard(chat)
    rows: list[list[Json]] = keyboard["rows"] if keyboard else []
    return next((b for row in rows for b in row if b["text"] == text), None)


def inline_button(message: SentMessage, data: str) -> bool:
    """Whether the message currently carries a button that sends this callback data."""
    if message.deleted or not is_inline(message.reply_markup):
        return False
    assert message.reply_markup is not None
    rows = message.reply_markup["inline_keyboard"]
    return any(b.get("callback_data") == data for row in rows for b in row)


class ChatFeed:
    """What changed in one persona's chat since the last `changes()`: the page's live updates.

    Driven by the chat's event list (every send, edit, delete, user action and callback answer
    appends to it), so `stale()` is a cheap check to run on each emulator wake-up.
    """

    def __init__(self, key: str, chat: Chat, answers: dict[int, list[Any]]) -> None:
        self.key = key
        self._chat = chat
        self._answers = answers
        self._cursor = len(chat.events)
        self._user_sent: dict[int, Mapping[str, Any]] = dict(chat.user_messages)
        self._answers_seen = len(self._user_answers())
        self._keyboard = reply_keyboard(chat)

    def _user_answers(self) -> list[Any]:
        return self._answers.get(self._chat.user.id, []) if self._chat.user else []

    def snapshot(self) -> Json:
        return {
            "type": "history",
            "persona": self.key,
            "messages": history(self._chat),
            "keyboard": self._keyboard,
        }

    def stale(self) -> bool:
        return len(self._chat.events) != self._cursor

    def changes(self) -> list[Json]:
        chat = self._chat
        events = chat.events[self._cursor :]
        self._cursor += len(events)
        out: list[Json] = []
        touched: dict[int, SentMessage] = {}
        for event in events:
            if event.message is not None:
                touched[event.message.message_id] = event.message
        for sent in touched.values():
            out.append(self._item("message", message=bot_message(sent)))
        # User messages: new or edited ones (an edit replaces the dict), deleted ones.
        for message_id, message in chat.user_messages.items():
            if self._user_sent.get(message_id) is not message:
                out.append(self._item("message", message=user_message(message)))
        for message_id in set(self._user_sent) - set(chat.user_messages):
            out.append(self._item("message", message={"id": message_id, "deleted": True}))
        self._user_sent = dict(chat.user_messages)
        answers = self._user_answers()
        for answer in answers[self._answers_seen :]:
            if answer.text:
                out.append(self._item("toast", text=answer.text, alert=answer.show_alert))
        self._answers_seen = len(answers)
        keyboard = reply_keyboard(chat)
        if keyboard != self._keyboard:
            self._keyboard = keyboard
            out.append(self._item("keyboard", keyboard=keyboard))
        return out

    def _item(self, kind: str, **fields: Any) -> Json:
        return {"type": kind, "persona": self.key, **fields}
