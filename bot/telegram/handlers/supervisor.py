"""Street office supervisors: one tap sorts a case the classifier was unsure of."""

from __future__ import annotations

from aiogram import Router
from aiogram.types import CallbackQuery

from bot.context import AppContext
from bot.domain import access, handling
from bot.domain.cases import CaseError
from bot.domain.lifecycle import Action, startable
from bot.domain.routing.dispatch import TRIAGE
from bot.telegram.errors import alert_case_error
from bot.telegram.keyboards import TriagePick
from bot.telegram.notify import announce_dispatch, refresh_cards
from bot.telegram.outgoing import Outbox
from storage.models import Case, Person


async def triage_pick(
    query: CallbackQuery,
    callback_data: TriagePick,
    ctx: AppContext,
    out: Outbox,
    person: Person,
) -> None:
    me = out.to(person)
    case = await out.session.get(Case, callback_data.case_id)
    if case is None:
        await query.answer(me.t("case.not_found", number=callback_data.case_id), show_alert=True)
        return
    if not access.allowed(person, access.Permission.TRIAGE, case):
        await query.answer(me.t("triage.not_allowed"), show_alert=True)
        return
    if not startable(case, Action.CATEGORISE):
        await query.answer(me.t("triage.already_sorted", number=case.number), show_alert=True)
        return
    if callback_data.category not in ctx.district.categories:
        await query.answer(me.t("triage.unknown_category"), show_alert=True)
        return
    try:
        decision = await handling.triage(
            out.session, ctx.district, case, person, callback_data.category, out.now
        )
    except CaseError as exc:  # another supervisor sorted it a moment ago
        await alert_case_error(query, exc, me)
        return
    await query.answer(me.t("triage.sorted", number=case.number))
    await refresh_cards(ctx, out, case)
    if decision.target == TRIAGE:
        me.say("triage.still_no_chief", number=case.number)
        return
    await announce_dispatch(ctx, out, case, decision)


def make_router() -> Router:
    """A fresh router with this area's handlers (one per dispatcher)."""
    router = Router(name="supervisor")
    router.callback_query.register(triage_pick, TriagePick.filter())
    return router
