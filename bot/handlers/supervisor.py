"""Street office supervisors: one tap sorts a case the classifier was unsure of."""

from __future__ import annotations

from aiogram import Router
from aiogram.types import CallbackQuery

from bot import access, cases
from bot.context import AppContext
from bot.keyboards import TriagePick
from bot.notify import announce_dispatch, refresh_cards
from bot.outgoing import Outbox
from bot.routing.dispatch import TRIAGE, decide
from bot.routing.pipeline import lane_chief
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
    if not access.allowed(person, access.TRIAGE, case):
        await query.answer(me.t("triage.not_allowed"), show_alert=True)
        return
    if case.state != cases.TRIAGE:
        await query.answer(me.t("triage.already_sorted", number=case.number), show_alert=True)
        return
    if callback_data.category not in ctx.district.categories:
        await query.answer(me.t("triage.unknown_category"), show_alert=True)
        return
    cases.categorise(out.session, case, person.id, callback_data.category, out.now)
    decision = decide(
        ctx.district,
        now=out.now,
        category_id=case.category_id,
        lane_id=case.lane_id,
        street_id=case.street_id,
        chief_id=await lane_chief(out.session, case.lane_id) if case.lane_id else None,
        reasons=(f"category chosen in triage by person {person.id}",),
    )
    await cases.dispatch(
        out.session,
        case,
        out.now,
        state=cases.TRIAGE if decision.target == TRIAGE else cases.DISPATCHED,
        assignee_id=decision.chief_id,
        department_id=decision.department_id,
        response_due_at=decision.response_due_at,
        resolve_due_at=decision.resolve_due_at,
        data={"target": decision.target, "reasons": list(decision.reasons)},
    )
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
