"""The Bot API methods: each validates as Telegram does, then reads or writes the World.

Longer than most modules (about 560 lines) on purpose: it is one table, a method of `BotApi`
per Bot API method the bot calls (about twenty, a few lines each) beside the checks they share
(`_target`, `_text`, `_admit` …). Split, the methods would lose those helpers or import them
back; the rules they follow (chats, limits, text) already live in `world`, `limits` and `text`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from itertools import islice
from typing import Any

from tgemu.files import MAX_DOWNLOAD, MAX_UPLOAD, StoredFile, Upload, guess_mime
from tgemu.http import Params
from tgemu.limits import Violation
from tgemu.models import CallbackAnswer, Chat, ChatEvent, SentMessage
from tgemu.text import (
    MAX_CALLBACK_ANSWER,
    MAX_CAPTION,
    MAX_TEXT,
    ApiError,
    bad_request,
    check_reply_markup,
    format_text,
    is_inline,
    utf16_len,
)
from tgemu.world import WebhookConfig, World

Handler = Callable[[Params], Awaitable[Any]]

_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
_COMMAND_RE = re.compile(r"[a-z0-9_]{1,32}")
_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")
_NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
_WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
_POLL_CONFLICT = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)


def _entity_list(value: Any, name: str) -> list[dict[str, Any]] | None:
    if value is None or (isinstance(value, list) and all(isinstance(e, dict) for e in value)):
        return value
    raise bad_request(f"can't parse {name.replace('_', ' ')} JSON object")


class BotApi:
    """Method handlers by lower-cased name (Telegram matches method names case-insensitively)."""

    def __init__(self, world: World) -> None:
        self.world = world
        self._poll_generation = 0
        handlers: dict[str, Handler] = {
            "getMe": self.get_me,
            "getUpdates": self.get_updates,
            "sendMessage": self.send_message,
            "sendPhoto": self.send_photo,
            "sendMediaGroup": self.send_media_group,
            "sendDocument": self.send_document,
            "sendLocation": self.send_location,
            "sendVenue": self.send_venue,
            "editMessageText": self.edit_message_text,
            "editMessageCaption": self.edit_message_caption,
            "editMessageReplyMarkup": self.edit_message_reply_markup,
            "deleteMessage": self.delete_message,
            "answerCallbackQuery": self.answer_callback_query,
            "getFile": self.get_file,
            "setWebhook": self.set_webhook,
            "deleteWebhook": self.delete_webhook,
            "getWebhookInfo": self.get_webhook_info,
            "setMyCommands": self.set_my_commands,
            "getMyCommands": self.get_my_commands,
            "deleteMyCommands": self.delete_my_commands,
            "sendChatAction": self.send_chat_action,
            "close": self.harmless,
            "logOut": self.harmless,
        }
        self.methods: dict[str, tuple[str, Handler]] = {
            name.lower(): (name, handler) for name, handler in handlers.items()
        }

    # --- shared checks -----------------------------------------------------------------------

    def _target(self, p: Params) -> Chat:
        raw = p.get("chat_id")
        if raw is None:
            raise bad_request("chat_id is empty")
        try:
            chat = self.world.chats.get(int(raw))
        except (TypeError, ValueError):
            chat = None  # @username: the emulated chats have none
        if chat is None or not chat.started:
            raise bad_request("chat not found")
        if chat.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return chat

    def _text(self, p: Params) -> tuple[str, list[dict[str, Any]]]:
        raw = p.text("text")
        if raw is None:
            raise bad_request("message text is empty")
        entities = _entity_list(p.json("entities"), "entities")
        text, entities = format_text(raw, p.text("parse_mode"), entities)
        if not text:
            raise bad_request("message text is empty")
        if utf16_len(text) > MAX_TEXT:
            raise bad_request("message is too long")
        return text, entities

    def _caption(self, p: Params) -> tuple[str | None, list[dict[str, Any]]]:
        raw = p.text("caption")
        if raw is None:
            return None, []
        entities = _entity_list(p.json("caption_entities"), "caption_entities")
        caption, entities = format_text(raw, p.text("parse_mode"), entities)
        if utf16_len(caption) > MAX_CAPTION:
            raise bad_request("message caption is too long")
        return caption or None, entities

    def _reply_to(self, chat: Chat, p: Params) -> int | None:
        parameters = p.json("reply_parameters")
        allow = p.flag("allow_sending_without_reply")
        if isinstance(parameters, dict):
            raw = parameters.get("message_id")
            allow = allow or bool(parameters.get("allow_sending_without_reply"))
            message_id = None if raw is None else int(raw)
        else:
            message_id = p.integer("reply_to_message_id")
        if message_id is None:
            return None
        if self.world.message_json(chat, message_id) is None:
            if allow:
                return None
            raise bad_request("message to be replied not found")
        return message_id

    def _admit(self, chat: Chat, method: str) -> None:
        """Count one sent message against Telegram's limits; with enforcement, refuse a breach."""
        when = self.world.now()
        breaches = self.world.limiter.breaches(chat.id, chat.private, when.timestamp())
        for rule, _ in breaches:
            self.world.violations.add(Violation(rule, chat.id, method, when))
        if breaches and self.world.enforce_limits:
            wait = max(retry for _, retry in breaches)
            raise ApiError(429, f"Too Many Requests: retry after {wait}", retry_after=wait)
        self.world.limiter.record(chat.id, when.timestamp())

    def _known_file(self, file_id: str, kind: str) -> StoredFile:
        stored = self.world.files.get(file_id)
        if stored is None:
            if file_id.startswith(("http://", "https://")):
                raise bad_request("failed to get HTTP URL content")
            raise bad_request("wrong file identifier/HTTP URL specified")
        if stored.kind != kind:
            raise bad_request(
                f"can't use file of type {stored.kind.capitalize()} as {kind.capitalize()}"
            )
        return stored

    def _photo(self, source: Upload | str | None) -> dict[str, Any]:
        if source is None:
            raise bad_request("there is no photo in the request")
        if isinstance(source, Upload):
            if not source.data:
                raise bad_request("file must be non-empty")
            sizes = self.world.files.add_photo(source.data, passthrough=False)
            if sizes is None:
                raise bad_request("IMAGE_PROCESS_FAILED")
        else:
            stored = self._known_file(source, "photo")
            sizes = stored.photo or [stored.photo_size()]
        largest = self.world.files.get(sizes[-1]["file_id"])
        return {"photo": sizes, "photo_bytes": largest.data if largest else None}

    def _document(self, source: Upload | str | None) -> dict[str, Any]:
        if source is None:
            raise bad_request("there is no document in the request")
        if isinstance(source, Upload):
            if not source.data:
                raise bad_request("file must be non-empty")
            if len(source.data) > MAX_UPLOAD:
                raise ApiError(413, "Request Entity Too Large")
            name = source.filename or "file"
            mime = guess_mime(name, source.content_type)
            stored = self.world.files.add("document", source.data, file_name=name, mime_type=mime)
        else:
            stored = self._known_file(source, "document")
        return {"document": stored.as_media(), "document_bytes": stored.data}

    def _location(self, p: Params) -> dict[str, Any]:
        latitude, longitude = p.number("latitude"), p.number("longitude")
        if latitude is None or longitude is None:
            raise bad_request('parameter "latitude" and "longitude" are required')
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise bad_request("wrong location specified")
        location: dict[str, Any] = {"latitude": latitude, "longitude": longitude}
        for key in ("horizontal_accuracy", "live_period", "heading"):
            if (value := p.number(key)) is not None:
                location[key] = value
        return location

    def _send(self, chat: Chat, p: Params, method: str, **content: Any) -> dict[str, Any]:
        """The common tail of single-message sends: keyboard, reply, limits, then store."""
        markup = check_reply_markup(p.json("reply_markup"))
        reply_to = self._reply_to(chat, p)
        self._admit(chat, method)
        message = self.world.record_sent(
            chat, method, reply_markup=markup, reply_to_message_id=reply_to, **content
        )
        return self.world.bot_message_json(chat, message)

    # --- sending -----------------------------------------------------------------------------

    async def send_message(self, p: Params) -> Any:
        chat = self._target(p)
        text, entities = self._text(p)
        return self._send(
            chat,
            p,
            "sendMessage",
            text=text,
            entities=entities,
            raw_text=p.text("text"),
            parse_mode=p.text("parse_mode"),
        )

    async def send_photo(self, p: Params) -> Any:
        chat = self._target(p)
        photo = self._photo(p.file("photo"))
        caption, entities = self._caption(p)
        return self._send(
            chat,
            p,
            "sendPhoto",
            caption=caption,
            entities=entities,
            raw_text=p.text("caption"),
            parse_mode=p.text("parse_mode"),
            **photo,
        )

    async def send_document(self, p: Params) -> Any:
        chat = self._target(p)
        document = self._document(p.file("document"))
        caption, entities = self._caption(p)
        return self._send(
            chat,
            p,
            "sendDocument",
            caption=caption,
            entities=entities,
            raw_text=p.text("caption"),
            parse_mode=p.text("parse_mode"),
            **document,
        )

    async def send_location(self, p: Params) -> Any:
        chat = self._target(p)
        return self._send(chat, p, "sendLocation", location=self._location(p))

    async def send_venue(self, p: Params) -> Any:
        chat = self._target(p)
        location = self._location(p)
        title, address = p.text("title"), p.text("address")
        if title is None or address is None:
            raise bad_request('parameter "title" and "address" are required')
        venue: dict[str, Any] = {"location": location, "title": title, "address": address}
        for key in ("foursquare_id", "foursquare_type", "google_place_id", "google_place_type"):
            if (value := p.text(key)) is not None:
                venue[key] = value
        return self._send(chat, p, "sendVenue", location=location, venue=venue)

    async def send_media_group(self, p: Params) -> Any:
        chat = self._target(p)
        media = p.json("media")
        if media is None:
            raise bad_request('parameter "media" is required')
        if not isinstance(media, list) or not all(isinstance(item, dict) for item in media):
            raise bad_request("can't parse media JSON object")
        if not media:
            raise bad_request("there are no messages to send")
        if len(media) > 10:
            raise bad_request("too many messages to send as an album")
        kinds = {item.get("type") for item in media}
        if not kinds <= {"photo", "document"}:
            unsupported = sorted(str(kind) for kind in kinds - {"photo", "document"})
            raise bad_request(f"InputMedia of type {unsupported[0]} is not emulated")
        if "document" in kinds and len(kinds) > 1:
            raise bad_request("document can't be mixed with other media types")
        reply_to = self._reply_to(chat, p)
        prepared: list[dict[str, Any]] = []
        for item in media:
            sub = Params(item, p.files)
            source = sub.file("media")
            content = self._photo(source) if item["type"] == "photo" else self._document(source)
            caption, entities = self._caption(sub)
            raw, mode = sub.text("caption"), sub.text("parse_mode")
            prepared.append(
                content
                | {"caption": caption, "entities": entities, "raw_text": raw}
                | {"parse_mode": mode}
            )
        self._admit(chat, "sendMediaGroup")
        group_id = str(10_000_000 + self.world.next_id())
        sent = [
            self.world.record_sent(
                chat,
                "sendMediaGroup",
                media_group_id=group_id,
                reply_to_message_id=reply_to,
                **content,
            )
            for content in prepared
        ]
        return [self.world.bot_message_json(chat, message) for message in sent]

    async def send_chat_action(self, p: Params) -> Any:
        self._target(p)
        if p.text("action") not in _CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        return True

    # --- editing and deleting ----------------------------------------------------------------

    def _editable(self, p: Params) -> tuple[Chat, SentMessage]:
        if p.get("inline_message_id") is not None:
            raise bad_request("inline messages are not emulated")
        chat = self._target(p)
        message_id = p.integer("message_id")
        if message_id is None:
            raise bad_request("message identifier is not specified")
        message = chat.bot_messages.get(message_id)
        if message is None or message.deleted:
            if message_id in chat.user_messages:
                raise bad_request("message can't be edited")
            raise bad_request("message to edit not found")
        return chat, message

    def _new_markup(self, p: Params, message: SentMessage) -> dict[str, Any] | None:
        """Edits carry only inline keyboards; leaving one out removes it, as in Telegram."""
        markup = check_reply_markup(p.json("reply_markup"))
        if markup is not None and not is_inline(markup):
            raise bad_request("inline keyboard expected")
        if markup is None and message.reply_markup and not is_inline(message.reply_markup):
            return message.reply_markup
        return markup

    def _edited(self, chat: Chat, message: SentMessage, method: str) -> Any:
        self.world.record_edit(chat, message, method)
        return self.world.bot_message_json(chat, message)

    async def edit_message_text(self, p: Params) -> Any:
        chat, message = self._editable(p)
        if message.text is None:
            raise bad_request("there is no text in the message to edit")
        text, entities = self._text(p)
        markup = self._new_markup(p, message)
        if (text, entities, markup) == (message.text, message.entities, message.reply_markup):
            raise bad_request(_NOT_MODIFIED)
        message.text, message.entities, message.reply_markup = text, entities, markup
        message.raw_text, message.parse_mode = p.text("text"), p.text("parse_mode")
        return self._edited(chat, message, "editMessageText")

    async def edit_message_caption(self, p: Params) -> Any:
        chat, message = self._editable(p)
        if not message.photo and message.document is None:
            raise bad_request("there is no caption in the message to edit")
        caption, entities = self._caption(p)
        markup = self._new_markup(p, message)
        if (caption, entities, markup) == (message.caption, message.entities, message.reply_markup):
            raise bad_request(_NOT_MODIFIED)
        message.caption, message.entities, message.reply_markup = caption, entities, markup
        message.raw_text, message.parse_mode = p.text("caption"), p.text("parse_mode")
        return self._edited(chat, message, "editMessageCaption")

    async def edit_message_reply_markup(self, p: Params) -> Any:
        chat, message = self._editable(p)
        markup = self._new_markup(p, message)
        if markup == message.reply_markup:
            raise bad_request(_NOT_MODIFIED)
        message.reply_markup = markup
        return self._edited(chat, message, "editMessageReplyMarkup")

    async def delete_message(self, p: Params) -> Any:
        chat = self._target(p)
        message_id = p.integer("message_id")
        if message_id is None:
            raise bad_request("message identifier is not specified")
        message = chat.bot_messages.get(message_id)
        if message is not None and not message.deleted:
            message.deleted = True
        elif chat.user_messages.pop(message_id, None) is None:
            raise bad_request("message to delete not found")
        chat.events.append(ChatEvent("delete", f"✗ #{message_id} deleted", message=message))
        return True

    async def answer_callback_query(self, p: Params) -> Any:
        query_id = p.text("callback_query_id") or ""
        text = p.text("text")
        if text is not None and len(text) > MAX_CALLBACK_ANSWER:
            raise bad_request("MESSAGE_TOO_LONG")
        pending = self.world.callbacks.pop(query_id, None)
        if pending is None:
            raise bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        answer = CallbackAnswer(
            callback_query_id=query_id,
            message_id=pending.message_id,
            data=pending.data,
            text=text,
            show_alert=p.flag("show_alert"),
            url=p.text("url"),
        )
        self.world.answers.setdefault(pending.user_id, []).append(answer)
        chat = self.world.chats.get(pending.chat_id)
        if chat is not None and text:
            shown = "alert" if answer.show_alert else "toast"
            chat.events.append(ChatEvent("answer", f"ⓘ {shown}: {text}"))
        return True

    # --- files, identity, commands -----------------------------------------------------------

    async def get_file(self, p: Params) -> Any:
        stored = self.world.files.get(str(p.require("file_id")))
        if stored is None:
            raise bad_request("invalid file_id")
        if stored.file_size > MAX_DOWNLOAD:
            raise bad_request("file is too big")
        return stored.as_file()

    async def get_me(self, p: Params) -> Any:
        return self.world.bot_json() | {
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def _commands_key(self, p: Params) -> tuple[str, str]:
        scope = p.json("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), p.text("language_code") or ""

    async def set_my_commands(self, p: Params) -> Any:
        commands = p.json("commands")
        if not isinstance(commands, list) or not all(isinstance(c, dict) for c in commands):
            raise bad_request("can't parse commands JSON object")
        for command in commands:
            if not _COMMAND_RE.fullmatch(str(command.get("command", ""))):
                raise bad_request("BOT_COMMAND_INVALID")
        self.world.commands[self._commands_key(p)] = [
            {"command": str(c["command"]), "description": str(c.get("description", ""))}
            for c in commands
        ]
        return True

    async def get_my_commands(self, p: Params) -> Any:
        return self.world.commands.get(self._commands_key(p), [])

    async def delete_my_commands(self, p: Params) -> Any:
        self.world.commands.pop(self._commands_key(p), None)
        return True

    async def harmless(self, p: Params) -> Any:
        return True

    # --- updates and webhooks ----------------------------------------------------------------

    def _set_allowed(self, p: Params) -> None:
        allowed = p.json("allowed_updates")
        if allowed is None:
            return
        if not isinstance(allowed, list):
            raise bad_request("can't parse allowed updates JSON object")
        self.world.allowed_updates = frozenset(str(kind) for kind in allowed)

    async def get_updates(self, p: Params) -> Any:
        """Long polling: answers at once when updates wait, else when one arrives or timeout
        passes; a newer getUpdates ends an older one with 409, as on Telegram."""
        world = self.world
        if world.webhook is not None:
            raise ApiError(409, _WEBHOOK_CONFLICT)
        limit = min(max(p.integer("limit") or 100, 1), 100)
        timeout = max(p.integer("timeout") or 0, 0)
        self._set_allowed(p)
        world.confirm_updates(p.integer("offset") or 0)
        self._poll_generation += 1
        generation = self._poll_generation
        world.touch()
        await world.wait_for(
            lambda: (
                bool(world.updates)
                or generation != self._poll_generation
                or world.webhook is not None
                or world.closing
            ),
            timeout,
        )
        if generation != self._poll_generation:
            raise ApiError(409, _POLL_CONFLICT)
        if world.webhook is not None:
            raise ApiError(409, _WEBHOOK_CONFLICT)
        return list(islice(world.updates, limit))

    async def set_webhook(self, p: Params) -> Any:
        url = p.text("url")
        if url is None:
            return await self.delete_webhook(p)
        if not url.startswith(("http://", "https://")):
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        secret = p.text("secret_token")
        if secret is not None and not _SECRET_RE.fullmatch(secret):
            raise bad_request("secret token contains unallowed characters")
        self._set_allowed(p)
        if p.flag("drop_pending_updates"):
            self.world.updates.clear()
        self.world.webhook = WebhookConfig(url, secret, p.integer("max_connections") or 40)
        self.world.touch()
        return True

    async def delete_webhook(self, p: Params) -> Any:
        if p.flag("drop_pending_updates"):
            self.world.updates.clear()
        self.world.webhook = None
        self.world.touch()
        return True

    async def get_webhook_info(self, p: Params) -> Any:
        hook = self.world.webhook
        info: dict[str, Any] = {
            "url": hook.url if hook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self.world.updates),
        }
        if hook is not None:
            info["max_connections"] = hook.max_connections
            info["ip_address"] = "127.0.0.1"
            if hook.last_error_date is not None:
                info["last_error_date"] = hook.last_error_date
                info["last_error_message"] = hook.last_error_message
        if self.world.allowed_updates:
            info["allowed_updates"] = sorted(self.world.allowed_updates)
        return info
