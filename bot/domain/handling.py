"""The handling loop: triage, accept, whistle, report for duty, resolve, transfer, reject, rate,
close.

One function per transition. Each locks the case, checks its state and the actor's right to
act (see `bot.domain.access.allowed`), changes the case and writes one event. No Telegram here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain import access, sla
from bot.domain.access import Permission
from bot.domain.cases import (
    ACCEPTED,
    CLOSED,
    DISPATCHED,
    MAX_NOTE,
    REJECTED,
    RESOLVED,
    TRIAGE,
    WHISTLED,
    CaseError,
    PhotoInput,
    categorise,
    hold,
    photo_row,
    record,
)
from bot.domain.district import District
from bot.domain.routing.dispatch import Decision
from bot.domain.routing.pipeline import route_case
from bot.domain.text import is_blank
from storage.models import Case, CaseEvent, Person

LOW_RATING = 2  # a rating of 1–2 reopens the case
SATISFIED = 4  # 4–5 counts as satisfied in the KPIs

ACCEPTABLE = frozenset({DISPATCHED})
WHISTLABLE = frozenset({DISPATCHED, ACCEPTED})
RESOLVABLE = frozenset({ACCEPTED})
TRANSFERABLE = frozenset({TRIAGE, DISPATCHED, ACCEPTED})
REJECTABLE = frozenset({TRIAGE, DISPATCHED, ACCEPTED})


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


async def _require(session: AsyncSession, case: Case, states: frozenset[str], action: str) -> None:
    """The case, locked and as it now stands, is in one of `states` (`bot.domain.cases.hold`)."""
    await hold(session, case)
    if case.state not in states:
        raise CaseError("wrong_state", state=case.state, action=action)


def _require_handler(case: Case, actor: Person, action: Permission) -> None:
    if not access.allowed(actor, action, case):
        raise CaseError("not_assignee")


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
    _require_handler(case, actor, Permission.TRIAGE)
    await categorise(session, case, actor.id, category_id, now)
    why = (f"category chosen in triage by person {actor.id}",)
    return await route_case(session, district, case, now, reasons=why)


async def accept(session: AsyncSession, case: Case, actor: Person, now: datetime) -> CaseEvent:
    """The chief or department takes the case on (接单): the response is recorded."""
    await _require(session, case, ACCEPTABLE, "accept")
    _require_handler(case, actor, Permission.ACCEPT)
    case.state = ACCEPTED
    case.updated_at = now
    await sla.cancel(session, case, sla.RESPOND, now)
    within = case.response_due_at is None or now <= case.response_due_at
    return record(session, case, actor.id, "accepted", now, data={"within_limit": within})


async def whistle(
    session: AsyncSession, case: Case, actor: Person, department_id: str, note: str, now: datetime
) -> CaseEvent:
    """The chief cannot fix it alone (吹哨): the department must report for duty."""
    await _require(session, case, WHISTLABLE, "whistle")
    _require_handler(case, actor, Permission.WHISTLE)
    if case.department_id == department_id:
        raise CaseError("already_with_department")
    case.state = WHISTLED
    case.department_id = department_id
    case.updated_at = now
    return record(
        session,
        case,
        actor.id,
        "whistled",
        now,
        note=_note(note, required=False),
        data={"department": department_id},
    )


async def report_for_duty(
    session: AsyncSession, case: Case, actor: Person, now: datetime, *, whistled_at: datetime
) -> CaseEvent:
    """The department answers the whistle (报到) and takes the case on with the chief."""
    await _require(session, case, frozenset({WHISTLED}), "report_for_duty")
    _require_handler(case, actor, Permission.REPORT_FOR_DUTY)
    case.state = ACCEPTED
    case.updated_at = now
    seconds = int((now - whistled_at).total_seconds())
    return record(
        session,
        case,
        actor.id,
        "reported_for_duty",
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
    await _require(session, case, RESOLVABLE, "resolve")
    _require_handler(case, actor, Permission.RESOLVE)
    text = _note(note, required=True)
    photo_id = None
    if photo is not None:
        row = photo_row(case.id, photo, "after", now)
        case.photos.append(row)
        await session.flush()
        photo_id = row.id
    case.state = RESOLVED
    case.updated_at = now
    await sla.cancel(session, case, sla.RESPOND + sla.RESOLVE, now)
    sla.on_resolved(session, case, now)
    within = case.resolve_due_at is None or now <= case.resolve_due_at
    return record(
        session,
        case,
        actor.id,
        "resolved",
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
    await _require(session, case, TRANSFERABLE, "transfer")
    _require_handler(case, actor, Permission.TRANSFER)
    text = _note(reason, required=True)
    if to.lane_id is not None and to.lane_id == case.lane_id and to.chief_id == case.assignee_id:
        raise CaseError("same_lane")
    data: dict[str, object] = {"from_lane": case.lane_id, "to_lane": to.lane_id}
    case.lane_id = to.lane_id or case.lane_id
    case.street_id = to.street_id or case.street_id
    case.assignee_id = to.chief_id
    case.department_id = None
    case.state = DISPATCHED if to.chief_id is not None else TRIAGE
    case.updated_at = now
    return record(session, case, actor.id, "transferred", now, note=text, data=data)


async def reject(
    session: AsyncSession, case: Case, actor: Person, reason: str, now: datetime
) -> CaseEvent:
    """Not a public matter, or not real (退回): a reason is required and the resident sees it."""
    await _require(session, case, REJECTABLE, "reject")
    _require_handler(case, actor, Permission.REJECT)
    text = _note(reason, required=True)
    case.state = REJECTED
    case.closed_at = now
    case.updated_at = now
    await sla.cancel(session, case, sla.RESPOND + sla.RESOLVE, now)
    return record(session, case, actor.id, "rejected", now, note=text)


async def rate(
    session: AsyncSession,
    case: Case,
    reporter_id: int,
    stars: int,
    now: datetime,
    *,
    reopen_window: timedelta,
) -> CaseEvent:
    """The resident rates the result: 3–5 closes the case, 1–2 reopens it with priority."""
    await _require(session, case, frozenset({RESOLVED}), "rate")
    if case.reporter_id != reporter_id:
        raise CaseError("not_reporter")
    if not 1 <= stars <= 5:
        raise CaseError("bad_rating")
    case.rating = stars
    case.updated_at = now
    await sla.cancel(session, case, sla.RATING, now)
    event = record(session, case, reporter_id, "rated", now, data={"stars": stars})
    if stars <= LOW_RATING:
        await _reopen(session, case, reporter_id, now, why="low rating", window=reopen_window)
    else:
        case.state = CLOSED
        case.closed_at = now
        record(session, case, None, "closed", now, data={"rated": True})
    return event


async def not_fixed(
    session: AsyncSession, case: Case, reporter_id: int, now: datetime, *, reopen_window: timedelta
) -> CaseEvent:
    """The resident says it is not fixed: reopened to the same assignee, with priority."""
    await _require(session, case, frozenset({RESOLVED}), "not_fixed")
    if case.reporter_id != reporter_id:
        raise CaseError("not_reporter")
    await sla.cancel(session, case, sla.RATING, now)
    return await _reopen(session, case, reporter_id, now, why="not fixed", window=reopen_window)


async def _reopen(
    session: AsyncSession,
    case: Case,
    actor_id: int | None,
    now: datetime,
    *,
    why: str,
    window: timedelta,
) -> CaseEvent:
    sla.on_reopened(session, case, now, window)
    case.state = ACCEPTED
    case.priority += 1
    case.rating = None
    case.closed_at = None
    case.updated_at = now
    return record(session, case, actor_id, "reopened", now, note=why)


async def add_comment(
    session: AsyncSession, case: Case, reporter_id: int, comment: str, now: datetime
) -> CaseEvent:
    """The resident's optional words with a rating."""
    if case.reporter_id != reporter_id:
        raise CaseError("not_reporter")
    text = _note(comment, required=True)
    return record(session, case, reporter_id, "commented", now, note=text)


async def close_unrated(session: AsyncSession, case: Case, now: datetime) -> CaseEvent:
    """No rating within the window: closed, and counted apart from rated cases."""
    await _require(session, case, frozenset({RESOLVED}), "close_unrated")
    case.state = CLOSED
    case.closed_at = now
    case.updated_at = now
    return record(session, case, None, "closed", now, data={"rated": False})
