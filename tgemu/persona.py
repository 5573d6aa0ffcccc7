"""Personas: Telegram users as tests drive them, acting in one chat and reading the bot there."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tgemu.files import guess_mime
from tgemu.models import CallbackAnswer, Chat, MessageEdit, SentMessage, User
from tgemu.text import inline_buttons, is_inline, reply_buttons, utf16_len
from tgemu.world import Update, World

# Stand-in bytes for media whose content no test inspects (voice, stickers, videos).
_OGG = b"OggS\x00\x02" + bytes(20)
_WEBP = b"RIFF\x1a\x00\x00\x00WEBPVP8 " + bytes(14)
_MP4 = b"\x00\x00\x00\x18ftypmp42" + bytes(12)


@dataclass(frozen=True)
class Group:
    """A group chat handle returned by `TelegramEmulator.group`."""

    id: int
    title: str


def _command_entities(text: str) -> list[dict[str, Any]]:
    if not text.startswith("/"):
        return []
    command = text.split(maxsplit=1)[0]
    return [{"type": "bot_command", "offset": 0, "length": utf16_len(command)}]


def _wanted(content: str, contains: str | None, predicate: Callable[[Any], bool] | None) -> str:
    parts = [f"containing {contains!r}"] if contains is not None else []
    if predicate is not None:
        parts.append(f"matching {getattr(predicate, '__name__', 'predicate')}")
    return f"{content} {' and '.join(parts)}".rstrip()


class Persona:
    """A user in one chat (their private chat, or a group via `in_group`).

    Every action returns the Update it queued. `expect`/`expect_edit` look only at what the
    bot did after this persona's last action or last match, including things that arrived
    before the call, so a test never races the bot.
    """

    def __init__(self, world: World, user: User, chat: Chat) -> None:
        self._world = world
        self.user = user
        self.chat = chat
        self._message_cursor = len(chat.events)
        self._edit_cursor = len(chat.events)
        self._views: dict[int, Persona] = {}

    @property
    def id(self) -> int:
        return self.user.id

    @property
    def chat_id(self) -> int:
        return self.chat.id

    def in_group(self, group: Group) -> Persona:
        """The same user acting in a group they were added to with `add_member`."""
        if group.id not in self._views:
            self._views[group.id] = Persona(self._world, self.user, self._world.chats[group.id])
        return self._views[group.id]

    def _acted(self, update: Update) -> Update:
        self._message_cursor = self._edit_cursor = len(self.chat.events)
        return update

    def _post(self, content: dict[str, Any], reply_to: int | None = None) -> Update:
        update = self._world.post_message(self.user, self.chat, content, reply_to=reply_to)
        return self._acted(update)

    # --- writing -----------------------------------------------------------------------------

    async def send_text(self, text: str, *, reply_to: int | None = None) -> Update:
        content: dict[str, Any] = {"text": text}
        if entities := _command_entities(text):
            content["entities"] = entities
        return self._post(content, reply_to)

    async def send_command(self, command: str, args: str | None = None) -> Update:
        """`send_command("/start", "lane_L01")` sends "/start lane_L01"."""
        command = command if command.startswith("/") else f"/{command}"
        return await self.send_text(f"{command} {args}" if args else command)

    def _photo_content(self, data: bytes, caption: str | None) -> dict[str, Any]:
        sizes = self._world.files.add_photo(data, passthrough=True)
        content: dict[str, Any] = {"photo": sizes}
        if caption:
            content["caption"] = caption
        return content

    async def send_photo(self, data: bytes, caption: str | None = None) -> Update:
        """A compressed photo: the bot sees JPEG sizes without EXIF, or the raw bytes when
        they do not decode."""
        return self._post(self._photo_content(data, caption))

    async def send_album(self, photos: Sequence[bytes], caption: str | None = None) -> list[Update]:
        """Photos sent together: one update each, one media_group_id, caption on the first."""
        group_id = str(20_000_000 + self._world.next_id())
        updates = []
        for index, data in enumerate(photos):
            content = self._photo_content(data, caption if index == 0 else None)
            updates.append(self._post(content | {"media_group_id": group_id}))
        return updates

    async def send_document(
        self,
        data: bytes,
        file_name: str = "file.bin",
        mime_type: str | None = None,
        caption: str | None = None,
        declared_size: int | None = None,
    ) -> Update:
        """A file sent uncompressed; `declared_size` fakes its size (e.g. 30 MB) without bytes."""
        stored = self._world.files.add(
            "document",
            data,
            declared_size=declared_size,
            file_name=file_name,
            mime_type=mime_type or guess_mime(file_name, None),
        )
        content: dict[str, Any] = {"document": stored.as_media()}
        if caption:
            content["caption"] = caption
        return self._post(content)

    async def send_location(self, latitude: float, longitude: float) -> Update:
        return self._post({"location": {"latitude": latitude, "longitude": longitude}})

    async def send_venue(
        self, latitude: float, longitude: float, title: str, address: str
    ) -> Update:
        location = {"latitude": latitude, "longitude": longitude}
        venue = {"location": location, "title": title, "address": address}
        return self._post({"venue": venue, "location": location})

    async def send_voice(self, data: bytes = _OGG, duration: int = 2) -> Update:
        stored = self._world.files.add("voice", data, mime_type="audio/ogg")
        return self._post({"voice": stored.as_media(duration=duration)})

    async def send_sticker(self, emoji: str = "👍") -> Update:
        stored = self._world.files.add("sticker", _WEBP, width=512, height=512)
        sticker = stored.as_media(
            type="regular", width=512, height=512, is_animated=False, is_video=False, emoji=emoji
        )
        return self._post({"sticker": sticker})

    async def send_video(self, data: bytes = _MP4, duration: int = 3) -> Update:
        stored = self._world.files.add("video", data, mime_type="video/mp4")
        return self._post({"video": stored.as_media(width=640, height=360, duration=duration)})

    async def send_animation(self, data: bytes = _MP4) -> Update:
        """A GIF; Telegram also fills `document` for clients that predate animations."""
        stored = self._world.files.add(
            "animation", data, file_name="animation.mp4", mime_type="video/mp4"
        )
        animation = stored.as_media(width=320, height=240, duration=1)
        return self._post({"animation": animation, "document": stored.as_media()})

    async def send_contact(self, phone_number: str = "+8613800138000") -> Update:
        contact = {
            "phone_number": phone_number,
            "first_name": self.user.first_name,
            "user_id": self.user.id,
        }
        return self._post({"contact": contact})

    async def send_poll(self, question: str = "?", options: Sequence[str] = ("A", "B")) -> Update:
        poll = {
            "id": str(30_000_000 + self._world.next_id()),
            "question": question,
            "options": [
                {"persistent_id": str(index), "text": option, "voter_count": 0}
                for index, option in enumerate(options)
            ],
            "total_voter_count": 0,
            "is_closed": False,
            "is_anonymous": True,
            "type": "regular",
            "allows_multiple_answers": False,
            "allows_revoting": False,
            "members_only": False,
        }
        return self._post({"poll": poll})

    async def forward_photo_from_channel(
        self, data: bytes, channel_title: str = "朝阳发布", caption: str | None = None
    ) -> Update:
        """A photo forwarded from a channel: `forward_origin` of type channel."""
        channel = {"id": -1001000000001, "type": "channel", "title": channel_title}
        origin = {
            "type": "channel",
            "chat": channel,
            "message_id": self._world.next_id(),
            "date": self._world.timestamp() - 3600,
        }
        return self._post(self._photo_content(data, caption) | {"forward_origin": origin})

    async def edit_text(self, message_id: int, text: str) -> Update:
        """Edit one of this user's text messages: the bot gets an edited_message."""
        content: dict[str, Any] = {"text": text}
        if entities := _command_entities(text):
            content["entities"] = entities
        return self._acted(self._world.post_edit(self.user, self.chat, message_id, content))

    async def press(
        self,
        text: str | None = None,
        *,
        callback_data: str | None = None,
        location: tuple[float, float] | None = None,
    ) -> Update:
        """Press a button by its text (or inline button by callback_data).

        Inline buttons are looked up in the newest bot message that has one; otherwise the
        newest reply keyboard is used: its button sends its text, or the given `location`
        when it has request_location, or a contact when it has request_contact.
        """
        if (text is None) == (callback_data is None):
            raise ValueError("press() takes a button text or callback_data=...")
        reply_keyboard_seen = False
        for message in reversed(list(self.chat.bot_messages.values())):
            if message.deleted:
                continue
            for button in inline_buttons(message.reply_markup):
                wanted = button.get("callback_data") if text is None else button["text"]
                if wanted != (callback_data if text is None else text):
                    continue
                if "callback_data" not in button:
                    raise AssertionError(f"button {button['text']!r} sends no callback: {button}")
                return await self.press_callback(message.message_id, button["callback_data"])
            markup = message.reply_markup
            if text is None or reply_keyboard_seen or markup is None or is_inline(markup):
                continue
            reply_keyboard_seen = "keyboard" in markup or bool(markup.get("remove_keyboard"))
            for button in reply_buttons(markup):
                if button["text"] == text:
                    return await self._press_reply_button(button, location)
        raise AssertionError(
            f"no button {text or callback_data!r} for {self.user.first_name}; recent transcript:\n"
            + "\n".join(self._world.transcript(self.chat.id))
        )

    async def _press_reply_button(
        self, button: dict[str, Any], location: tuple[float, float] | None
    ) -> Update:
        if button.get("request_location"):
            if location is None:
                raise AssertionError(f"{button['text']!r} shares a location: pass location=")
            return await self.send_location(*location)
        if button.get("request_contact"):
            return await self.send_contact()
        return await self.send_text(button["text"])

    async def press_callback(self, message_id: int, data: str) -> Update:
        """A callback with any payload on a bot message, e.g. a stale or forged button."""
        message = self.chat.bot_messages.get(message_id)
        if message is None:
            raise AssertionError(f"no bot message {message_id} in chat {self.chat.id}")
        return self._acted(self._world.post_callback(self.user, self.chat, message, data))

    async def block(self) -> Update:
        """Block the bot: its sends here now fail with 403."""
        return self._acted(self._world.post_block(self.user, self.chat, True))

    async def unblock(self) -> Update:
        return self._acted(self._world.post_block(self.user, self.chat, False))

    # --- reading -----------------------------------------------------------------------------

    def inbox(self) -> list[SentMessage]:
        """Every bot message in this chat, oldest first (deleted ones flagged)."""
        return self._world.messages_to(self.chat.id)

    @property
    def last(self) -> SentMessage | None:
        """The newest bot message not deleted."""
        return next((m for m in reversed(self.inbox()) if not m.deleted), None)

    def message(self, message_id: int) -> SentMessage:
        return self.chat.bot_messages[message_id]

    @property
    def callback_answers(self) -> list[CallbackAnswer]:
        return list(self._world.answers.get(self.user.id, []))

    @property
    def alerts(self) -> list[CallbackAnswer]:
        """Answers shown as a modal alert (show_alert=True) rather than a passing toast."""
        return [answer for answer in self.callback_answers if answer.show_alert]

    def transcript(self) -> list[str]:
        return self._world.transcript(self.chat.id)

    def _timeout(self, wanted: str, timeout: float) -> AssertionError:
        lines = "\n".join(f"  {line}" for line in self.transcript()) or "  (nothing)"
        return AssertionError(
            f"{self.user.first_name} (chat {self.chat.id}) got no {wanted} within {timeout}s;"
            f" recent transcript:\n{lines}"
        )

    async def expect(
        self,
        contains: str | None = None,
        *,
        predicate: Callable[[SentMessage], bool] | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> SentMessage:
        """The next bot message whose text/caption has `contains` and satisfies `predicate`."""
        events = self.chat.events

        def find() -> tuple[int, SentMessage] | None:
            for index in range(self._message_cursor, len(events)):
                message = events[index].message
                if events[index].kind != "message" or message is None:
                    continue
                if contains is not None and contains not in message.content:
                    continue
                if predicate is None or predicate(message):
                    return index, message
            return None

        try:
            index, message = await self._world.wait_until(find, timeout)
        except AssertionError:
            raise self._timeout(_wanted("bot message", contains, predicate), timeout) from None
        self._message_cursor = index + 1
        return message

    async def expect_edit(
        self,
        contains: str | None = None,
        *,
        predicate: Callable[[MessageEdit], bool] | None = None,
        message_id: int | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> MessageEdit:
        """The next edit of a bot message (optionally a given one) matching like `expect`."""
        events = self.chat.events

        def find() -> tuple[int, MessageEdit] | None:
            for index in range(self._edit_cursor, len(events)):
                edit = events[index].edit
                if edit is None or (message_id is not None and edit.message_id != message_id):
                    continue
                if contains is not None and contains not in edit.content:
                    continue
                if predicate is None or predicate(edit):
                    return index, edit
            return None

        try:
            index, edit = await self._world.wait_until(find, timeout)
        except AssertionError:
            raise self._timeout(_wanted("edit", contains, predicate), timeout) from None
        self._edit_cursor = index + 1
        return edit
