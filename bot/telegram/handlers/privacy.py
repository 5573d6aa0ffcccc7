"""/forget: a resident asks for what identifies them to be deleted (see bot/domain/forget.py)."""

from __future__ import annotations

import logging
import secrets

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message, ReplyKeyboardRemove

from bot.domain.forget import forget, reported
from bot.domain.lifecycle import FINAL, OPEN
from bot.telegram.keyboards import ForgetAction, forget_keyboard
from bot.telegram.outgoing import Outbox
from storage.models import Person

log = logging.getLogger(__name__)

NONCE = "forget_nonce"


async def forget_command(message: Message, state: FSMContext, out: Outbox, person: Person) -> None:
    me = out.to(person)
    if person.roles:
        me.say("forget.staff")
        return
    nonce = secrets.token_hex(8)
    await state.update_data({NONCE: nonce})  # only the newest question's buttons work
    total = await reported(out.session, person, OPEN | FINAL)
    still_open = await reported(out.session, person, OPEN)
    me.say("forget.confirm", forget_keyboard(me.language, nonce), cases=total, open=still_open)


async def forget_answer(
    query: CallbackQuery,
    callback_data: ForgetAction,
    state: FSMContext,
    out: Outbox,
    person: Person,
) -> None:
    me = out.to(person)
    if (await state.get_data()).get(NONCE) != callback_data.nonce:
        await query.answer(me.t("forget.expired"), show_alert=True)
        return
    if query.message is not None:
        me.edit_markup(query.message.message_id)
    if callback_data.action != "yes" or person.roles:
        await state.update_data({NONCE: None})
        await query.answer()
        me.say("forget.kept")
        return
    cases = await forget(out.session, person, out.now)
    await state.clear()  # a draft in progress holds their words and photos too
    await query.answer()
    log.info("person %s was forgotten; %s cases unlinked", person.id, cases)
    me.say("forget.done", ReplyKeyboardRemove(), cases=cases)


def make_router() -> Router:
    """A fresh router with this area's handlers (one per dispatcher)."""
    router = Router(name="privacy")
    router.message.filter(F.chat.type == "private")
    router.callback_query.filter(F.message.chat.type == "private")
    router.message.register(forget_command, Command("forget"))
    router.callback_query.register(forget_answer, ForgetAction.filter())
    return router
