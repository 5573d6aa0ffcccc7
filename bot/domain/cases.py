"""The case lifecycle: one function per transition, each checking who may and writing one event.

Plain domain code: it takes a database session and plain values, and knows nothing of Telegram.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain import sla
from bot.domain.text import is_blank
from storage.cases import case_by_idempotency_key, lock_case, next_case_serial
from storage.models import Case, CaseEvent, CategoryLabel, Photo

# States, as in ARCHITECTURE.md.
SUBMITTED = "submitted"
TRIAGE = "triage"
DISPATCHED = "dispatched"
ACCEPTED = "accepted"
WHISTLED = "whistled"
RESOLVED = "resolved"
CLOSED = "closed"
REJECTED = "rejected"
DUPLICATE = "duplicate"
WITHDRAWN = "withdrawn"

OPEN_STATES = frozenset({SUBMITTED, TRIAGE, DISPATCHED, ACCEPTED, WHISTLED, RESOLVED})
FINAL_STATES = frozenset({CLOSED, REJECTED, DUPLICATE, WITHDRAWN})
WITHDRAWABLE = frozenset({SUBMITTED, TRIAGE, DISPATCHED, ACCEPTED, WHISTLED})

# What can happen to a case: the actions of its timeline (CaseEvent.action).
ACTIONS = (
    "submitted",
    "withdrawn",
    "note",
    "photo_added",
    "dispatched",
    "triaged",
    "duplicate",
    "plus_one",
    "categorised",
    "accepted",
    "whistled",
    "reported_for_duty",
    "resolved",
    "transferred",
    "rejected",
    "rated",
    "commented",
    "reopened",
    "closed",
    "reminded",
    "escalated",
)

MAX_DESCRIPTION = 2000
MAX_NOTE = 1000
MAX_PHOTOS = 5
NUMBER_PATTERN = re.compile(r"^[A-Z]{1,6}-\d{8}-\d{4,}$")


class CaseError(Exception):
    """A transition that is not allowed; `code` names why, for the message shown to the person."""

    def __init__(self, code: str, **details: object) -> None:
        super().__init__(code)
        self.code = code
        self.details = details


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
        state=SUBMITTED,
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
        "submitted",
        now,
        data={"photos": len(draft.photos), "source": draft.source},
    )
    return case, True


async def withdraw(session: AsyncSession, case: Case, actor_id: int, now: datetime) -> CaseEvent:
    await hold(session, case)
    if case.reporter_id != actor_id:
        raise CaseError("not_reporter")
    if case.state not in WITHDRAWABLE:
        raise CaseError("not_withdrawable", state=case.state)
    case.state = WITHDRAWN
    case.closed_at = now
    case.updated_at = now
    await sla.cancel(session, case, sla.RESPOND + sla.RESOLVE, now)
    return record(session, case, actor_id, "withdrawn", now)


def add_note(
    session: AsyncSession, case: Case, actor_id: int, note: str, now: datetime
) -> CaseEvent:
    _check_addable(case, actor_id)
    note = note.strip()
    if is_blank(note):
        raise CaseError("empty_note")
    if len(note) > MAX_NOTE:
        raise CaseError("note_too_long", limit=MAX_NOTE)
    case.updated_at = now
    return record(session, case, actor_id, "note", now, note=note)


async def add_photo(
    session: AsyncSession, case: Case, actor_id: int, photo: PhotoInput, now: datetime
) -> CaseEvent:
    _check_addable(case, actor_id)
    if len(case.photos) >= MAX_PHOTOS * 2:
        raise CaseError("too_many_photos", limit=MAX_PHOTOS * 2)
    row = photo_row(case.id, photo, "before", now)
    case.photos.append(row)
    await session.flush()
    case.updated_at = now
    return record(session, case, actor_id, "photo_added", now, photo_id=row.id)


def _check_addable(case: Case, actor_id: int) -> None:
    if case.reporter_id != actor_id:
        raise CaseError("not_reporter")
    if case.state not in OPEN_STATES:
        raise CaseError("case_closed", state=case.state)


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
    action: str,
    now: datetime,
    *,
    note: str | None = None,
    photo_id: int | None = None,
    data: dict[str, object] | None = None,
) -> CaseEvent:
    event = CaseEvent(
        case_id=case.id,
        actor_id=actor_id,
        action=action,
        note=note,
        photo_id=photo_id,
        data=data,
        created_at=now,
    )
    session.add(event)
    return event


async def dispatch(
    session: AsyncSession,
    case: Case,
    now: datetime,
    *,
    state: str,
    assignee_id: int | None,
    department_id: str | None,
    response_due_at: datetime | None,
    resolve_due_at: datetime | None,
    data: dict[str, object],
) -> CaseEvent:
    """Hand the case to its chief or department, or to triage; the reasons go on the timeline."""
    await hold(session, case)
    if case.state not in (SUBMITTED, TRIAGE):
        raise CaseError("not_dispatchable", state=case.state)
    case.state = state
    case.assignee_id = assignee_id
    case.department_id = department_id
    case.response_due_at = response_due_at
    case.resolve_due_at = resolve_due_at
    case.updated_at = now
    await sla.cancel(session, case, sla.RESPOND + sla.RESOLVE, now)
    sla.on_dispatched(session, case, now)
    action = "triaged" if state == TRIAGE else "dispatched"
    return record(session, case, None, action, now, data=data)


def mark_duplicate(
    session: AsyncSession, case: Case, original: Case, now: datetime, *, data: dict[str, object]
) -> None:
    """Link a repeat report to the open case it repeats; its reporter follows the original."""
    case.state = DUPLICATE
    case.duplicate_of_id = original.id
    case.closed_at = now
    case.updated_at = now
    record(session, case, None, "duplicate", now, note=original.number, data=data)
    record(
        session,
        original,
        case.reporter_id,
        "plus_one",
        now,
        note=case.number,
        data={"duplicate": case.id},
    )
    original.updated_at = now


async def categorise(
    session: AsyncSession, case: Case, actor_id: int, category_id: str, now: datetime
) -> CaseEvent:
    """A person sets the category of a case in triage; the choice is kept as a training label."""
    await hold(session, case)
    if case.state != TRIAGE:
        raise CaseError("not_in_triage", state=case.state)
    previous = case.category_id
    session.add(
        CategoryLabel(
            case_id=case.id,
            text=case.description,
            category_id=category_id,
            previous_category_id=previous,
            source="triage" if previous is None else "correction",
            labelled_by=actor_id,
            created_at=now,
        )
    )
    case.category_id = category_id
    case.category_confidence = 1.0
    case.updated_at = now
    return record(
        session, case, actor_id, "categorised", now, data={"category": category_id, "was": previous}
    )
