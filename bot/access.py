"""Who may see a case: the reporter, and people whose role covers its lane, street or department."""

from __future__ import annotations

from storage.models import Case, Person

ADMIN, SUPERVISOR, CHIEF, OFFICER, VOLUNTEER = (
    "admin",
    "supervisor",
    "chief",
    "officer",
    "volunteer",
)
ROLES = (ADMIN, SUPERVISOR, CHIEF, OFFICER, VOLUNTEER)


def has_role(person: Person, role: str, scope: str | None = None) -> bool:
    return any(r.role == role and (scope is None or r.scope == scope) for r in person.roles)


def can_view(person: Person, case: Case) -> bool:
    if case.reporter_id == person.id or has_role(person, ADMIN):
        return True
    return any(
        (r.role == SUPERVISOR and r.scope == case.street_id)
        or (r.role == CHIEF and r.scope == case.lane_id and case.lane_id is not None)
        or (r.role == OFFICER and r.scope == case.department_id and case.department_id is not None)
        for r in person.roles
    )


def may_supervise(person: Person, case: Case) -> bool:
    """Admins, and supervisors of the case's street office, may step in on any card."""
    return has_role(person, ADMIN) or (
        case.street_id is not None and has_role(person, SUPERVISOR, case.street_id)
    )


def may_handle(person: Person, case: Case) -> bool:
    """The current assignee: the lane chief, an officer of the department, or a supervisor."""
    if may_supervise(person, case):
        return True
    if case.assignee_id is not None and case.assignee_id == person.id:
        return True
    return case.department_id is not None and has_role(person, OFFICER, case.department_id)
