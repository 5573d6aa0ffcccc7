"""People in chat: admins /people add|remove|list; anyone /whoami.

Changes go through bot/domain/people.py, as `python -m bot people` does, so each is recorded in
`role_changes` with the admin who made it.
"""

from __future__ import annotations

import logging

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot.context import AppContext
from bot.domain import access
from bot.domain.district import District
from bot.domain.people import (
    VIA_CHAT,
    PeopleError,
    everyone_with_roles,
    grant,
    remove_roles,
    scope_kind,
)
from bot.i18n import Safe
from bot.telegram.notify import announce_handover
from bot.telegram.outgoing import Outbox, Recipient, split_text
from storage.models import Person, Role
from storage.people import person_by_telegram_id

log = logging.getLogger(__name__)

MAX_TELEGRAM_ID = 2**52  # Telegram's ids fit in 52 bits


def telegram_id(word: str) -> int | None:
    return int(word) if word.isdigit() and 0 < int(word) < MAX_TELEGRAM_ID else None


def role_label(me: Recipient, district: District, role: str, scope: str | None) -> Safe:
    """ "Lane chief, 朝阳门外大街 (CW-001)": the role's name, and where, by name and id (HTML)."""
    name = me.t(f"role.{role}") if role in access.ROLES else role
    if scope is None:
        return Safe(name)
    places = (district.lanes, district.street_offices, district.departments)
    place = next((p[scope] for p in places if scope in p), None)
    where = f"{district.name(place, me.language)} ({scope})" if place is not None else scope
    return Safe(me.t("role.scoped", role=Safe(name), scope=where))


def roles_text(me: Recipient, district: District, roles: list[Role]) -> Safe:
    return Safe("; ".join(role_label(me, district, r.role, r.scope) for r in roles))


async def whoami(message: Message, ctx: AppContext, out: Outbox, person: Person) -> None:
    me = out.to(person)
    if not person.roles:
        me.say("whoami.resident", id=person.telegram_id)
        return
    me.say("whoami.roles", id=person.telegram_id, roles=roles_text(me, ctx.district, person.roles))


async def people_command(
    message: Message, command: CommandObject, ctx: AppContext, out: Outbox, person: Person
) -> None:
    me = out.to(person)
    if not access.allowed(person, access.Permission.MANAGE_PEOPLE):
        me.say("people.not_allowed")
        return
    words = (command.args or "").split()
    if not words or words == ["list"]:
        await list_people(ctx, out, me)
    elif words[0] == "add" and len(words) in (3, 4):
        await add(ctx, out, me, person, words[1], words[2], words[3] if len(words) > 3 else None)
    elif words[0] == "remove" and len(words) in (2, 3, 4):
        role, scope = [*words[2:], None, None][:2]
        await remove(ctx, out, me, person, words[1], role, scope)
    else:
        me.say("people.usage", roles=", ".join(access.ROLES))


async def add(
    ctx: AppContext,
    out: Outbox,
    me: Recipient,
    admin: Person,
    who: str,
    role: str,
    scope: str | None,
) -> None:
    target = telegram_id(who)
    if target is None:
        me.say("people.bad_id", value=who)
        return
    known = await person_by_telegram_id(out.session, target)
    try:
        person, added = await grant(
            out.session,
            ctx.district,
            telegram_id=target,
            role=role.lower(),
            scope=scope,
            kind=scope_kind(ctx.district, role.lower(), scope),
            name=None,
            now=out.now,
            granted_by=admin.id,
            via=VIA_CHAT,
        )
    except PeopleError as exc:
        roles = ", ".join(access.ROLES)
        me.say(f"people.error.{exc.code}", role=role, scope=scope or "", roles=roles)
        return
    label = role_label(me, ctx.district, role.lower(), scope)
    if not added:
        me.say("people.already", id=target, role=label)
        return
    log.warning("person %s gave person %s the role %s %s", admin.id, person.id, role, scope)
    me.say("people.added", id=target, role=label)
    # Someone who has talked to the bot hears of it; a new account is told nothing until then.
    if known is not None and not known.unreachable and known.id != admin.id:
        to = out.to(known)
        to.say("people.granted_you", role=role_label(to, ctx.district, role.lower(), scope))


async def remove(
    ctx: AppContext,
    out: Outbox,
    me: Recipient,
    admin: Person,
    who: str,
    role: str | None,
    scope: str | None,
) -> None:
    target = telegram_id(who)
    if target is None:
        me.say("people.bad_id", value=who)
        return
    role = role.lower() if role else None
    if role is not None and role not in access.ROLES:
        me.say("people.error.unknown_role", role=role, scope="", roles=", ".join(access.ROLES))
        return
    if target == admin.telegram_id and role in (None, access.ADMIN):
        me.say("people.keep_yourself")  # the chat would lose its last way in
        return
    removal = await remove_roles(
        out.session,
        telegram_id=target,
        role=role,
        scope=scope,
        now=out.now,
        removed_by=admin.id,
        via=VIA_CHAT,
    )
    if not removal.count:
        me.say("people.none_removed", id=target)
        return
    log.warning("person %s removed %s role(s) from %s", admin.id, removal.count, target)
    me.say("people.removed", id=target, count=removal.count)
    person = await person_by_telegram_id(out.session, target)
    if person is None:
        return
    if not person.unreachable:
        out.to(person).say("people.removed_you")
    await announce_handover(ctx, out, removal, person)


async def list_people(ctx: AppContext, out: Outbox, me: Recipient) -> None:
    people = await everyone_with_roles(out.session)
    if not people:
        me.say("people.list_empty")
        return
    lines = [me.t("people.list_title", count=len(people))]
    for p in people:
        lines.append(
            me.t(
                "people.list_line",
                id=p.telegram_id,
                name=p.name or "—",
                roles=roles_text(me, ctx.district, p.roles),
            )
        )
    for piece in split_text("\n".join(lines), sep="\n"):
        me.text(piece)


def make_router() -> Router:
    """A fresh router with this area's handlers (one per dispatcher)."""
    router = Router(name="people")
    router.message.filter(F.chat.type == "private")
    router.message.register(whoami, Command("whoami"))
    router.message.register(people_command, Command("people"))
    return router
