"""Who may do what: one table of role × action × scope, checked by `allowed` and nowhere else.

Every person is a resident; a role adds rows. Each row names the scope within which the role
may do the action: `OWN` (cases the person reported), `ASSIGNED` (cases assigned to the person),
`LANE`, `DEPARTMENT`, `STREET` (cases, or a scope, matching the role's own scope) or `ALL`.
A volunteer (小巷管家) reports like any resident and has no rows of their own. Case *states*
(may this case be accepted now?) are the lifecycle's business: see bot/domain/cases.py and
bot/domain/handling.py, which call `allowed` for the actor first.
"""

from __future__ import annotations

from typing import Final

from storage.models import Case, Person

ADMIN, SUPERVISOR, CHIEF, OFFICER, VOLUNTEER = (
    "admin",
    "supervisor",
    "chief",
    "officer",
    "volunteer",
)
ROLES = (ADMIN, SUPERVISOR, CHIEF, OFFICER, VOLUNTEER)
RESIDENT: Final = "resident"  # not a stored role: everyone is one

OWN, ASSIGNED, LANE, DEPARTMENT, STREET, ALL = (
    "own",
    "assigned",
    "lane",
    "department",
    "street",
    "all",
)

# Actions on a case.
VIEW_CASE, ACCEPT, RESOLVE, WHISTLE, REPORT_FOR_DUTY = (
    "view_case",
    "accept",
    "resolve",
    "whistle",
    "report_for_duty",
)
TRANSFER, REJECT, TRIAGE, RATE, WITHDRAW, ADD_NOTE = (
    "transfer",
    "reject",
    "triage",
    "rate",
    "withdraw",
    "add_note",
)
# Actions on a scope (a street office) or on the whole district.
EXPORT, DIGEST, MANAGE_PEOPLE, BAN = "export", "digest", "manage_people", "ban"

_HANDLERS = {CHIEF: ASSIGNED, OFFICER: DEPARTMENT, SUPERVISOR: STREET, ADMIN: ALL}

# The table. A role missing from an action's row may not do it at all.
TABLE: Final[dict[str, dict[str, str]]] = {
    VIEW_CASE: {RESIDENT: OWN, CHIEF: LANE, OFFICER: DEPARTMENT, SUPERVISOR: STREET, ADMIN: ALL},
    ACCEPT: _HANDLERS,
    RESOLVE: _HANDLERS,
    TRANSFER: _HANDLERS,
    REJECT: _HANDLERS,
    # The chief blows the whistle; the department answers it: neither does the other's part.
    WHISTLE: {CHIEF: ASSIGNED, SUPERVISOR: STREET, ADMIN: ALL},
    REPORT_FOR_DUTY: {OFFICER: DEPARTMENT, SUPERVISOR: STREET, ADMIN: ALL},
    TRIAGE: {SUPERVISOR: STREET, ADMIN: ALL},
    # Only the reporter speaks for the report: nobody rates, withdraws or adds to it for them.
    RATE: {RESIDENT: OWN},
    WITHDRAW: {RESIDENT: OWN},
    ADD_NOTE: {RESIDENT: OWN},
    EXPORT: {SUPERVISOR: STREET, ADMIN: ALL},
    DIGEST: {SUPERVISOR: STREET, ADMIN: ALL},
    MANAGE_PEOPLE: {ADMIN: ALL},
    BAN: {ADMIN: ALL},
}
ACTIONS: Final = tuple(TABLE)
# The actions of the assignment card: whoever may do one of them acts on the case.
HANDLING: Final = (ACCEPT, RESOLVE, WHISTLE, REPORT_FOR_DUTY, TRANSFER, REJECT)


def allowed(
    person: Person, action: str, case: Case | None = None, scope: str | None = None
) -> bool:
    """May `person` do `action` on `case` (or within `scope`, a street office id)?"""
    try:
        row = TABLE[action]
    except KeyError:
        raise ValueError(f"unknown action {action!r}; actions: {', '.join(ACTIONS)}") from None
    held = {RESIDENT} | {r.role for r in person.roles}
    return any(
        _within(person, role, kind, case, scope) for role, kind in row.items() if role in held
    )


def _within(person: Person, role: str, kind: str, case: Case | None, scope: str | None) -> bool:
    if kind == ALL:
        return True
    if case is None:
        # A scope-wide action: only a matching street office (no case: nothing is "own").
        return kind == STREET and scope is not None and has_role(person, role, scope)
    if kind == OWN:
        return case.reporter_id is not None and case.reporter_id == person.id
    if kind == ASSIGNED:
        # An assignment outlives no role: a chief who lost the lane cannot act on its cases,
        # even from a card still in his chat.
        mine = case.assignee_id is not None and case.assignee_id == person.id
        return mine and covers(person, role, case)
    target = _place(case, kind)
    return target is not None and has_role(person, role, target)


# Which of a case's places a role's scope names: a chief's lane, an officer's department …
CASE_SCOPE: Final = {CHIEF: LANE, OFFICER: DEPARTMENT, SUPERVISOR: STREET}


def covers(person: Person, role: str, case: Case) -> bool:
    """Does `person` hold `role` over the case's own lane, department or street office?"""
    kind = CASE_SCOPE.get(role)
    target = _place(case, kind) if kind is not None else None
    return target is not None and has_role(person, role, target)


def _place(case: Case, kind: str) -> str | None:
    return {LANE: case.lane_id, DEPARTMENT: case.department_id, STREET: case.street_id}[kind]


def has_role(person: Person, role: str, scope: str | None = None) -> bool:
    return any(r.role == role and (scope is None or r.scope == scope) for r in person.roles)


def can_view(person: Person, case: Case) -> bool:
    return allowed(person, VIEW_CASE, case)


def may_supervise(person: Person, case: Case) -> bool:
    """Admins, and supervisors of the case's street office, may step in on any card."""
    return allowed(person, TRIAGE, case)


def may_handle(person: Person, case: Case) -> bool:
    """Whoever may take one of the card's actions: assigned chief, department, supervisor."""
    return any(allowed(person, action, case) for action in HANDLING)
