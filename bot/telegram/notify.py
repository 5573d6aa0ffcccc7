"""Who hears of a case, and what they are told: cards to its assignees, progress to residents.

Every message goes to the outbox in the caller's transaction. A card is sent under the ref
`card:<case id>:<side>` so that it can later be edited in place in every chat that holds it;
the side it is read from decides its buttons (`bot.domain.lifecycle.offers`).
"""

from __future__ import annotations

from typing import Any, Protocol

from aiogram.types import InlineKeyboardMarkup
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.context import AppContext
from bot.domain.access import ADMIN, OFFICER, SUPERVISOR
from bot.domain.district import District
from bot.domain.lifecycle import HELD, UNFIXED, Side, State
from bot.domain.people import Removal
from bot.domain.routing.dispatch import CHIEF, DEPARTMENT, Decision
from bot.domain.routing.pipeline import Routed
from bot.telegram.keyboards import card_keyboard, triage_keyboard
from bot.telegram.outgoing import Outbox, Recipient
from bot.telegram.views import card
from storage.models import Case, OutboxMessage, Person
from storage.people import people_with_role


class Cards(Protocol):
    """What cards are made from, in the bot (its AppContext) or in the shell."""

    @property
    def district(self) -> District: ...

    @property
    def settings(self) -> Settings: ...


async def announce(ctx: AppContext, out: Outbox, routed: Routed, reporter: Person | None) -> None:
    """Tell the reporter (None: not in a chat) where the case went; give its assignees the card."""
    case = routed.case
    if routed.duplicate_of is not None:
        original = routed.duplicate_of
        reports = await _reports(out.session, original)
        if reporter is not None:
            out.to(reporter).say(
                "routed.duplicate", number=case.number, original=original.number, reports=reports
            )
        for to, _side in await assignees(out, ctx, original):
            to.say("card.plus_one", number=original.number, reports=reports)
        await refresh_cards(ctx, out, original)  # the card counts the reports
        return
    assert routed.decision is not None
    await announce_dispatch(ctx, out, case, routed.decision)


async def announce_dispatch(ctx: AppContext, out: Outbox, case: Case, decision: Decision) -> None:
    """Tell the reporter who has the case (a role, never a person) and send the cards."""
    district = ctx.district
    if decision.target == CHIEF:
        lane = district.lanes.get(case.lane_id or "")
        await tell_followers(
            out, case, "routed.chief", lane=lambda lang: district.name(lane, lang) if lane else ""
        )
    elif decision.target == DEPARTMENT:
        department = district.departments[decision.department_id or ""]
        await tell_followers(
            out, case, "routed.department", department=lambda lang: district.name(department, lang)
        )
    else:
        await tell_followers(out, case, "routed.triage")
    for to, side in await assignees(out, ctx, case):
        send_card(ctx, to, side, case)


async def tell_followers(
    out: Outbox, case: Case, key: str, *, reporter: bool = True, **params: Any
) -> None:
    """Tell the reporter (unless `reporter` is False) and everyone whose report joined this case.

    A parameter may be a function of the reader's language (a lane or department name).
    """
    ids: list[int | None] = [case.reporter_id] if reporter else []
    ids += list(
        (
            await out.session.scalars(
                select(Case.reporter_id).where(
                    Case.duplicate_of_id == case.id, Case.reporter_id.is_not(None)
                )
            )
        ).all()
    )
    seen: set[int] = set() if reporter else {case.reporter_id or 0}
    for person_id in ids:
        if person_id is None or person_id in seen:
            continue
        seen.add(person_id)
        person = await out.session.get(Person, person_id)
        if person is None or person.unreachable:
            continue
        me = out.to(person)
        values = {k: v(me.language) if callable(v) else v for k, v in params.items()}
        me.say(key, case_id=case.id, number=case.number, **values)


def card_markup(ctx: Cards, lang: str, side: str, case: Case) -> InlineKeyboardMarkup | None:
    if case.state == State.TRIAGE and side == Side.SUPERVISOR:
        picks = triage_keyboard(lang, ctx.district, case.id)
        actions = card_keyboard(lang, side, case.state, case.id)
        rows = picks.inline_keyboard + (actions.inline_keyboard if actions else [])
        return InlineKeyboardMarkup(inline_keyboard=rows)
    return card_keyboard(lang, side, case.state, case.id)


def send_card(ctx: Cards, to: Recipient, side: str, case: Case) -> None:
    """Photos, the location, then the card with the buttons this side may press."""
    paths = [p.path for p in case.photos if p.kind == "before"]
    if paths:
        to.photos(paths, case_id=case.id)
    if case.lat is not None and case.lon is not None:
        to.location(case.lat, case.lon, case_id=case.id)
    to.text(
        card(to.language, ctx.district, case, ctx.district.tz),
        card_markup(ctx, to.language, side, case),
        ref=f"card:{case.id}:{side}",
        case_id=case.id,
    )


async def refresh_cards(ctx: Cards, out: Outbox, case: Case) -> None:
    """Edit every card of the case in place: new state, only the buttons that still apply."""
    rows = await out.session.execute(
        select(OutboxMessage.chat_id, OutboxMessage.ref)
        .where(OutboxMessage.ref.like(f"card:{case.id}:%"))
        .distinct()
    )
    reports = await _reports(out.session, case)
    acting = {to.chat_id for to, _side in await assignees(out, ctx, case)}
    acting |= {to.chat_id for to in await supervisors(out, ctx, case)}
    for chat_id, ref in rows.all():
        side = str(ref).rsplit(":", 1)[-1]
        lang = await _language(out.session, chat_id)
        # A chat that no longer acts on the case (it was transferred away) keeps no buttons.
        markup = card_markup(ctx, lang, side, case) if chat_id in acting else None
        out.chat(chat_id, lang).edit_text(
            card(lang, ctx.district, case, ctx.district.tz, reports=reports),
            message_ref=ref,
            markup=markup,
        )


async def assignees(out: Outbox, ctx: Cards, case: Case) -> list[tuple[Recipient, str]]:
    """The chats that act on a case now, each with its side: its chief, its department (its
    group chat and officers), or in triage the street office's supervisors."""
    session = out.session
    found: list[tuple[Recipient, str]] = []
    if case.state == State.TRIAGE:
        return [(to, Side.SUPERVISOR) for to in await supervisors(out, ctx, case)]
    if case.assignee_id is not None:
        chief = await session.get(Person, case.assignee_id)
        if chief is not None:
            found.append((out.to(chief), Side.CHIEF))
    if case.department_id:
        department = ctx.district.departments.get(case.department_id)
        if department is not None and department.chat_id:
            found.append((out.chat(department.chat_id, "zh"), Side.DEPARTMENT))
        for person in await people_with_role(session, OFFICER, case.department_id):
            found.append((out.to(person), Side.DEPARTMENT))
    return _unique(found)


async def supervisors(out: Outbox, ctx: Cards, case: Case) -> list[Recipient]:
    """The street office's supervisors (and its triage group), to be told or to step in."""
    found: list[tuple[Recipient, str]] = []
    office = ctx.district.street_offices.get(case.street_id or "")
    if office is not None and office.triage_chat_id:
        found.append((out.chat(office.triage_chat_id, "zh"), Side.SUPERVISOR))
    if case.street_id:
        for person in await people_with_role(out.session, SUPERVISOR, case.street_id):
            found.append((out.to(person), Side.SUPERVISOR))
    if not found:
        # No street office (a typed address that matched none) or nobody there: the
        # district's admins sort it, so that no case is left without a reader.
        for person in await people_with_role(out.session, ADMIN):
            found.append((out.to(person), Side.SUPERVISOR))
    return [to for to, _ in _unique(found)]


async def announce_handover(ctx: Cards, out: Outbox, removal: Removal, person: Person) -> None:
    """After `person` lost a role: the new hands get the cards of the cases handed on, no card
    in `person`'s chat keeps a button they may no longer press, and `person` hears where their
    cases went."""
    for case in removal.handed_on:
        await refresh_cards(ctx, out, case)
        chief = await out.session.get(Person, case.assignee_id) if case.assignee_id else None
        if chief is not None:
            send_card(ctx, out.to(chief), Side.CHIEF, case)
        else:  # triage, or a department alone: a supervisor picks who goes on
            for to in await supervisors(out, ctx, case):
                send_card(ctx, to, Side.SUPERVISOR, case)
    for case in removal.stayed:
        await drop_buttons(out, case, person.telegram_id)
    if removal.handed_on and not person.unreachable:
        numbers = ", ".join(case.number for case in removal.handed_on)
        out.to(person).say("people.handed_on", numbers=numbers)


async def drop_buttons(out: Outbox, case: Case, chat_id: int) -> None:
    """Take the buttons off the case's cards in one chat, leaving the others' as they are."""
    refs = await out.session.scalars(
        select(OutboxMessage.ref)
        .where(OutboxMessage.chat_id == chat_id, OutboxMessage.ref.like(f"card:{case.id}:%"))
        .distinct()
    )
    for ref in refs:
        # Without reply_markup the edit removes the keyboard; the sender finds the message.
        out.call(chat_id, "editMessageReplyMarkup", {"message_ref": ref})


def _unique(found: list[tuple[Recipient, str]]) -> list[tuple[Recipient, str]]:
    seen: set[int] = set()
    result = []
    for to, side in found:
        if to.chat_id not in seen:
            seen.add(to.chat_id)
            result.append((to, side))
    return result


async def _language(session: AsyncSession, chat_id: int) -> str:
    if chat_id < 0:
        return "zh"
    person = await session.scalar(select(Person).where(Person.telegram_id == chat_id))
    return person.language if person is not None else "zh"


async def _reports(session: AsyncSession, original: Case) -> int:
    """The original report and every duplicate linked to it."""
    rows = await session.scalars(select(Case.id).where(Case.duplicate_of_id == original.id))
    return 1 + len(rows.all())


async def assignee_unreachable(ctx: AppContext, telegram_id: int) -> None:
    """An assignee blocked the bot: the supervisors must reassign the cases they still hold."""
    async with ctx.sessionmaker() as session, session.begin():
        person = await session.scalar(select(Person).where(Person.telegram_id == telegram_id))
        if person is None:
            return
        open_cases = (
            await session.scalars(
                select(Case).where(
                    Case.assignee_id == person.id,
                    Case.state.in_(HELD & UNFIXED),
                )
            )
        ).all()
        out = Outbox(session, ctx.clock.now())
        for case in open_cases:
            for to in await supervisors(out, ctx, case):
                to.say(
                    "delivery.assignee_unreachable",
                    number=case.number,
                    name=person.name or str(person.telegram_id),
                )
    ctx.sender.wake()
