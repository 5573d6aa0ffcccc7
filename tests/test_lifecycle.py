"""The lifecycle table (bot/domain/lifecycle.py) is complete and consistent, and every state set
derived from it is the one the code wrote by hand before: those are written out literally here
as the specification.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.domain import access
from bot.domain.access import Permission
from bot.domain.lifecycle import (
    ACTIONABLE,
    AWAITING_RESPONSE,
    DROPPED,
    ENDED_UNFIXED,
    FINAL,
    HELD,
    NOT_TAKEN_ON,
    OPEN,
    OTHER_EVENTS,
    RESPONSES,
    START,
    TRANSITIONS,
    UNASSIGNED,
    UNFIXED,
    WITHDRAWABLE,
    Action,
    Event,
    Side,
    State,
    current_deadline,
    offers,
)
from storage.models import Case

# The sets as they were written by hand across the code before they were derived.
OLD_OPEN_STATES = {"submitted", "triage", "dispatched", "accepted", "whistled", "resolved"}
OLD_FINAL_STATES = {"closed", "rejected", "duplicate", "withdrawn"}
OLD_WITHDRAWABLE = {"submitted", "triage", "dispatched", "accepted", "whistled"}
# bot/domain/handling.py, and the states each transition function checked inline.
OLD_FROM_STATES = {
    Action.DISPATCH: {"submitted", "triage"},
    Action.SEND_TO_TRIAGE: {"submitted", "triage"},
    Action.CATEGORISE: {"triage"},
    Action.ACCEPT: {"dispatched"},
    Action.WHISTLE: {"dispatched", "accepted"},
    Action.REPORT_FOR_DUTY: {"whistled"},
    Action.RESOLVE: {"accepted"},
    Action.TRANSFER: {"triage", "dispatched", "accepted"},
    Action.TRANSFER_TO_TRIAGE: {"triage", "dispatched", "accepted"},
    Action.REJECT: {"triage", "dispatched", "accepted"},
    Action.RATE: {"resolved"},
    Action.REOPEN: {"resolved"},
    Action.CLOSE: {"resolved"},
    Action.WITHDRAW: OLD_WITHDRAWABLE,
    Action.ADD_NOTE: OLD_OPEN_STATES,
    Action.ADD_PHOTO: OLD_OPEN_STATES,
}
# bot/telegram/keyboards.py CARD_BUTTONS ("duty" is the button of report_for_duty).
OLD_CARD_BUTTONS = {
    ("chief", "dispatched"): ("accept", "whistle", "transfer", "reject"),
    ("chief", "accepted"): ("resolve", "whistle", "transfer", "reject"),
    ("department", "dispatched"): ("accept", "transfer", "reject"),
    ("department", "whistled"): ("report_for_duty",),
    ("department", "accepted"): ("resolve",),
    ("supervisor", "triage"): ("transfer", "reject"),
    ("supervisor", "dispatched"): ("accept", "whistle", "transfer", "reject"),
    ("supervisor", "accepted"): ("resolve", "whistle", "transfer", "reject"),
    ("supervisor", "whistled"): ("report_for_duty",),
}
# bot/jobs/scheduler.py: the states in which each window's deadline steps still fire.
OLD_WAITING_RESPONSE = {"triage", "dispatched", "whistled"}
OLD_WAITING_RESOLUTION = {"triage", "dispatched", "accepted", "whistled"}
# bot/figures/kpi_sql.py.
OLD_RESPONSES = ("accepted", "whistled", "rejected")
OLD_DROPPED = {"withdrawn", "duplicate"}
OLD_ENDED_UNFIXED = {"withdrawn", "duplicate", "rejected"}
OLD_UNANSWERED_STATES = {"submitted", "triage", "dispatched"}
OLD_UNFIXED_STATES = {"submitted", "triage", "dispatched", "accepted", "whistled"}
# bot/open311/view.py: a service request is open until the case is fixed or has ended.
OLD_OPEN311_OPEN = {"submitted", "triage", "dispatched", "accepted", "whistled"}
# /tasks (handlers/chief.py) lists these; bot/telegram/notify.py tells the supervisors of an
# unreachable person's cases in these; bot/domain/people.py hands these on with a role.
OLD_TASKS = {"triage", "dispatched", "accepted", "whistled"}
OLD_UNREACHABLE = {"dispatched", "accepted", "whistled"}
OLD_PEOPLE_HELD = {"dispatched", "accepted", "whistled", "resolved"}
# bot/domain/cases.py dispatch: the states routing may place a case from.
OLD_UNASSIGNED = {"submitted", "triage"}
# The timeline's actions (bot/domain/cases.py ACTIONS), in their order.
OLD_EVENTS = (
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


def _moves(state: State) -> set[State]:
    return {
        t.to_state
        for t in TRANSITIONS.values()
        if state in t.from_states and t.to_state is not None
    }


def test_the_stored_values_are_those_of_the_database() -> None:
    assert {s.value for s in State} == OLD_OPEN_STATES | OLD_FINAL_STATES
    assert tuple(e.value for e in Event) == OLD_EVENTS


def test_every_action_has_one_transition_and_every_event_a_writer() -> None:
    assert set(TRANSITIONS) == set(Action)
    written = {t.event for t in TRANSITIONS.values()}
    assert written.isdisjoint(OTHER_EVENTS)
    assert written | OTHER_EVENTS == set(Event)


def test_every_state_is_reachable_and_every_open_one_can_end() -> None:
    reached, todo = {START}, [START]
    while todo:
        for state in _moves(todo.pop()) - reached:
            reached.add(state)
            todo.append(state)
    assert reached == set(State)
    for state in OPEN:
        ends, todo, seen = False, [state], {state}
        while todo and not ends:
            for nxt in _moves(todo.pop()) - seen:
                ends |= nxt in FINAL
                seen.add(nxt)
                todo.append(nxt)
        assert ends, state
    assert all(not _moves(state) for state in FINAL)


def test_each_transition_needs_a_permission_of_the_table_or_the_systems() -> None:
    for action, step in TRANSITIONS.items():
        assert step.permission in access.TABLE or step.permission in access.SYSTEM, action
        assert step.from_states, action
    system = {a for a, t in TRANSITIONS.items() if t.permission in access.SYSTEM}
    assert system == {Action.DISPATCH, Action.SEND_TO_TRIAGE, Action.MARK_DUPLICATE, Action.CLOSE}
    assert set(access.SYSTEM).isdisjoint(access.TABLE)


def test_derived_sets_are_the_ones_written_by_hand_before() -> None:
    assert OPEN == OLD_OPEN_STATES
    assert FINAL == OLD_FINAL_STATES
    assert WITHDRAWABLE == OLD_WITHDRAWABLE
    for action, states in OLD_FROM_STATES.items():
        assert TRANSITIONS[action].from_states == states, action
    assert TRANSITIONS[Action.COMMENT].from_states == set(State)  # never checked: any state
    assert NOT_TAKEN_ON == OLD_WAITING_RESPONSE
    assert ACTIONABLE == OLD_WAITING_RESOLUTION == OLD_TASKS
    assert RESPONSES == OLD_RESPONSES
    assert set(DROPPED) == OLD_DROPPED
    assert set(ENDED_UNFIXED) == OLD_ENDED_UNFIXED
    assert AWAITING_RESPONSE == OLD_UNANSWERED_STATES
    assert UNFIXED == OLD_UNFIXED_STATES == OLD_OPEN311_OPEN
    assert HELD == OLD_PEOPLE_HELD
    assert HELD & UNFIXED == OLD_UNREACHABLE
    assert UNASSIGNED == OLD_UNASSIGNED


def test_what_each_card_offers_is_what_it_offered_before() -> None:
    offered = {
        (side.value, state.value): tuple(a.value for a in offers(side, state))
        for side in Side
        for state in State
        if offers(side, state)
    }
    assert offered == OLD_CARD_BUTTONS


def test_each_card_action_is_open_to_the_roles_of_its_sides_only() -> None:
    """A side is never offered a button its role may not press."""
    roles = {Side.CHIEF: access.CHIEF, Side.DEPARTMENT: access.OFFICER}
    for (side, _state), actions in OLD_CARD_BUTTONS.items():
        for action in actions:
            row = access.TABLE[TRANSITIONS[Action(action)].permission]
            assert roles.get(Side(side), access.SUPERVISOR) in row, (side, action)


NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
RESPOND_BY, RESOLVE_BY = NOW + timedelta(hours=2), NOW + timedelta(days=2)


@pytest.mark.parametrize("state", list(State), ids=str)
def test_the_deadline_that_applies_now(state: State) -> None:
    """The response deadline until someone answers, then the resolution's; none after.

    As /tasks showed it (response while dispatched or in triage, else resolution), and the
    KPIs' "unanswered" (submitted, triage, dispatched)."""
    case = Case(state=state, response_due_at=RESPOND_BY, resolve_due_at=RESOLVE_BY)
    expected = {
        "submitted": RESPOND_BY,
        "triage": RESPOND_BY,
        "dispatched": RESPOND_BY,
        "accepted": RESOLVE_BY,
        "whistled": RESOLVE_BY,
    }.get(state.value)
    assert current_deadline(case) == expected


def test_the_system_holds_its_own_permissions_and_nothing_else() -> None:
    for permission in Permission:
        assert access.allowed(None, permission) is (permission in access.SYSTEM), permission
