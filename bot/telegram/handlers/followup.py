"""A resident's cases after reporting: list, timeline, adding a note or photo, withdrawing."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message

from bot.context import AppContext
from bot.domain import access
from bot.domain.access import can_view
from bot.domain.cases import CaseError, add_note, add_photo, withdraw
from bot.domain.lifecycle import OPEN
from bot.telegram.errors import alert_case_error, case_error_text
from bot.telegram.handlers.intake import receive_photo
from bot.telegram.keyboards import CaseAction, case_keyboard, withdraw_keyboard
from bot.telegram.outgoing import Outbox, Recipient
from bot.telegram.views import case_detail, case_line
from storage.cases import case_by_number, cases_of_reporter, timeline
from storage.models import Case, Person

MY_CASES_SHOWN = 10


class CaseInput(StatesGroup):
    note = State()
    photo = State()


async def my_cases(message: Message, ctx: AppContext, out: Outbox, person: Person) -> None:
    me = out.to(person)
    cases = await cases_of_reporter(out.session, person.id, MY_CASES_SHOWN)
    if not cases:
        me.say("my.none")
        return
    lines = [me.t("my.header", n=len(cases))]
    lines += [case_line(me.language, case, ctx.district.tz) for case in cases]
    lines.append(me.t("my.footer"))
    me.text("\n".join(lines))


async def show_case(
    message: Message, command: CommandObject, ctx: AppContext, out: Outbox, person: Person
) -> None:
    me = out.to(person)
    number = (command.args or "").strip()
    if not number:
        me.say("case.usage")
        return
    case = await case_by_number(out.session, number)
    if case is None or not can_view(person, case):
        me.say("case.not_found", number=number)
        return
    await _send_case(me, ctx, out, case, person)


async def _send_case(
    me: Recipient, ctx: AppContext, out: Outbox, case: Case, person: Person
) -> None:
    events = await timeline(out.session, case.id)
    text = case_detail(me.language, ctx.district, case, events, ctx.district.tz)
    markup = None
    if case.state in OPEN and access.allowed(person, access.Permission.ADD_NOTE, case):
        markup = case_keyboard(me.language, case.id)
    me.text(text, markup, case_id=case.id)


async def _own_open_case(
    query: CallbackQuery,
    case_id: int,
    action: access.Permission,
    out: Outbox,
    person: Person,
) -> Case | None:
    me = out.to(person)
    case = await out.session.get(Case, case_id)
    if case is None or not access.allowed(person, action, case):
        await query.answer(me.t("case.not_yours"), show_alert=True)
        return None
    if case.state not in OPEN:
        await query.answer(
            me.t("case.already_closed", state=me.t(f"state.{case.state}")), show_alert=True
        )
        return None
    return case


async def case_button(
    query: CallbackQuery,
    callback_data: CaseAction,
    state: FSMContext,
    out: Outbox,
    person: Person,
) -> None:
    me = out.to(person)
    if callback_data.action == "withdraw_no":
        await query.answer(me.t("case.withdraw_kept"))
        if query.message is not None:
            me.edit_markup(query.message.message_id)
        return
    action = callback_data.action
    needs = (
        access.Permission.WITHDRAW if action.startswith("withdraw") else access.Permission.ADD_NOTE
    )
    case = await _own_open_case(query, callback_data.case_id, needs, out, person)
    if case is None:
        return
    if action == "note":
        await state.set_state(CaseInput.note)
        await state.update_data(case_id=case.id)
        me.say("case.ask_note", number=case.number)
    elif action == "photo":
        await state.set_state(CaseInput.photo)
        await state.update_data(case_id=case.id)
        me.say("case.ask_photo", number=case.number)
    elif action == "withdraw":
        me.say("case.confirm_withdraw", withdraw_keyboard(me.language, case.id), number=case.number)
    elif action == "withdraw_yes":
        try:
            await withdraw(out.session, case, person, out.now)
        except CaseError as exc:
            await alert_case_error(query, exc, me)
            return
        if query.message is not None:
            me.edit_markup(query.message.message_id)
        me.say("case.withdrawn", number=case.number)
    await query.answer()


async def note_received(message: Message, state: FSMContext, out: Outbox, person: Person) -> None:
    me = out.to(person)
    case = await _pending_case(state, out)
    if case is None:
        await state.clear()
        me.say("case.input_gone")
        return
    try:
        add_note(out.session, case, person, message.text or "", out.now)
    except CaseError as exc:
        me.text(case_error_text(exc, me))
        if exc.code not in ("empty_note", "note_too_long"):
            await state.clear()
        return
    await state.clear()
    me.say("case.note_added", number=case.number)


async def photo_for_case(
    message: Message, bot: Bot, state: FSMContext, ctx: AppContext, out: Outbox, person: Person
) -> None:
    me = out.to(person)
    received = await receive_photo(bot, ctx, message, me)
    if received is None:
        return
    photo, _gps = received
    case = await _pending_case(state, out)
    if case is None:
        await state.clear()
        me.say("case.input_gone")
        return
    try:
        await add_photo(out.session, case, person, photo, out.now)
    except CaseError as exc:
        me.text(case_error_text(exc, me))
        await state.clear()
        return
    await state.clear()
    me.say("case.photo_added", number=case.number)


async def not_a_photo(message: Message, out: Outbox, person: Person) -> None:
    out.to(person).say("case.photo_expected")


async def _pending_case(state: FSMContext, out: Outbox) -> Case | None:
    case_id = (await state.get_data()).get("case_id")
    return await out.session.get(Case, case_id) if isinstance(case_id, int) else None


def make_router() -> Router:
    """A fresh router with this area's handlers (one per dispatcher)."""
    router = Router(name="followup")
    router.message.filter(F.chat.type == "private")
    router.message.register(my_cases, Command("my"))
    router.message.register(show_case, Command("case"))
    router.callback_query.register(case_button, CaseAction.filter())
    router.message.register(note_received, CaseInput.note, F.text)
    router.message.register(photo_for_case, CaseInput.photo, F.photo | F.document)
    router.message.register(not_a_photo, CaseInput.photo)
    return router
