"""Greeting, help, language, cancel, and a clear answer for what the bot cannot take."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message, ReplyKeyboardRemove

from bot.context import AppContext
from bot.telegram.handlers.resident import LANE_PRESET
from bot.telegram.keyboards import LanguageChoice, language_keyboard
from bot.telegram.menus import refresh_menu
from bot.telegram.outgoing import Outbox
from storage.models import Person


async def start(
    message: Message,
    command: CommandObject,
    state: FSMContext,
    ctx: AppContext,
    out: Outbox,
    person: Person,
) -> None:
    me = out.to(person)
    if person.roles:  # their menu again: one set before they ever started the bot was refused
        refresh_menu(out.session, person, out.now)
    district = ctx.district.name(ctx.district, me.language)
    payload = (command.args or "").strip()
    if payload.startswith("lane_"):
        lane = ctx.district.lanes.get(payload.removeprefix("lane_"))
        if lane is None:
            me.say("start.unknown_lane", district=district)
            return
        await state.clear()
        await state.update_data({LANE_PRESET: {"lane_id": lane.id, "street_id": lane.street_id}})
        me.say("start.lane", lane=ctx.district.name(lane, me.language), district=district)
        return
    me.say("start.greeting", district=district)


async def help_command(message: Message, ctx: AppContext, out: Outbox, person: Person) -> None:
    me = out.to(person)
    me.say("help.text", district=ctx.district.name(ctx.district, me.language))


async def cancel(message: Message, state: FSMContext, out: Outbox, person: Person) -> None:
    had_something = await state.get_state() is not None
    await state.clear()
    key = "cancel.done" if had_something else "cancel.nothing"
    out.to(person).say(key, ReplyKeyboardRemove())


async def language_command(message: Message, out: Outbox, person: Person) -> None:
    out.to(person).say("lang.choose", language_keyboard())


async def language_chosen(
    query: CallbackQuery, callback_data: LanguageChoice, out: Outbox, person: Person
) -> None:
    if callback_data.lang not in ("zh", "en"):
        await query.answer()
        return
    person.language = callback_data.lang
    person.language_chosen = True
    await query.answer()
    out.to(person).say("lang.set")


def make_router() -> Router:
    """A fresh router with this area's handlers (one per dispatcher)."""
    router = Router(name="common")
    router.message.filter(F.chat.type == "private")
    router.message.register(start, CommandStart())
    router.message.register(help_command, Command("help"))
    router.message.register(cancel, Command("cancel"))
    router.message.register(language_command, Command("lang"))
    router.callback_query.register(language_chosen, LanguageChoice.filter())
    return router
