"""The assignment cards: a case's assignees (its lane chief, its department's officers, the
street office's supervisors) act on it from its card; and /tasks, the cases they act on.

Every press re-loads the case and re-checks who is pressing and what state the case is in
(bot/domain/lifecycle.py), so a forged, replayed, stale or doubled press does nothing harmful
and says why.
"""

from __future__ import annotations

import logging
from datetime import datetime

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message
from sqlalchemy import or_, select

from bot.context import AppContext
from bot.domain import access, handling, lifecycle
from bot.domain.access import may_act
from bot.domain.cases import CaseError, PhotoInput
from bot.domain.handling import Reassignment
from bot.domain.lifecycle import ACTIONABLE, Event, Side, current_deadline, permitted, startable
from bot.domain.routing.pipeline import lane_chief
from bot.telegram.errors import alert_case_error, case_error_text
from bot.telegram.handlers.intake import photo_from_data, photo_to_data, receive_photo
from bot.telegram.keyboards import (
    CARD_PRESS,
    CardAction,
    TransferPick,
    WhistlePick,
    rating_keyboard,
    transfer_keyboard,
    whistle_keyboard,
)
from bot.telegram.notify import assignees, refresh_cards, send_card, tell_followers
from bot.telegram.outgoing import Outbox, Recipient
from bot.telegram.views import task_line
from storage.models import Case, CaseEvent, Person

log = logging.getLogger(__name__)

NEARBY_LANES = 8


# The group's name is stored with each chat's conversation state (`HandlerInput:resolve` …):
# kept, so that an answer being typed across an upgrade still reaches its step.
_STORED_AS = "HandlerInput"


class CardInput(StatesGroup):
    """What an assignee is asked to type after pressing a card's button."""

    resolve = State(group_name=_STORED_AS)
    reject = State(group_name=_STORED_AS)
    transfer = State(group_name=_STORED_AS)


async def _case_for(
    query: CallbackQuery, case_id: int, button: str, out: Outbox, person: Person
) -> Case | None:
    """The case, if this person may press `button` on it now; otherwise an alert says why."""
    me = out.to(person)
    case = await out.session.get(Case, case_id)
    if case is None:
        await query.answer(me.t("card.gone"), show_alert=True)
        return None
    action = CARD_PRESS.get(button)  # None: "back", or a button no card has
    may = may_act(person, case) if action is None else permitted(case, person, action)
    if not may:
        await query.answer(me.t("card.not_yours"), show_alert=True)
        return None
    if button != "back" and (action is None or not startable(case, action)):
        state = me.t(f"state.{case.state}")
        await query.answer(me.t("card.stale", number=case.number, state=state), show_alert=True)
        return None
    return case


async def card_button(
    query: CallbackQuery,
    callback_data: CardAction,
    state: FSMContext,
    ctx: AppContext,
    out: Outbox,
    person: Person,
) -> None:
    action = callback_data.action
    case = await _case_for(query, callback_data.case_id, action, out, person)
    if case is None:
        return
    me = out.to(person)
    try:
        if action == "accept":
            await handling.accept(out.session, case, person, out.now)
        elif action == "duty":
            whistled = await _last_event_time(out, case, Event.WHISTLED)
            await handling.report_for_duty(out.session, case, person, out.now, whistled_at=whistled)
    except CaseError as exc:  # someone else acted on the case a moment ago
        await alert_case_error(query, exc, me)
        return
    if action == "accept":
        await query.answer(me.t("card.accepted", number=case.number))
        await refresh_cards(ctx, out, case)
        await tell_followers(out, case, "progress.accepted")
    elif action == "duty":
        await query.answer(me.t("card.reported", number=case.number))
        await refresh_cards(ctx, out, case)
        await tell_followers(out, case, "progress.reported_for_duty")
        await _tell_chief(ctx, out, case, "card.department_reported")
    elif action == "whistle" and query.message is not None:
        await query.answer()
        me.edit_markup(
            query.message.message_id, whistle_keyboard(me.language, ctx.district, case.id)
        )
    elif action == "transfer" and query.message is not None:
        await query.answer()
        lanes = _nearby_lanes(ctx, case)
        me.edit_markup(
            query.message.message_id, transfer_keyboard(me.language, ctx.district, case.id, lanes)
        )
    elif action == "back":
        await query.answer()
        await refresh_cards(ctx, out, case)
    elif action in ("resolve", "reject"):
        await query.answer()
        await state.set_state(CardInput.resolve if action == "resolve" else CardInput.reject)
        await state.update_data(case_id=case.id)
        me.say(f"card.ask_{action}", number=case.number)


async def whistle_pick(
    query: CallbackQuery,
    callback_data: WhistlePick,
    ctx: AppContext,
    out: Outbox,
    person: Person,
) -> None:
    case = await _case_for(query, callback_data.case_id, "whistle", out, person)
    if case is None:
        return
    me = out.to(person)
    department = ctx.district.departments.get(callback_data.department)
    if department is None:
        await query.answer(me.t("card.gone"), show_alert=True)
        return
    try:
        await handling.whistle(out.session, case, person, department.id, "", out.now)
    except CaseError as exc:
        await alert_case_error(query, exc, me)
        return
    await query.answer(me.t("card.whistled", department=ctx.district.name(department, me.language)))
    await refresh_cards(ctx, out, case)
    for to, side in await assignees(out, ctx, case):
        if side == Side.DEPARTMENT:
            send_card(ctx, to, side, case)
    await tell_followers(
        out, case, "progress.whistled", department=lambda lang: ctx.district.name(department, lang)
    )


async def transfer_pick(
    query: CallbackQuery,
    callback_data: TransferPick,
    state: FSMContext,
    ctx: AppContext,
    out: Outbox,
    person: Person,
) -> None:
    case = await _case_for(query, callback_data.case_id, "transfer", out, person)
    if case is None:
        return
    me = out.to(person)
    # Only what the picker offered: the lanes are worked out again as the keyboard was.
    if callback_data.lane != "-" and callback_data.lane not in _nearby_lanes(ctx, case):
        log.warning("transfer of case %s to lane %r, not offered", case.id, callback_data.lane)
        await query.answer(me.t("button.unknown"), show_alert=True)
        return
    lane = None if callback_data.lane == "-" else ctx.district.lanes[callback_data.lane]
    await query.answer()
    await state.set_state(CardInput.transfer)
    await state.update_data(case_id=case.id, lane=callback_data.lane)
    where = ctx.district.name(lane, me.language) if lane else me.t("card.to_triage")
    me.say("card.ask_transfer", number=case.number, where=where)


async def resolve_with_photo(
    message: Message, bot: Bot, state: FSMContext, ctx: AppContext, out: Outbox, person: Person
) -> None:
    me = out.to(person)
    received = await receive_photo(bot, ctx, message, me)
    if received is None:
        return
    photo, _gps = received
    note = (message.caption or "").strip()
    if not note:
        await state.update_data(photo=photo_to_data(photo))
        me.say("card.ask_resolve_note")
        return
    await _resolve(state, ctx, out, person, me, note, photo)


async def resolve_note(
    message: Message, state: FSMContext, ctx: AppContext, out: Outbox, person: Person
) -> None:
    me = out.to(person)
    data = await state.get_data()
    if "photo" not in data:
        me.say("card.resolve_needs_photo")
        return
    await _resolve(state, ctx, out, person, me, message.text or "", photo_from_data(data["photo"]))


async def _resolve(
    state: FSMContext,
    ctx: AppContext,
    out: Outbox,
    person: Person,
    me: Recipient,
    note: str,
    photo: PhotoInput,
) -> None:
    case = await _pending(state, out, person, me)
    if case is None:
        return
    try:
        await handling.resolve(out.session, case, person, note, photo, out.now)
    except CaseError as exc:
        me.text(case_error_text(exc, me))
        if exc.code != "reason_required":
            await state.clear()
        return
    await state.clear()
    me.say("card.resolved", number=case.number)
    await refresh_cards(ctx, out, case)
    if case.assignee_id != person.id:
        await _tell_chief(ctx, out, case, "card.department_resolved")
    await _tell_resolved(ctx, out, case, note, photo.path)


async def _tell_resolved(ctx: AppContext, out: Outbox, case: Case, note: str, path: str) -> None:
    """The resident sees the after-photo and note, and is asked to rate."""
    if case.reporter_id is None:
        return
    reporter = await out.session.get(Person, case.reporter_id)
    if reporter is None or reporter.unreachable:
        return
    to = out.to(reporter)
    to.photos([path], to.t("progress.resolved_caption", number=case.number), case_id=case.id)
    to.say(
        "progress.resolved", rating_keyboard(to.language, case.id), number=case.number, note=note
    )
    await tell_followers(out, case, "progress.resolved_follower", note=note, reporter=False)


async def reject_reason(
    message: Message, state: FSMContext, ctx: AppContext, out: Outbox, person: Person
) -> None:
    me = out.to(person)
    case = await _pending(state, out, person, me)
    if case is None:
        return
    reason = message.text or ""
    try:
        await handling.reject(out.session, case, person, reason, out.now)
    except CaseError as exc:
        me.text(case_error_text(exc, me))
        if exc.code not in ("reason_required", "note_too_long"):
            await state.clear()
        return
    await state.clear()
    me.say("card.rejected", number=case.number)
    await refresh_cards(ctx, out, case)
    await tell_followers(out, case, "progress.rejected", reason=reason.strip())


async def transfer_reason(
    message: Message, state: FSMContext, ctx: AppContext, out: Outbox, person: Person
) -> None:
    me = out.to(person)
    case = await _pending(state, out, person, me)
    if case is None:
        return
    lane_id = (await state.get_data()).get("lane")
    lane = ctx.district.lanes.get(lane_id) if isinstance(lane_id, str) else None
    to = Reassignment(
        lane_id=lane.id if lane else None,
        street_id=lane.street_id if lane else case.street_id,
        chief_id=await lane_chief(out.session, lane.id) if lane else None,
    )
    try:
        await handling.transfer(out.session, case, person, to, message.text or "", out.now)
    except CaseError as exc:
        me.text(case_error_text(exc, me))
        if exc.code not in ("reason_required", "note_too_long"):
            await state.clear()
        return
    await state.clear()
    me.say("card.transferred", number=case.number)
    await refresh_cards(ctx, out, case)
    for recipient, side in await assignees(out, ctx, case):
        send_card(ctx, recipient, side, case)
    if case.state == lifecycle.State.DISPATCHED and lane is not None:
        await tell_followers(
            out, case, "routed.chief", lane=lambda lang: ctx.district.name(lane, lang)
        )
    else:
        await tell_followers(out, case, "routed.triage")


async def input_expected(message: Message, state: FSMContext, out: Outbox, person: Person) -> None:
    current = await state.get_state()
    key = (
        "card.resolve_needs_photo" if current == CardInput.resolve.state else "card.reason_expected"
    )
    out.to(person).say(key)


async def tasks(message: Message, ctx: AppContext, out: Outbox, person: Person) -> None:
    """Open cases this person acts on, soonest deadline first."""
    me = out.to(person)
    open_cases = await _my_open_cases(out, person)
    if not open_cases:
        me.say("tasks.none")
        return
    lines = [me.t("tasks.header", n=len(open_cases))]
    lines += [task_line(me.language, ctx.district, c, ctx.district.tz, out.now) for c in open_cases]
    me.text("\n".join(lines))


async def _my_open_cases(out: Outbox, person: Person) -> list[Case]:
    departments = [r.scope for r in person.roles if r.role == access.OFFICER and r.scope]
    streets = [r.scope for r in person.roles if r.role == access.SUPERVISOR and r.scope]
    mine = Case.assignee_id == person.id
    conditions = [mine]
    if departments:
        conditions.append(Case.department_id.in_(departments))
    if streets:
        conditions.append(Case.street_id.in_(streets))
    rows = await out.session.scalars(
        select(Case)
        .where(
            or_(*conditions),
            Case.state.in_(ACTIONABLE),
        )
        .limit(200)
    )
    far = out.now.replace(year=out.now.year + 100)

    def deadline(case: Case) -> tuple[object, ...]:
        return (-case.priority, current_deadline(case) or far, case.id)

    return sorted(rows.all(), key=deadline)[:30]


async def _pending(state: FSMContext, out: Outbox, person: Person, me: Recipient) -> Case | None:
    case_id = (await state.get_data()).get("case_id")
    case = await out.session.get(Case, case_id) if isinstance(case_id, int) else None
    if case is None or not may_act(person, case):
        await state.clear()
        me.say("card.gone")
        return None
    return case


async def _last_event_time(out: Outbox, case: Case, event: Event) -> datetime:
    when = await out.session.scalar(
        select(CaseEvent.created_at)
        .where(CaseEvent.case_id == case.id, CaseEvent.action == event)
        .order_by(CaseEvent.id.desc())
        .limit(1)
    )
    return when or case.updated_at


async def _tell_chief(ctx: AppContext, out: Outbox, case: Case, key: str) -> None:
    """The lane chief who whistled hears what the department did."""
    chief = await out.session.get(Person, case.assignee_id) if case.assignee_id else None
    department = ctx.district.departments.get(case.department_id or "")
    if chief is not None and department is not None:
        to = out.to(chief)
        to.say(key, number=case.number, department=ctx.district.name(department, to.language))


def _nearby_lanes(ctx: AppContext, case: Case) -> list[str]:
    """Lanes near the case (or of its street office), without its current lane."""
    if case.lat is not None and case.lon is not None:
        near = ctx.locator.lanes_near(case.lat, case.lon, 800.0)
        ids = [m.lane_id for m in near if m.lane_id != case.lane_id]
    else:
        ids = [
            lane.id
            for lane in ctx.district.lanes.values()
            if lane.street_id == case.street_id and lane.id != case.lane_id
        ]
    return ids[:NEARBY_LANES]


def make_router() -> Router:
    """A fresh router with this area's handlers (one per dispatcher)."""
    router = Router(name="cards")
    router.callback_query.register(card_button, CardAction.filter())
    router.callback_query.register(whistle_pick, WhistlePick.filter())
    router.callback_query.register(transfer_pick, TransferPick.filter())
    router.message.register(resolve_with_photo, CardInput.resolve, F.photo | F.document)
    router.message.register(resolve_note, CardInput.resolve, F.text)
    router.message.register(reject_reason, CardInput.reject, F.text)
    router.message.register(transfer_reason, CardInput.transfer, F.text)
    router.message.register(input_expected, CardInput.resolve)
    router.message.register(input_expected, CardInput.reject)
    router.message.register(input_expected, CardInput.transfer)
    router.message.register(tasks, Command("tasks"))
    return router
