"""A case as plain data: for `case show --json`, exports and other channels."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from storage.cases import timeline
from storage.models import Case


async def case_as_dict(session: AsyncSession, case: Case, tz: ZoneInfo) -> dict[str, Any]:
    """Number, state, category, lane, assignee, rating and the events; no personal data."""
    events = await timeline(session, case.id)
    return {
        "number": case.number,
        "state": case.state,
        "category": case.category_id,
        "category_confidence": case.category_confidence,
        "lane": case.lane_id,
        "street": case.street_id,
        "department": case.department_id,
        "assignee": case.assignee_id,
        "priority": case.priority,
        "rating": case.rating,
        "location": None if case.lat is None else {"lat": case.lat, "lon": case.lon},
        "address": case.address,
        "description": case.description,
        "photos": [{"path": p.path, "kind": p.kind, "sha256": p.sha256} for p in case.photos],
        "duplicate_of": case.duplicate_of_id,
        "created_at": case.created_at.astimezone(tz).isoformat(),
        "response_due_at": _iso(case.response_due_at, tz),
        "resolve_due_at": _iso(case.resolve_due_at, tz),
        "closed_at": _iso(case.closed_at, tz),
        "events": [
            {
                "at": e.created_at.astimezone(tz).isoformat(),
                "action": e.action,
                "actor": e.actor_id,
                "note": e.note,
                "data": e.data,
            }
            for e in events
        ],
    }


def _iso(value: Any, tz: ZoneInfo) -> str | None:
    return None if value is None else value.astimezone(tz).isoformat()
