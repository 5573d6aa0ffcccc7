"""The handling loop: triage, accept, whistle, report for duty, resolve, transfer, reject, rate,
reopen, close.

One function per transition of bot/domain/lifecycle.py. Each locks the case and checks the
actor's permission and the case's state against the table (`bot.domain.cases.begin`), changes
the case and writes the transition's event. No Telegram here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain import sla
from bot.domain.cases import MAX_NOTE, CaseError, PhotoInput, begin, categorise, photo_row, record
from bot.domain.district import District
from bot.domain.lifecycle import Action, check, enter
from bot.domain.routing.dispatch import Decision
from bot.domain.routing.pipeline import route_case
from bot.domain.text import is_blank
from storage.models import Case, CaseEvent, Person

LOW_RATING = 2  # a rating of 1–2 reopens the case


def reopen_window(district: District, case: Case) -> timedelta:
    """How long a reopened case has to be fixed again: its category's resolution time; one that
    never had a category, as long as its resident had to rate it (`sla.RATING_WINDOW`)."""
    category = district.categories.get(case.category_id or "")
    return timedelta(hours=category.resolve_hours) if category else sla.RATING_WINDOW


@dataclass(frozen=True)
class Reassignment:
    """Where a transfer sends a case: another lane's chief, or back to triage."""

    lane_id: str | None
    street_id: str | None
    chief_id: int | None


def _note(note: str, *, required: bool) -> str | None:
    note = note.strip()
    if required and is_blank(note):
        raise CaseError("reason_required")
    if len(note) > MAX_NOTE:
        raise CaseError("note_too_long", limit=MAX_NOTE)
    return note or None


async def triage(
    session: AsyncSession,
    district: District,
    case: Case,
    actor: Person,
    category_id: str,
    now: datetime,
) -> Decision:
    """A supervisor sorts a case the classifier was unsure of: its category, then where it goes
    (still triage when the lane has no chief to take it)."""
    await categorise(session, case, actor, category_id, now)
    why = (f"category chosen in triage by person {actor.id}",)
    return await route_case(session, district, case, now, reasons=why)


async def accept(session: AsyncSession, case: Case, actor: Person, now: datetime) -> CaseEvent:
    """The chief or department takes the case on (接单): the response is recorded."""
    step = await begin(session, case, actor, Action.ACCEPT)
    enter(case, step, now)
    await sla.cancel(session, case, sla.RESPOND, now)
    within = case.response_due_at is None or now <= case.response_due_at
    return record(session, case, actor.id, step.event, now, data={"within_limit": within})


async def whistle(
    session: AsyncSession, case: Case, actor: Person, department_id: str, note: str, now: datetime
) -> CaseEvent:
    """The chief cannot fix it alone (吹哨): the department must report for duty."""
    step = await begin(session, case, actor, Action.WHISTLE)
    if case.department_id == department_id:
        raise CaseError("already_with_department")
    enter(case, step, now)
    case.department_id = department_id
    return record(
        session,
        case,
        actor.id,
        step.event,
        now,
        note=_note(note, required=False),
        data={"department": department_id},
    )


async def report_for_duty(
    session: AsyncSession, case: Case, actor: Person, now: datetime, *, whistled_at: datetime
) -> CaseEvent:
    """The department answers the whistle (报到) and takes the case on with the chief."""
    step = await begin(session, case, actor, Action.REPORT_FOR_DUTY)
    enter(case, step, now)
    seconds = int((now - whistled_at).total_seconds())
    return record(
        session,
        case,
        actor.id,
        step.event,
        now,
        data={"department": case.department_id, "response_s": seconds},
    )


async def resolve(
    session: AsyncSession,
    case: Case,
    actor: Person,
    note: str,
    photo: PhotoInput | None,
    now: datetime,
) -> CaseEvent:
    """It is fixed (办结): an after-photo and a short note for the resident."""
    step = await begin(session, case, actor, Action.RESOLVE)
    text = _note(note, required=True)
    photo_id = None
    if photo is not None:
        row = photo_row(case.id, photo, "after", now)
        case.photos.append(row)
        await session.flush()
        photo_id = row.id
    enter(case, step, now)
    await sla.cancel(session, case, sla.RESPOND + sla.RESOLVE, now)
    sla.on_resolved(session, case, now)
    within = case.resolve_due_at is None or now <= case.resolve_due_at
    return record(
        session,
        case,
        actor.id,
        step.event,
        now,
        note=text,
        photo_id=photo_id,
        data={"within_limit": within},
    )


async def transfer(
    session: AsyncSession,
    case: Case,
    actor: Person,
    to: Reassignment,
    reason: str,
    now: datetime,
) -> CaseEvent:
    """Send the case to another lane's chief, or back to the street office's triage (转派)."""
    action = Action.TRANSFER if to.chief_id is not None else Action.TRANSFER_TO_TRIAGE
    step = await begin(session, case, actor, action)
    text = _note(reason, required=True)
    if to.lane_id is not None and to.lane_id == case.lane_id and to.chief_id == case.assignee_id:
        raise CaseError("same_lane")
    data: dict[str, object] = {"from_lane": case.lane_id, "to_lane": to.lane_id}
    case.lane_id = to.lane_id or case.lane_id
    case.street_id = to.street_id or case.street_id
    case.assignee_id = to.chief_id
    case.department_id = None
    enter(case, step, now)
    return record(session, case, actor.id, step.event, now, note=text, data=data)


async def reject(
    session: AsyncSession, case: Case, actor: Person, reason: str, now: datetime
) -> CaseEvent:
    """Not a public matter, or not real (退回): a reason is required and the resident sees it."""
    step = await begin(session, case, actor, Action.REJECT)
    text = _note(reason, required=True)
    enter(case, step, now)
    case.closed_at = now
    await sla.cancel(session, case, sla.RESPOND + sla.RESOLVE, now)
    return record(session, case, actor.id, step.event, now, note=text)


async def rate(
    session: AsyncSession,
    case: Case,
    actor: Person,
    stars: int,
    now: datetime,
    *,
    reopen_window: timedelta,
) -> CaseEvent:
    """The reporter rates the result: 3–5 closes the case, 1–2 reopens it with priority."""
    step = await begin(session, case, actor, Action.RATE)
    if not 1 <= stars <= 5:
        raise CaseError("bad_rating")
    case.rating = stars
    enter(case, step, now)
    await sla.cancel(session, case, sla.RATING, now)
    event = record(session, case, actor.id, step.event, now, data={"stars": stars})
    if stars <= LOW_RATING:
        await _reopen(session, case, actor, now, why="low rating", window=reopen_window)
    else:
        _close(session, case, now, rated=True)
    return event


async def not_fixed(
    session: AsyncSession, case: Case, actor: Person, now: datetime, *, reopen_window: timedelta
) -> CaseEvent:
    """The reporter says it is not fixed: reopened to the same assignee, with priority."""
    await begin(session, case, actor, Action.REOPEN)
    await sla.cancel(session, case, sla.RATING, now)
    return await _reopen(session, case, actor, now, why="not fixed", window=reopen_window)


async def _reopen(
    session: AsyncSession,
    case: Case,
    actor: Person,
    now: datetime,
    *,
    why: str,
    window: timedelta,
) -> CaseEvent:
    step = check(case, actor, Action.REOPEN)
    sla.on_reopened(session, case, now, window)
    enter(case, step, now)
    case.priority += 1
    case.rating = None
    case.closed_at = None
    return record(session, case, actor.id, step.event, now, note=why)


async def add_comment(
    session: AsyncSession, case: Case, actor: Person, comment: str, now: datetime
) -> CaseEvent:
    """The reporter's optional words with a rating."""
    step = check(case, actor, Action.COMMENT)
    text = _note(comment, required=True)
    return record(session, case, actor.id, step.event, now, note=text)


async def close_unrated(session: AsyncSession, case: Case, now: datetime) -> CaseEvent:
    """No rating within the window: the system closes it, counted apart from rated cases."""
    await begin(session, case, None, Action.CLOSE)
    return _close(session, case, now, rated=False)


def _close(session: AsyncSession, case: Case, now: datetime, *, rated: bool) -> CaseEvent:
    """The system closes a fixed case: once rated well, or when its rating window has passed."""
    step = check(case, None, Action.CLOSE)
    enter(case, step, now)
    case.closed_at = now
    return record(session, case, None, step.event, now, data={"rated": rated})
