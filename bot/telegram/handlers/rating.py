"""The resident rates a resolved case; a low rating or "not fixed" reopens it."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message

from bot.context import AppContext
from bot.domain import access, handling, lifecycle
from bot.domain.cases import CaseError
from bot.domain.lifecycle import Action, startable
from bot.telegram.errors import alert_case_error, case_error_text
from bot.telegram.keyboards import RateAction
from bot.telegram.notify import assignees, refresh_cards, supervisors
from bot.telegram.outgoing import Outbox
from storage.models import Case, Person


class RatingComment(StatesGroup):
    comment = State()


async def rated(
    query: CallbackQuery,
    callback_data: RateAction,
    state: FSMContext,
    ctx: AppContext,
    out: Outbox,
    person: Person,
) -> None:
    me = out.to(person)
    case = await out.session.get(Case, callback_data.case_id)
    if case is None or not access.allowed(person, access.Permission.RATE, case):
        await query.answer(me.t("case.not_yours"), show_alert=True)
        return
    if not startable(case, Action.RATE):
        await query.answer(me.t("rate.already", number=case.number), show_alert=True)
        return
    window = handling.reopen_window(ctx.district, case)
    try:
        if callback_data.stars == 0:
            await handling.not_fixed(out.session, case, person, out.now, reopen_window=window)
        else:
            await handling.rate(
                out.session, case, person, callback_data.stars, out.now, reopen_window=window
            )
    except CaseError as exc:
        await alert_case_error(query, exc, me)
        return
    await query.answer()
    if query.message is not None:
        me.edit_markup(query.message.message_id)
    if case.state == lifecycle.State.ACCEPTED:  # reopened
        me.say("rate.reopened", number=case.number)
        await _reopened(ctx, out, case, callback_data.stars)
        return
    await refresh_cards(ctx, out, case)
    me.say("rate.thanks", number=case.number, stars=callback_data.stars)
    await state.set_state(RatingComment.comment)
    await state.update_data(case_id=case.id)


async def _reopened(ctx: AppContext, out: Outbox, case: Case, stars: int) -> None:
    """The assignee gets the card back with its buttons; the supervisors are told."""
    await refresh_cards(ctx, out, case)
    why_key = "reopen.not_fixed" if stars == 0 else "reopen.low_rating"
    for to, _side in await assignees(out, ctx, case):
        to.say("reopen.assignee", number=case.number, why=to.t(why_key, stars=stars))
    for to in await supervisors(out, ctx, case):
        to.say("reopen.supervisor", number=case.number, why=to.t(why_key, stars=stars))


async def no_comment(message: Message, state: FSMContext, out: Outbox, person: Person) -> None:
    await state.clear()
    out.to(person).say("rate.comment_skipped")


async def comment(message: Message, state: FSMContext, out: Outbox, person: Person) -> None:
    me = out.to(person)
    text = message.text or ""
    if text.startswith("/"):
        await state.clear()
        me.say("rate.comment_skipped")
        return
    case_id = (await state.get_data()).get("case_id")
    case = await out.session.get(Case, case_id) if isinstance(case_id, int) else None
    await state.clear()
    if case is None:
        return
    try:
        await handling.add_comment(out.session, case, person, text, out.now)
    except CaseError as exc:
        me.text(case_error_text(exc, me))
        return
    me.say("rate.comment_thanks")


def make_router() -> Router:
    """A fresh router with this area's handlers (one per dispatcher)."""
    router = Router(name="rating")
    router.message.filter(F.chat.type == "private")
    router.callback_query.register(rated, RateAction.filter())
    router.message.register(no_comment, RatingComment.comment, Command("skip"))
    router.message.register(comment, RatingComment.comment, F.text)
    return router
