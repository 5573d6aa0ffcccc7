"""Who may do what: one table of role × permission × scope, checked by `allowed` and nowhere else.

Every person is a resident; a role adds rows. Each row names the scope within which the role
holds the permission: `OWN` (cases the person reported), `ASSIGNED` (cases assigned to the
person), `LANE`, `DEPARTMENT`, `STREET` (cases, or a scope, matching the role's own scope) or
`ALL`. A volunteer (小巷管家) reports like any resident and has no rows of their own. The
system (the bot itself, acting for no person: `person` None) holds `SYSTEM` and nothing else.
Case *states* (may this case be accepted now?) are the lifecycle's business: see
bot/domain/lifecycle.py, whose every transition calls `allowed` for its actor.
"""

from __future__ import annotations

from enum import StrEnum
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


class Permission(StrEnum):
    """A row of the table: the right to do one thing (most are named after the lifecycle's
    action they allow, bot/domain/lifecycle.py)."""

    # On a case.
    VIEW_CASE = "view_case"
    ACCEPT = "accept"
    RESOLVE = "resolve"
    WHISTLE = "whistle"
    REPORT_FOR_DUTY = "report_for_duty"
    TRANSFER = "transfer"
    REJECT = "reject"
    TRIAGE = "triage"
    RATE = "rate"
    WITHDRAW = "withdraw"
    ADD_NOTE = "add_note"
    # On a scope (a street office) or on the whole district.
    EXPORT = "export"
    DIGEST = "digest"
    MANAGE_PEOPLE = "manage_people"
    BAN = "ban"
    # The system's own steps, given to no person: route a new case (dispatch it, send it to
    # triage, join a repeat to the case it repeats) and close a fixed case once it is rated
    # or its rating window has passed.
    ROUTE = "route"
    CLOSE = "close"


# The assignees of a case (see the glossary in bot/domain/lifecycle.py) and their scope.
_ASSIGNEES = {CHIEF: ASSIGNED, OFFICER: DEPARTMENT, SUPERVISOR: STREET, ADMIN: ALL}

# The table of people's permissions. A role missing from a row does not hold it at all.
TABLE: Final[dict[Permission, dict[str, str]]] = {
    Permission.VIEW_CASE: {
        RESIDENT: OWN,
        CHIEF: LANE,
        OFFICER: DEPARTMENT,
        SUPERVISOR: STREET,
        ADMIN: ALL,
    },
    Permission.ACCEPT: _ASSIGNEES,
    Permission.RESOLVE: _ASSIGNEES,
    Permission.TRANSFER: _ASSIGNEES,
    Permission.REJECT: _ASSIGNEES,
    # The chief blows the whistle; the department answers it: neither does the other's part.
    Permission.WHISTLE: {CHIEF: ASSIGNED, SUPERVISOR: STREET, ADMIN: ALL},
    Permission.REPORT_FOR_DUTY: {OFFICER: DEPARTMENT, SUPERVISOR: STREET, ADMIN: ALL},
    Permission.TRIAGE: {SUPERVISOR: STREET, ADMIN: ALL},
    # Only the reporter speaks for the report: nobody rates, withdraws or adds to it for them.
    Permission.RATE: {RESIDENT: OWN},
    Permission.WITHDRAW: {RESIDENT: OWN},
    Permission.ADD_NOTE: {RESIDENT: OWN},
    Permission.EXPORT: {SUPERVISOR: STREET, ADMIN: ALL},
    Permission.DIGEST: {SUPERVISOR: STREET, ADMIN: ALL},
    Permission.MANAGE_PEOPLE: {ADMIN: ALL},
    Permission.BAN: {ADMIN: ALL},
}
# What the system holds (the routing of a new case, the deadline sweep), and nobody else.
SYSTEM: Final = frozenset({Permission.ROUTE, Permission.CLOSE})
# What the assignees of a case do on its card: whoever holds one of them acts on the case.
ASSIGNEE_PERMISSIONS: Final = (
    Permission.ACCEPT,
    Permission.RESOLVE,
    Permission.WHISTLE,
    Permission.REPORT_FOR_DUTY,
    Permission.TRANSFER,
    Permission.REJECT,
)


def allowed(
    person: Person | None,
    permission: Permission,
    case: Case | None = None,
    scope: str | None = None,
) -> bool:
    """May `person` (None: the system) use `permission` on `case` (or within `scope`, a street
    office id)?"""
    if permission not in TABLE and permission not in SYSTEM:
        raise ValueError(
            f"unknown action {permission!r}: no such permission; see access.Permission"
        )
    if person is None:
        return permission in SYSTEM
    row = TABLE.get(permission, {})
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
    return allowed(person, Permission.VIEW_CASE, case)


def may_supervise(person: Person, case: Case) -> bool:
    """Admins, and supervisors of the case's street office, may step in on any card."""
    return allowed(person, Permission.TRIAGE, case)


def may_act(person: Person, case: Case) -> bool:
    """Is `person` one of the case's assignees: its chief, its department, a supervisor?"""
    return any(allowed(person, p, case) for p in ASSIGNEE_PERMISSIONS)
