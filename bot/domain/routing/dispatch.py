"""Dispatch: lane + category → the lane chief, the category's department, or triage.

A pure decision from plain values, with the reasons that go onto the case's timeline.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from bot.domain.district import Category, District

CHIEF = "chief"
DEPARTMENT = "department"
TRIAGE = "triage"


@dataclass(frozen=True)
class Decision:
    """Who gets the case, and by when it must be answered and fixed."""

    target: str  # chief | department | triage
    street_id: str | None
    lane_id: str | None
    category_id: str | None
    department_id: str | None = None
    chief_id: int | None = None  # the person, when target is chief
    response_due_at: datetime | None = None
    resolve_due_at: datetime | None = None
    reasons: tuple[str, ...] = field(default_factory=tuple)


def decide(
    district: District,
    *,
    now: datetime,
    category_id: str | None,
    lane_id: str | None,
    street_id: str | None,
    chief_id: int | None,
    reasons: tuple[str, ...] = (),
) -> Decision:
    """Where a case goes. `chief_id` is the lane's chief, if the lane has one."""
    category = district.categories.get(category_id) if category_id else None
    why = list(reasons)
    if category is None:
        why.append("category unknown: triage")
        return Decision(TRIAGE, street_id, lane_id, None, reasons=tuple(why))
    response_due, resolve_due = due_times(category, now)
    base = Decision(
        TRIAGE,
        street_id,
        lane_id,
        category.id,
        response_due_at=response_due,
        resolve_due_at=resolve_due,
    )
    if category.department_id is not None:
        why.append(f"category {category.id} is handled by department {category.department_id}")
        return replace(
            base, target=DEPARTMENT, department_id=category.department_id, reasons=tuple(why)
        )
    if lane_id is None:
        why.append("no lane: triage of the street office")
    elif chief_id is None:
        why.append(f"lane {lane_id} has no chief: triage of the street office")
    else:
        why.append(f"category {category.id} is handled by the chief of lane {lane_id}")
        return replace(base, target=CHIEF, chief_id=chief_id, reasons=tuple(why))
    return replace(base, reasons=tuple(why))


def due_times(category: Category, start: datetime) -> tuple[datetime, datetime]:
    return (
        start + timedelta(hours=category.response_hours),
        start + timedelta(hours=category.resolve_hours),
    )
