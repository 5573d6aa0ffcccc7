"""Last router: a clear answer for whatever no other handler took."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.types import Message

from bot.outgoing import Outbox
from storage.models import Person

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
    out.to(person).say("input.unsupported")


async def idle_text(message: Message, out: Outbox, person: Person) -> None:
    key = "input.unknown_command" if (message.text or "").startswith("/") else "input.idle_text"
    out.to(person).say(key)


async def anything_else(message: Message, out: Outbox, person: Person) -> None:
    out.to(person).say("input.unsupported")


def make_router() -> Router:
    """A fresh router with this area's handlers (one per dispatcher)."""
    router = Router(name="fallback")
    router.message.filter(F.chat.type == "private")
    router.message.register(unsupported, UNSUPPORTED)
    router.message.register(idle_text, F.text)
    router.message.register(anything_else)
    return router
