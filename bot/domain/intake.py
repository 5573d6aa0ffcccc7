"""Intake: a confirmed report becomes a case, routed, whatever channel it came by.

`submit_report` is the one way in for the chat (bot/telegram/handlers/resident.py), Open311
(bot/open311/submit.py) and any later channel. Each of them only translates: it builds the
`ReportDraft` from what it received, calls `submit_report` in its transaction, then has the
`Routed` announced through the `Announcer` the app was assembled with (`AppContext.announce`),
so that a channel needs to know nothing of Telegram to put a card in a chief's chat.

A report's way, in the caller's transaction: create the case (refused with a `CaseError` when
the report is not acceptable; an earlier submission of the same report is returned as it is),
then route it (`bot.domain.routing.pipeline`: classify, locate, join an open case it repeats or
dispatch it), then the rules that depend on who reported it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain import handling
from bot.domain.access import CHIEF, VOLUNTEER, has_role
from bot.domain.cases import CaseError, ReportDraft, create_case
from bot.domain.district import District
from bot.domain.lifecycle import Event
from bot.domain.routing.classify import Classifier
from bot.domain.routing.locate import Locator
from bot.domain.routing.pipeline import Routed, route_new_case
from storage.models import Case, CaseEvent, Person

__all__ = ["Announcer", "Desk", "Routed", "RoutingFailed", "submit_report"]


class Desk(Protocol):
    """What reports are sorted with: the district, its map and the classifier (an AppContext)."""

    @property
    def district(self) -> District: ...

    @property
    def locator(self) -> Locator: ...

    @property
    def classifier(self) -> Classifier: ...


class Announcer(Protocol):
    """Tells the people concerned what became of a report, in the caller's transaction: the
    reporter where it went, its chief, department or supervisors the card. Provided at assembly
    by the layer that reaches people (bot/app.py: the Telegram outbox)."""

    async def __call__(self, session: AsyncSession, routed: Routed, now: datetime) -> None: ...


class RoutingFailed(RuntimeError):
    """A created case could not be routed: a fault, not a refusal of the report. Never caught as
    a `CaseError`, so the transaction is rolled back rather than keeping a case nobody gets."""


async def submit_report(
    session: AsyncSession,
    report: ReportDraft,
    *,
    reporter: Person | None,
    now: datetime,
    desk: Desk,
    classifier: Classifier | None = None,
    priority: int = 0,
    origin: Mapping[str, object] | None = None,
) -> Routed:
    """Create, route and settle a report in the caller's transaction; what to announce.

    `reporter`: the person, when the channel knows one (the chat); None for an Open311 client,
    which is no person. `classifier` replaces the desk's (a category the channel chose);
    `priority` and `origin` (facts of the channel kept on the `submitted` event) apply to a new
    case only. Raises `CaseError` when the report is refused; nothing is then stored.
    """
    if report.reporter_id != (reporter.id if reporter is not None else None):
        raise ValueError("the draft's reporter_id is not the reporter's")
    if reporter is not None and report.source == "chat" and _on_patrol(reporter):
        # Lane chiefs and volunteers (小巷管家) on patrol report with the same flow.
        report = dataclasses.replace(report, source="patrol")
    district = desk.district
    case, created = await create_case(
        session, report, prefix=district.case_prefix, tz=district.tz, now=now
    )
    if not created:
        return Routed(case=case, created=False, reporter=reporter)
    case.priority = max(case.priority, priority)
    if origin:
        await _keep_origin(session, case, origin)
    try:
        routed = await route_new_case(
            session,
            case,
            district=district,
            locator=desk.locator,
            classifier=classifier or desk.classifier,
            now=now,
        )
        accepted = False
        if reporter is not None and _own_lane(routed, reporter):
            # A chief's report on his own lane: he is on it already.
            await handling.accept(session, case, reporter, now)
            accepted = True
    except CaseError as exc:
        raise RoutingFailed(f"case {case.number} could not be routed: {exc.code}") from exc
    return dataclasses.replace(routed, reporter=reporter, accepted=accepted)


def _on_patrol(person: Person) -> bool:
    return has_role(person, CHIEF) or has_role(person, VOLUNTEER)


def _own_lane(routed: Routed, reporter: Person) -> bool:
    return routed.decision is not None and routed.decision.chief_id == reporter.id


async def _keep_origin(session: AsyncSession, case: Case, origin: Mapping[str, object]) -> None:
    submitted = await session.scalar(
        select(CaseEvent).where(CaseEvent.case_id == case.id, CaseEvent.action == Event.SUBMITTED)
    )
    if submitted is not None:
        submitted.data = {**(submitted.data or {}), **origin}
