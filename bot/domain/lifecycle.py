"""The case lifecycle in one place: what a case can be, what can be done to it and by whom,
and what each step writes on its timeline. Everything else about states is derived from here.

Glossary (one name per concept, the same in the code, the tables and the messages):

- **case**: one reported problem (`cases` row), numbered like CY-20261123-0001. Its
  **reporter** is the resident who sent it (none for a report from another system, Open311).
- **lane** (街巷): a street, hutong or estate; each belongs to a **street office** (街道,
  `street_id`). **chief** (街巷长): the person answering for a lane (role `chief`).
- **department** (职能部门): a city service a case can go to or be called in to; its people
  are **officers** (role `officer`). **supervisor**: staff of a street office (role
  `supervisor`): they triage, can step in on any card, hear of escalations. **admin**: the
  whole district. **volunteer** (小巷管家): reports like a resident.
- **assignee**: whoever acts on a case now: the chief it is assigned to (`assignee_id`), the
  department it is with (`department_id`: its officers and its group chat) and, always, the
  street office's supervisors. (Never "handler": that is aiogram's function for an update.)
- **card**: the message an assignee acts from, its buttons the actions open to them; read
  from a `Side`: the chief's, the department's or the supervisors'.
- **action**: what someone does to a case (accept …), a key of `TRANSITIONS`. **event**: the
  line an action writes on the timeline, in the past tense (accepted); stored in
  `case_events.action`. **permission**: a row of the authorisation table
  (bot/domain/access.py) an action needs. **actor**: the person acting, or None for **the
  system** (the bot itself: the routing of a new case, the deadline sweep).
- **dispatch** (派单): routing gives a new case to its lane's chief or to a department, with a
  **response** deadline (`response_due_at`) and a **resolution** deadline (`resolve_due_at`).
- **triage** (分拣): a case routing could not place waits in state `triage` (event `triaged`:
  sent there) until a supervisor of its street office **categorises** it; routing then
  dispatches it (or it stays in triage when its lane has no chief).
- **duplicate**: a repeat of an open case nearby, joined to it; the original gets `plus_one`.
- **accept** (接单): an assignee takes the case on. **whistle** (吹哨): the chief calls in a
  department; **report for duty** (报到): the department answers and takes the case on with
  him. To **take on** a case is to accept it or report for duty. A case is **answered** by
  its first accept, whistle or reject (the response of the KPIs).
- **transfer** (转派): to another lane's chief, or back to triage. **reject** (退回): not a
  public matter or not real; ends the case, with a reason the reporter sees.
- **resolve** (办结): fixed, with an after-photo and a note; the reporter is asked to **rate**
  it (1–5 stars): 3–5 **close** it, 1–2 (or "not fixed") **reopen** it to its assignee,
  accepted, with priority. Unrated within the rating window, the system closes it.
- **withdraw**: the reporter takes the report back. A **note** or photo adds to it, a
  **comment** goes with a rating. **remind** and **escalate**: the deadline sweep's events.

The transition functions are bot/domain/cases.py (creating a case, the reporter's additions,
routing's steps) and bot/domain/handling.py (the handling loop); each one starts with `check`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from bot.domain import access
from bot.domain.access import Permission
from storage.models import Case, Person


class State(StrEnum):
    """Where a case stands (`cases.state`)."""

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


class Action(StrEnum):
    """What can be done to a case: the keys of `TRANSITIONS`."""

    DISPATCH = "dispatch"
    SEND_TO_TRIAGE = "send_to_triage"
    MARK_DUPLICATE = "mark_duplicate"
    CATEGORISE = "categorise"
    ACCEPT = "accept"
    WHISTLE = "whistle"
    REPORT_FOR_DUTY = "report_for_duty"
    TRANSFER = "transfer"
    TRANSFER_TO_TRIAGE = "transfer_to_triage"
    REJECT = "reject"
    RESOLVE = "resolve"
    RATE = "rate"
    REOPEN = "reopen"
    CLOSE = "close"
    WITHDRAW = "withdraw"
    ADD_NOTE = "add_note"
    ADD_PHOTO = "add_photo"
    COMMENT = "comment"


class Event(StrEnum):
    """A line of a case's timeline (`case_events.action`)."""

    SUBMITTED = "submitted"
    WITHDRAWN = "withdrawn"
    NOTE = "note"
    PHOTO_ADDED = "photo_added"
    DISPATCHED = "dispatched"
    TRIAGED = "triaged"
    DUPLICATE = "duplicate"
    PLUS_ONE = "plus_one"
    CATEGORISED = "categorised"
    ACCEPTED = "accepted"
    WHISTLED = "whistled"
    REPORTED_FOR_DUTY = "reported_for_duty"
    RESOLVED = "resolved"
    TRANSFERRED = "transferred"
    REJECTED = "rejected"
    RATED = "rated"
    COMMENTED = "commented"
    REOPENED = "reopened"
    CLOSED = "closed"
    REMINDED = "reminded"
    ESCALATED = "escalated"


class CaseError(Exception):
    """A step that is not allowed; `code` names why, for the message shown to the person."""

    def __init__(self, code: str, **details: object) -> None:
        super().__init__(code)
        self.code = code
        self.details = details


@dataclass(frozen=True)
class Transition:
    """One action: the states it starts from, the state it leads to (None: the state stays),
    the event it writes, the permission its actor needs, the `CaseError` code when the case's
    state does not allow it, and whether it answers the case (the KPIs' response)."""

    from_states: frozenset[State]
    to_state: State | None
    event: Event
    permission: Permission
    refusal: str = "wrong_state"
    answers: bool = False


S, A, E, P = State, Action, Event, Permission
_ROUTABLE = frozenset({S.SUBMITTED, S.TRIAGE})
_TURNABLE = frozenset({S.TRIAGE, S.DISPATCHED, S.ACCEPTED})  # transfer, reject
_UNTIL_FIXED = frozenset({S.SUBMITTED, S.TRIAGE, S.DISPATCHED, S.ACCEPTED, S.WHISTLED})
_UNTIL_RATED = _UNTIL_FIXED | {S.RESOLVED}

# The lifecycle. A case is born `START` (bot.domain.cases.create_case, event `submitted`).
START: Final = S.SUBMITTED
TRANSITIONS: Final[Mapping[Action, Transition]] = MappingProxyType(
    {
        A.DISPATCH: Transition(_ROUTABLE, S.DISPATCHED, E.DISPATCHED, P.ROUTE, "not_dispatchable"),
        A.SEND_TO_TRIAGE: Transition(_ROUTABLE, S.TRIAGE, E.TRIAGED, P.ROUTE, "not_dispatchable"),
        A.MARK_DUPLICATE: Transition(
            frozenset({S.SUBMITTED}), S.DUPLICATE, E.DUPLICATE, P.ROUTE, "not_dispatchable"
        ),
        A.CATEGORISE: Transition(
            frozenset({S.TRIAGE}), None, E.CATEGORISED, P.TRIAGE, "not_in_triage"
        ),
        A.ACCEPT: Transition(
            frozenset({S.DISPATCHED}), S.ACCEPTED, E.ACCEPTED, P.ACCEPT, answers=True
        ),
        A.WHISTLE: Transition(
            frozenset({S.DISPATCHED, S.ACCEPTED}), S.WHISTLED, E.WHISTLED, P.WHISTLE, answers=True
        ),
        A.REPORT_FOR_DUTY: Transition(
            frozenset({S.WHISTLED}), S.ACCEPTED, E.REPORTED_FOR_DUTY, P.REPORT_FOR_DUTY
        ),
        A.TRANSFER: Transition(_TURNABLE, S.DISPATCHED, E.TRANSFERRED, P.TRANSFER),
        A.TRANSFER_TO_TRIAGE: Transition(_TURNABLE, S.TRIAGE, E.TRANSFERRED, P.TRANSFER),
        A.REJECT: Transition(_TURNABLE, S.REJECTED, E.REJECTED, P.REJECT, answers=True),
        A.RESOLVE: Transition(frozenset({S.ACCEPTED}), S.RESOLVED, E.RESOLVED, P.RESOLVE),
        A.RATE: Transition(frozenset({S.RESOLVED}), None, E.RATED, P.RATE),
        A.REOPEN: Transition(frozenset({S.RESOLVED}), S.ACCEPTED, E.REOPENED, P.RATE),
        A.CLOSE: Transition(frozenset({S.RESOLVED}), S.CLOSED, E.CLOSED, P.CLOSE),
        A.WITHDRAW: Transition(
            _UNTIL_FIXED, S.WITHDRAWN, E.WITHDRAWN, P.WITHDRAW, "not_withdrawable"
        ),
        A.ADD_NOTE: Transition(_UNTIL_RATED, None, E.NOTE, P.ADD_NOTE, "case_closed"),
        A.ADD_PHOTO: Transition(_UNTIL_RATED, None, E.PHOTO_ADDED, P.ADD_NOTE, "case_closed"),
        # Words that go with a rating, whenever they come.
        A.COMMENT: Transition(frozenset(State), None, E.COMMENTED, P.RATE),
    }
)
# Events no action writes as its own: the case's creation, the original's side of a
# duplicate, and the deadline sweep's (bot/jobs/scheduler.py).
OTHER_EVENTS: Final = frozenset({E.SUBMITTED, E.PLUS_ONE, E.REMINDED, E.ESCALATED})


def _from(actions: Iterable[Action]) -> frozenset[State]:
    return frozenset(s for a in actions for s in TRANSITIONS[a].from_states)


def _to(action: Action) -> State:
    state = TRANSITIONS[action].to_state
    assert state is not None, action
    return state


def _events(keep: Iterable[Action]) -> tuple[Event, ...]:
    return tuple(dict.fromkeys(TRANSITIONS[a].event for a in keep))


_MOVES = tuple(a for a, t in TRANSITIONS.items() if t.to_state is not None)

# --------------------------------------------------------------------------- derived sets

# Open while something can still change its state; final once nothing can.
OPEN: Final = _from(_MOVES)
FINAL: Final = frozenset(State) - OPEN
WITHDRAWABLE: Final = TRANSITIONS[A.WITHDRAW].from_states
# Open and not fixed yet (Open311's "open": GeoReport v2 closes a request once it is fixed).
FIXED: Final = _to(A.RESOLVE)
UNFIXED: Final = OPEN - {FIXED}
# Waiting to be placed (by routing, or a supervisor in triage): nobody is assigned yet.
UNASSIGNED: Final = TRANSITIONS[A.DISPATCH].from_states
# With its assignee, until rated: a low rating reopens it to them.
HELD: Final = OPEN - UNASSIGNED

# The actions of a card, in the order of its buttons.
CARD_ACTIONS: Final = (A.ACCEPT, A.RESOLVE, A.WHISTLE, A.TRANSFER, A.REJECT, A.REPORT_FOR_DUTY)
# Someone has something to do: the states a card offers an action in (/tasks, reminders).
ACTIONABLE: Final = _from(CARD_ACTIONS)
# Not taken on yet: the response deadline's reminders still apply.
NOT_TAKEN_ON: Final = ACTIONABLE - {_to(A.ACCEPT)}


def _unanswered() -> frozenset[State]:
    """The open states a case can be in before anything answered it."""
    reached: set[State] = set()
    todo = [START]
    while todo:
        state = todo.pop()
        reached.add(state)
        for t in TRANSITIONS.values():
            nxt = t.to_state
            if state in t.from_states and not t.answers and nxt is not None and nxt not in reached:
                todo.append(nxt)
    return frozenset(reached) & OPEN


AWAITING_RESPONSE: Final = _unanswered()
# The events that answer a case: its first one is the response the KPIs judge.
RESPONSES: Final = _events(a for a, t in TRANSITIONS.items() if t.answers)
# The ends of a case that was never fixed, and of those the ones that answer nobody (the
# reporter took it back, or it joined another case).
_UNFIXED_ENDS = tuple(a for a in _MOVES if TRANSITIONS[a].to_state in FINAL - {_to(A.CLOSE)})
ENDED_UNFIXED: Final = _events(_UNFIXED_ENDS)
DROPPED: Final = _events(a for a in _UNFIXED_ENDS if not TRANSITIONS[a].answers)


class Side(StrEnum):
    """Whose card it is (the last part of a card's outbox ref, `card:<case id>:<side>`)."""

    CHIEF = "chief"
    DEPARTMENT = "department"
    SUPERVISOR = "supervisor"


_SIDE_ROLE: Final = {
    Side.CHIEF: access.CHIEF,
    Side.DEPARTMENT: access.OFFICER,
    Side.SUPERVISOR: access.SUPERVISOR,
}


def offers(side: Side, state: str) -> tuple[Action, ...]:
    """The buttons of `side`'s card with the case in `state`: the card's actions that start
    from it and that the side's role has the permission for, but for what a side leaves to
    others. A case not yet placed is the supervisors' alone; a department turns a case away
    (transfer, reject) only before it has taken it on, then it only resolves it."""
    role = _SIDE_ROLE[side]
    found = []
    for action in CARD_ACTIONS:
        step = TRANSITIONS[action]
        if state not in step.from_states or role not in access.TABLE[step.permission]:
            continue
        if side is not Side.SUPERVISOR and state in UNASSIGNED:
            continue
        turning_away = action in (Action.TRANSFER, Action.REJECT)
        if side is Side.DEPARTMENT and turning_away and state not in NOT_TAKEN_ON:
            continue
        found.append(action)
    return tuple(found)


# --------------------------------------------------------------------------- checks


def startable(case: Case, action: Action) -> bool:
    """Does the case's state allow `action` now?"""
    return case.state in TRANSITIONS[action].from_states


def permitted(case: Case, actor: Person | None, action: Action) -> bool:
    """Does `actor` (None: the system) hold the permission `action` needs on this case?"""
    return access.allowed(actor, TRANSITIONS[action].permission, case)


def check(case: Case, actor: Person | None, action: Action) -> Transition:
    """The transition, if `actor` may do `action` to the case as it stands; else `CaseError`:
    `not_reporter` (a reporter's own action) or `not_assignee` when the actor may not, then
    the transition's `refusal` when the state does not allow it."""
    step = TRANSITIONS[action]
    if not access.allowed(actor, step.permission, case):
        own = access.TABLE.get(step.permission) == {access.RESIDENT: access.OWN}
        raise CaseError("not_reporter" if own else "not_assignee", action=action.value)
    if case.state not in step.from_states:
        raise CaseError(step.refusal, state=case.state, action=action.value)
    return step


def enter(case: Case, step: Transition, now: datetime) -> None:
    """Put the case in the transition's state (if it changes one)."""
    if step.to_state is not None:
        case.state = step.to_state
    case.updated_at = now


def current_deadline(case: Case) -> datetime | None:
    """The deadline the case is working to now: the response's until someone answers it, then
    the resolution's; none once it is fixed or has ended."""
    if case.state in AWAITING_RESPONSE:
        return case.response_due_at
    if case.state in UNFIXED:
        return case.resolve_due_at
    return None


del S, A, E, P
