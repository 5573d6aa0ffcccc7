"""A case's own steps: its creation, the reporter's additions and withdrawal, and routing's
dispatch, duplicate link and triage category. The handling loop is bot/domain/handling.py; the
states, what may happen in each and who may do it are bot/domain/lifecycle.py, which every
transition here checks first (`begin`, or `check` for the steps that need no lock).

Plain domain code: it takes a database session and plain values, and knows nothing of Telegram.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain import sla
from bot.domain.lifecycle import START, Action, Event, State, Transition, check, enter

# Raised by every transition; defined with the table it enforces.
from bot.domain.lifecycle import CaseError as CaseError
from bot.domain.text import is_blank
from storage.cases import case_by_idempotency_key, lock_case, next_case_serial
from storage.models import Case, CaseEvent, CategoryLabel, Person, Photo

MAX_DESCRIPTION = 2000
MAX_NOTE = 1000
MAX_PHOTOS = 5
NUMBER_PATTERN = re.compile(r"^[A-Z]{1,6}-\d{8}-\d{4,}$")


def _standing(case: Case) -> tuple[str, str | None, int | None, str | None]:
    """Where a case stands: its state and who acts on it (what a transition is decided on)."""
    return (case.state, case.lane_id, case.assignee_id, case.department_id)


async def hold(session: AsyncSession, case: Case) -> None:
    """Lock the case for this transaction; refuse if it moved on since this transaction read it.

    Two people acting on one case at once both read it before either writes. The later one
    waits here for the earlier to commit and is then told the case has moved on, rather than
    overwriting what the earlier did (accepted, then rejected by someone who saw it waiting).
    Call before changing anything, so that a refused transition leaves nothing behind.
    """
    seen = _standing(case)
    await lock_case(session, case)
    if _standing(case) != seen:
        raise CaseError("moved_on", number=case.number, state=case.state)


async def begin(
    session: AsyncSession, case: Case, actor: Person | None, action: Action
) -> Transition:
    """Hold the case (`hold`), then check that `actor` (None: the system) may do `action` to
    it as it now stands (`bot.domain.lifecycle.check`): what every transition starts with."""
    await hold(session, case)
    return check(case, actor, action)


@dataclass(frozen=True)
class PhotoInput:
    """A stored, stripped photo (see bot/domain/photos.py) and the Telegram file it came from."""

    path: str
    sha256: str
    phash: str
    size: int
    width: int
    height: int
    file_id: str | None = None
    file_unique_id: str | None = None


@dataclass
class ReportDraft:
    """Everything a reporter has given before confirming."""

    reporter_id: int | None  # None: a report from another system (Open311), no chat to tell
    idempotency_key: str
    description: str = ""
    photos: list[PhotoInput] = field(default_factory=list)
    lat: float | None = None
    lon: float | None = None
    address: str | None = None
    lane_id: str | None = None
    street_id: str | None = None
    source: str = "chat"


def case_number(prefix: str, day: str, serial: int) -> str:
    return f"{prefix}-{day}-{serial:04d}"


async def create_case(
    session: AsyncSession, draft: ReportDraft, *, prefix: str, tz: ZoneInfo, now: datetime
) -> tuple[Case, bool]:
    """Create the case for a confirmed draft; (case, False) when it was confirmed before."""
    existing = await case_by_idempotency_key(session, draft.idempotency_key)
    if existing is not None:
        return existing, False
    if not draft.photos and not draft.description.strip():
        raise CaseError("empty_report")
    if len(draft.description) > MAX_DESCRIPTION:
        raise CaseError("description_too_long", limit=MAX_DESCRIPTION)
    if len(draft.photos) > MAX_PHOTOS:
        raise CaseError("too_many_photos", limit=MAX_PHOTOS)
    day = now.astimezone(tz).strftime("%Y%m%d")
    serial = await next_case_serial(session, day)
    case = Case(
        number=case_number(prefix, day, serial),
        idempotency_key=draft.idempotency_key,
        state=START,
        source=draft.source,
        lane_id=draft.lane_id,
        street_id=draft.street_id,
        lat=draft.lat,
        lon=draft.lon,
        address=draft.address,
        description=draft.description.strip(),
        reporter_id=draft.reporter_id,
        priority=0,
        created_at=now,
        updated_at=now,
        photos=[],
    )
    session.add(case)
    await session.flush()
    for item in draft.photos:
        case.photos.append(photo_row(case.id, item, "before", now))
    await session.flush()
    record(
        session,
        case,
        draft.reporter_id,
        Event.SUBMITTED,
        now,
        data={"photos": len(draft.photos), "source": draft.source},
    )
    return case, True


async def withdraw(session: AsyncSession, case: Case, actor: Person, now: datetime) -> CaseEvent:
    """The reporter takes the report back, until it is fixed."""
    step = await begin(session, case, actor, Action.WITHDRAW)
    enter(case, step, now)
    case.closed_at = now
    await sla.cancel(session, case, sla.RESPOND + sla.RESOLVE, now)
    return record(session, case, actor.id, step.event, now)


def add_note(
    session: AsyncSession, case: Case, actor: Person, note: str, now: datetime
) -> CaseEvent:
    """The reporter's words added to an open case (no lock: it changes nothing others act on)."""
    step = check(case, actor, Action.ADD_NOTE)
    note = note.strip()
    if is_blank(note):
        raise CaseError("empty_note")
    if len(note) > MAX_NOTE:
        raise CaseError("note_too_long", limit=MAX_NOTE)
    enter(case, step, now)
    return record(session, case, actor.id, step.event, now, note=note)


async def add_photo(
    session: AsyncSession, case: Case, actor: Person, photo: PhotoInput, now: datetime
) -> CaseEvent:
    step = check(case, actor, Action.ADD_PHOTO)
    if len(case.photos) >= MAX_PHOTOS * 2:
        raise CaseError("too_many_photos", limit=MAX_PHOTOS * 2)
    row = photo_row(case.id, photo, "before", now)
    case.photos.append(row)
    await session.flush()
    enter(case, step, now)
    return record(session, case, actor.id, step.event, now, photo_id=row.id)


def _id(actor: Person | None) -> int | None:
    return None if actor is None else actor.id


def photo_row(case_id: int, item: PhotoInput, kind: str, now: datetime) -> Photo:
    return Photo(
        case_id=case_id,
        kind=kind,
        file_id=item.file_id,
        file_unique_id=item.file_unique_id,
        path=item.path,
        sha256=item.sha256,
        phash=item.phash,
        size=item.size,
        width=item.width,
        height=item.height,
        created_at=now,
    )


def record(
    session: AsyncSession,
    case: Case,
    actor_id: int | None,
    event: Event,
    now: datetime,
    *,
    note: str | None = None,
    photo_id: int | None = None,
    data: dict[str, object] | None = None,
) -> CaseEvent:
    """Write `event` on the case's timeline (its `action` column) by `actor_id` (None: the
    system, or nobody from the shell)."""
    line = CaseEvent(
        case_id=case.id,
        actor_id=actor_id,
        action=event,
        note=note,
        photo_id=photo_id,
        data=data,
        created_at=now,
    )
    session.add(line)
    return line


async def dispatch(
    session: AsyncSession,
    case: Case,
    now: datetime,
    *,
    actor: Person | None,
    state: State,
    assignee_id: int | None,
    department_id: str | None,
    response_due_at: datetime | None,
    resolve_due_at: datetime | None,
    data: dict[str, object],
) -> CaseEvent:
    """Hand the case to its chief or department (`state` dispatched), or to triage; the reasons
    go on the timeline. By routing: `actor` None, the system."""
    action = Action.SEND_TO_TRIAGE if state == State.TRIAGE else Action.DISPATCH
    step = await begin(session, case, actor, action)
    enter(case, step, now)
    case.assignee_id = assignee_id
    case.department_id = department_id
    case.response_due_at = response_due_at
    case.resolve_due_at = resolve_due_at
    await sla.cancel(session, case, sla.RESPOND + sla.RESOLVE, now)
    sla.on_dispatched(session, case, now)
    return record(session, case, _id(actor), step.event, now, data=data)


def mark_duplicate(
    session: AsyncSession,
    case: Case,
    original: Case,
    now: datetime,
    *,
    actor: Person | None,
    data: dict[str, object],
) -> None:
    """Link a repeat report to the open case it repeats; its reporter follows the original.
    By routing (`actor` None, the system), on the new case it has not dispatched."""
    step = check(case, actor, Action.MARK_DUPLICATE)
    enter(case, step, now)
    case.duplicate_of_id = original.id
    case.closed_at = now
    record(session, case, _id(actor), step.event, now, note=original.number, data=data)
    record(
        session,
        original,
        case.reporter_id,
        Event.PLUS_ONE,
        now,
        note=case.number,
        data={"duplicate": case.id},
    )
    original.updated_at = now


async def categorise(
    session: AsyncSession, case: Case, actor: Person, category_id: str, now: datetime
) -> CaseEvent:
    """A person sets the category of a case in triage; the choice is kept as a training label."""
    step = await begin(session, case, actor, Action.CATEGORISE)
    previous = case.category_id
    session.add(
        CategoryLabel(
            case_id=case.id,
            text=case.description,
            category_id=category_id,
            previous_category_id=previous,
            source="triage" if previous is None else "correction",
            labelled_by=actor.id,
            created_at=now,
        )
    )
    case.category_id = category_id
    case.category_confidence = 1.0
    enter(case, step, now)
    data: dict[str, object] = {"category": category_id, "was": previous}
    return record(session, case, actor.id, step.event, now, data=data)
