"""Last router: a clear answer for whatever no other handler took."""

from __future__ import annotations

import logging

from aiogram import F, Router
from aiogram.types import CallbackQuery, Message

from bot.telegram.outgoing import Outbox
from storage.models import Person

log = logging.getLogger(__name__)

UNSUPPORTED = (
    F.voice
    | F.audio
    | F.video
    | F.video_note
    | F.sticker
    | F.animation
    | F.contact
    | F.poll
    | F.dice
    | F.game
)


async def unsupported(message: Message, out: Outbox, person: Person) -> None:
    log.info("unsupported %s from person %s", _kind(message), person.id)
    out.to(person).say("input.unsupported")


def _kind(message: Message) -> str:
    kind = message.content_type
    return str(getattr(kind, "value", kind))  # the enum's value ("video"), not its name


async def idle_text(message: Message, out: Outbox, person: Person) -> None:
    key = "input.unknown_command" if (message.text or "").startswith("/") else "input.idle_text"
    out.to(person).say(key)


async def anything_else(message: Message, out: Outbox, person: Person) -> None:
    log.info("unsupported %s from person %s", _kind(message), person.id)
    out.to(person).say("input.unsupported")


async def edited(message: Message, out: Outbox, person: Person) -> None:
    """An edit is not a new answer: the bot has acted on the message as first sent."""
    log.info("edited message %s from person %s not applied", message.message_id, person.id)
    out.to(person).say("input.edited")


async def unknown_button(query: CallbackQuery, out: Outbox, person: Person) -> None:
    """A button no handler took: malformed, forged or from an old version; nothing is done."""
    log.warning("unknown button %r from person %s", (query.data or "")[:64], person.id)
    await query.answer(out.to(person).t("button.unknown"), show_alert=True)


def make_router() -> Router:
    """A fresh router with this area's handlers (one per dispatcher)."""
    router = Router(name="fallback")
    router.message.filter(F.chat.type == "private")
    router.message.register(unsupported, UNSUPPORTED)
    router.message.register(idle_text, F.text)
    router.message.register(anything_else)
    router.edited_message.register(edited, F.chat.type == "private")
    router.callback_query.register(unknown_button)
    return router
