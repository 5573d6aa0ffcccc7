"""A new case's way through routing: classify, locate, deduplicate, dispatch, on its timeline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain import cases
from bot.domain.access import CHIEF
from bot.domain.district import DEFAULT_DEDUPE_RADIUS_M, District
from bot.domain.lifecycle import State
from bot.domain.routing.classify import Classifier
from bot.domain.routing.dedupe import find_duplicate
from bot.domain.routing.dispatch import DEPARTMENT, TRIAGE, Decision, decide
from bot.domain.routing.locate import LaneMatch, Locator, NoLane
from storage.models import Case, Person, Role


@dataclass(frozen=True)
class Routed:
    """What became of a report (`bot.domain.intake.submit_report`), and so what to announce.

    `created` False: the same report was submitted before (a second press, a client's retry);
    it was routed then, and nothing is announced again. Otherwise exactly one of `duplicate_of`
    (joined that open case) and `decision` (dispatched to a chief, a department or triage).
    `accepted`: the reporter is the lane's chief and took the case on at once.
    """

    case: Case
    duplicate_of: Case | None = None
    decision: Decision | None = None
    created: bool = True
    reporter: Person | None = None  # None: no person to tell (an Open311 client)
    accepted: bool = False

    @property
    def how(self) -> str:
        """earlier | duplicate | chief | department | triage"""
        if not self.created:
            return "earlier"
        if self.duplicate_of is not None:
            return "duplicate"
        assert self.decision is not None
        return self.decision.target


async def route_new_case(
    session: AsyncSession,
    case: Case,
    *,
    district: District,
    locator: Locator,
    classifier: Classifier,
    now: datetime,
) -> Routed:
    """Sort and dispatch a just-submitted case, in the caller's transaction."""
    found = classifier.classify(case.description)
    case.category_id = found.category_id
    case.category_confidence = found.confidence
    lane_info = _locate(case, locator)
    classification: dict[str, Any] = {
        "category": found.category_id,
        "confidence": round(found.confidence, 3),
        "method": found.method,
        "reasons": list(found.reasons),
    }
    category = district.categories.get(found.category_id) if found.category_id else None
    radius = category.dedupe_radius_m if category else DEFAULT_DEDUPE_RADIUS_M
    duplicate = await find_duplicate(session, case, radius_m=radius, now=now)
    if duplicate is not None:
        original, how = duplicate
        data: dict[str, object] = {"how": how, "classification": classification}
        cases.mark_duplicate(session, case, original, now, actor=None, data=data)
        return Routed(case=case, duplicate_of=original)
    decision = await route_case(
        session,
        district,
        case,
        now,
        reasons=(*lane_info["reasons"], *found.reasons),
        data={"lane": lane_info, "classification": classification},
    )
    return Routed(case=case, decision=decision)


async def route_case(
    session: AsyncSession,
    district: District,
    case: Case,
    now: datetime,
    *,
    reasons: tuple[str, ...],
    data: dict[str, Any] | None = None,
) -> Decision:
    """Send a case with its category and lane where they say (`decide`): the lane's chief, the
    category's department, or triage; the reasons and `data` go on its timeline.

    The one way a case is dispatched, for a new report and for a category chosen in triage.
    """
    chief_id = await lane_chief(session, case.lane_id) if case.lane_id else None
    decision = decide(
        district,
        now=now,
        category_id=case.category_id,
        lane_id=case.lane_id,
        street_id=case.street_id,
        chief_id=chief_id,
        reasons=reasons,
    )
    await cases.dispatch(
        session,
        case,
        now,
        actor=None,  # the system: routing places a case by the district's rules
        state=State.TRIAGE if decision.target == TRIAGE else State.DISPATCHED,
        assignee_id=decision.chief_id,
        department_id=decision.department_id if decision.target == DEPARTMENT else None,
        response_due_at=decision.response_due_at,
        resolve_due_at=decision.resolve_due_at,
        data={"target": decision.target, **(data or {}), "reasons": list(decision.reasons)},
    )
    return decision


def _locate(case: Case, locator: Locator) -> dict[str, Any]:
    """Confirm or find the case's lane; says how it was matched."""
    if case.lat is None or case.lon is None:
        if case.lane_id:
            return {"how": "street sign", "reasons": [f"lane {case.lane_id} from its QR code"]}
        return {"how": "none", "reasons": ["no location: triage"]}
    found = locator.locate(case.lat, case.lon)
    if isinstance(found, LaneMatch):
        case.lane_id, case.street_id = found.lane_id, found.street_id
        return {
            "how": found.how,
            "distance_m": round(found.distance_m, 1),
            "reasons": [f"lane {found.lane_id} ({found.how}, {found.distance_m:.0f} m)"],
        }
    if isinstance(found, NoLane):
        case.lane_id, case.street_id = None, found.street_id
        return {"how": "no lane", "reasons": [f"on no lane of street office {found.street_id}"]}
    return {"how": "outside", "reasons": ["outside the district"]}


async def lane_chief(session: AsyncSession, lane_id: str) -> int | None:
    """The lane's chief (the longest-serving, when there are several)."""
    return await session.scalar(
        select(Role.person_id)
        .where(Role.role == CHIEF, Role.scope == lane_id)
        .order_by(Role.created_at, Role.id)
        .limit(1)
    )
