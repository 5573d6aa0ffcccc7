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
