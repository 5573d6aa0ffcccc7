"""Who hears of a routed case, and what they are told; every message goes to the outbox."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.access import OFFICER, SUPERVISOR
from bot.context import AppContext
from bot.keyboards import triage_keyboard
from bot.outgoing import Outbox, Recipient
from bot.routing.dispatch import CHIEF, DEPARTMENT, Decision
from bot.routing.pipeline import Routed
from bot.views import card
from storage.models import Case, Person
from storage.people import people_with_role


async def announce(ctx: AppContext, out: Outbox, routed: Routed, reporter: Person) -> None:
    """Tell the reporter where the case went and give its handlers the card."""
    case = routed.case
    me = out.to(reporter)
    if routed.duplicate_of is not None:
        original = routed.duplicate_of
        reports = await _reports(out.session, original)
        me.say("routed.duplicate", number=case.number, original=original.number, reports=reports)
        for handler in await _handlers(out, ctx, original):
            handler.say("card.plus_one", number=original.number, reports=reports)
        return
    assert routed.decision is not None
    await announce_dispatch(ctx, out, case, routed.decision, reporter)


async def announce_dispatch(
    ctx: AppContext, out: Outbox, case: Case, decision: Decision, reporter: Person | None = None
) -> None:
    """Tell the reporter who has the case (a role, never a person) and send the cards."""
    if reporter is None and case.reporter_id is not None:
        reporter = await out.session.get(Person, case.reporter_id)
    district = ctx.district
    if reporter is not None:
        me = out.to(reporter)
        if decision.target == CHIEF:
            lane = district.lanes[case.lane_id] if case.lane_id else None
            where = district.name(lane, me.language) if lane else ""
            me.say("routed.chief", number=case.number, lane=where)
        elif decision.target == DEPARTMENT:
            department = district.departments[decision.department_id or ""]
            name = district.name(department, me.language)
            me.say("routed.department", number=case.number, department=name)
        else:
            me.say("routed.triage", number=case.number)
    for handler in await _handlers(out, ctx, case):
        send_card(ctx, handler, case)


def send_card(ctx: AppContext, to: Recipient, case: Case) -> None:
    """Photos, the location, then the card text (triage cards carry category buttons)."""
    paths = [p.path for p in case.photos if p.kind == "before"]
    if paths:
        to.photos(paths, case_id=case.id)
    if case.lat is not None and case.lon is not None:
        to.location(case.lat, case.lon, case_id=case.id)
    markup = None
    if case.state == "triage":
        markup = triage_keyboard(to.language, ctx.district, case.id)
    to.text(
        card(to.language, ctx.district, case, ctx.settings.tz),
        markup,
        ref=f"card:{case.id}",
        case_id=case.id,
    )


async def _handlers(out: Outbox, ctx: AppContext, case: Case) -> list[Recipient]:
    """The chats that act on a case now: its chief, its department, or its street's triage."""
    session = out.session
    recipients: list[Recipient] = []
    if case.state == "triage":
        if case.street_id:
            office = ctx.district.street_offices.get(case.street_id)
            if office and office.triage_chat_id:
                recipients.append(out.chat(office.triage_chat_id, "zh"))
            recipients += [
                out.to(p) for p in await people_with_role(session, SUPERVISOR, case.street_id)
            ]
        return _unique(recipients)
    if case.assignee_id is not None:
        chief = await session.get(Person, case.assignee_id)
        if chief is not None:
            recipients.append(out.to(chief))
    if case.department_id:
        department = ctx.district.departments.get(case.department_id)
        if department and department.chat_id:
            recipients.append(out.chat(department.chat_id, "zh"))
        recipients += [
            out.to(p) for p in await people_with_role(session, OFFICER, case.department_id)
        ]
    return _unique(recipients)


def _unique(recipients: list[Recipient]) -> list[Recipient]:
    seen: set[int] = set()
    result = []
    for r in recipients:
        if r.chat_id not in seen:
            seen.add(r.chat_id)
            result.append(r)
    return result


async def _reports(session: AsyncSession, original: Case) -> int:
    """The original report and every duplicate linked to it."""
    rows = await session.scalars(select(Case.id).where(Case.duplicate_of_id == original.id))
    return 1 + len(rows.all())
