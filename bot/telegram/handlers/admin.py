"""The district's admin in chat: /ban <telegram id> [reason] and /unban <telegram id>."""

from __future__ import annotations

import logging

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot.domain import access, bans
from bot.telegram.outgoing import Outbox
from storage.models import Person

log = logging.getLogger(__name__)

MAX_TELEGRAM_ID = 2**52  # Telegram's ids fit in 52 bits


def _target(command: CommandObject) -> tuple[int, str | None] | None:
    """The Telegram id and the reason given, or None when the arguments are not that."""
    words = (command.args or "").split(maxsplit=1)
    if not words or not words[0].isdigit() or not 0 < int(words[0]) < MAX_TELEGRAM_ID:
        return None
    return int(words[0]), words[1] if len(words) > 1 else None


async def ban_command(
    message: Message, command: CommandObject, out: Outbox, person: Person
) -> None:
    me = out.to(person)
    if not access.allowed(person, access.Permission.BAN):
        me.say("input.unknown_command")  # admin commands are not advertised to others
        return
    target = _target(command)
    if target is None:
        me.say("admin.ban_usage")
        return
    telegram_id, reason = target
    try:
        banned = await bans.ban(out.session, telegram_id, by=person, reason=reason, now=out.now)
    except bans.BanRefused as exc:
        me.say(f"admin.ban_refused.{exc.code}", id=telegram_id)
        return
    log.warning("person %s banned person %s (%s)", person.id, banned.id, reason or "no reason")
    me.say("admin.banned", id=telegram_id)


async def unban_command(
    message: Message, command: CommandObject, out: Outbox, person: Person
) -> None:
    me = out.to(person)
    if not access.allowed(person, access.Permission.BAN):
        me.say("input.unknown_command")
        return
    target = _target(command)
    if target is None:
        me.say("admin.unban_usage")
        return
    telegram_id, _reason = target
    try:
        lifted = await bans.unban(out.session, telegram_id, by=person, now=out.now)
    except bans.BanRefused as exc:
        me.say(f"admin.ban_refused.{exc.code}", id=telegram_id)
        return
    log.warning("person %s lifted the ban on person %s", person.id, lifted.id)
    me.say("admin.unbanned", id=telegram_id)


def make_router() -> Router:
    """A fresh router with this area's handlers (one per dispatcher)."""
    router = Router(name="admin")
    router.message.filter(F.chat.type == "private")
    router.message.register(ban_command, Command("ban"))
    router.message.register(unban_command, Command("unban"))
    return router
