"""Intake as a domain service: a report's way to a case, routed, without any chat.

`submit_report` is called here as a channel would, on each database backend, with a desk of
the test's own (no AppContext, no bot, no emulator): nothing may reach the outbox, since
telling people is the channel's announcer's job. That an Open311 report's card does reach the
chief through the app's announcer is tests/test_open311.py's
test_a_report_becomes_a_case_routed_like_one_from_the_chat; that Open311 imports nothing of
Telegram to do so, the import contract "Open311 imports no Telegram" (pyproject.toml).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import SAMPLE_DISTRICT_DIR
from bot.domain import intake
from bot.domain.cases import CaseError, ReportDraft
from bot.domain.district import District, load_district
from bot.domain.intake import Routed, RoutingFailed, submit_report
from bot.domain.people import grant
from bot.domain.routing.classify import Classification, Classifier
from bot.domain.routing.locate import Locator
from storage.db import make_engine, make_sessionmaker
from storage.models import Case, CaseEvent, OutboxMessage, Person
from storage.people import get_or_create_person

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
LANE = "CW-001"
CHIEF, RESIDENT, NEIGHBOUR = 4101, 4102, 4103
JUNK = "胡同口堆了旧家具，影响通行"  # a chief's category (堆物堆料) by its keywords


@dataclass(frozen=True)
class Desk:
    district: District
    locator: Locator
    classifier: Classifier


@pytest.fixture(scope="module")
def desk() -> Desk:
    district = load_district(SAMPLE_DISTRICT_DIR)
    classifier = Classifier(list(district.categories.values()), None, threshold=0.6)
    return Desk(district, Locator(district), classifier)


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(database_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def person(session: AsyncSession, telegram_id: int) -> Person:
    return await get_or_create_person(session, telegram_id, now=NOW, language="zh")


async def lane_chief(session: AsyncSession, desk: Desk) -> Person:
    chief, _ = await grant(
        session,
        desk.district,
        telegram_id=CHIEF,
        role="chief",
        scope=LANE,
        kind="lane",
        name="李街巷长",
        now=NOW,
    )
    return chief


def draft(
    desk: Desk, reporter: Person | None, key: str, text: str = JUNK, *, located: bool = True
) -> ReportDraft:
    lat, lon = desk.district.lanes[LANE].representative_point
    return ReportDraft(
        reporter_id=reporter.id if reporter is not None else None,
        idempotency_key=key,
        description=text,
        lat=lat if located else None,
        lon=lon if located else None,
        address=None if located else "Behind the old cinema near the market",
    )


async def actions(session: AsyncSession, case: Case) -> list[str]:
    rows = await session.scalars(
        select(CaseEvent.action).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id)
    )
    return list(rows.all())


async def outbox_size(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(OutboxMessage)) or 0)


async def test_a_report_on_a_lane_with_a_chief_is_dispatched_to_the_chief(
    sessions: async_sessionmaker[AsyncSession], desk: Desk
) -> None:
    async with sessions() as session, session.begin():
        chief = await lane_chief(session, desk)
        resident = await person(session, RESIDENT)
        queued = await outbox_size(session)  # granting a role may queue a new menu
        routed = await submit_report(
            session, draft(desk, resident, "r:1"), reporter=resident, now=NOW, desk=desk
        )
        case = routed.case
        assert routed.how == "chief" and routed.created and not routed.accepted
        assert routed.decision is not None and routed.decision.chief_id == chief.id
        assert routed.reporter is resident
        assert (case.state, case.assignee_id, case.lane_id, case.source) == (
            "dispatched",
            chief.id,
            LANE,
            "chat",
        )
        assert (case.category_id, case.number) == ("duiwuduiliao", "CY-20261123-0001")
        assert await actions(session, case) == ["submitted", "dispatched"]
        assert await outbox_size(session) == queued  # telling is the channel's announcer's


async def test_a_chiefs_report_on_his_own_lane_is_accepted_at_once(
    sessions: async_sessionmaker[AsyncSession], desk: Desk
) -> None:
    async with sessions() as session, session.begin():
        chief = await lane_chief(session, desk)
        routed = await submit_report(
            session, draft(desk, chief, "c:1"), reporter=chief, now=NOW, desk=desk
        )
        case = routed.case
        assert routed.how == "chief" and routed.accepted
        assert (case.state, case.assignee_id, case.source) == ("accepted", chief.id, "patrol")
        assert await actions(session, case) == ["submitted", "dispatched", "accepted"]


async def test_without_a_reporter_the_chief_is_dispatched_the_case_and_nobody_accepts_it(
    sessions: async_sessionmaker[AsyncSession], desk: Desk
) -> None:
    """An Open311 client is no person: its report goes to the chief like any other."""
    async with sessions() as session, session.begin():
        chief = await lane_chief(session, desk)
        report = draft(desk, None, "o311:1")
        report.source = "open311"
        routed = await submit_report(
            session,
            report,
            reporter=None,
            now=NOW,
            desk=desk,
            priority=1,
            origin={"open311_client": 7},
        )
        case = routed.case
        assert (routed.how, routed.accepted, routed.reporter) == ("chief", False, None)
        assert (case.state, case.assignee_id, case.source, case.priority) == (
            "dispatched",
            chief.id,
            "open311",
            1,
        )
        submitted = await session.scalar(
            select(CaseEvent).where(CaseEvent.case_id == case.id, CaseEvent.action == "submitted")
        )
        assert submitted is not None and submitted.data == {
            "photos": 0,
            "source": "open311",
            "open311_client": 7,
        }


async def test_a_report_the_classifier_is_unsure_of_goes_to_triage(
    sessions: async_sessionmaker[AsyncSession], desk: Desk
) -> None:
    async with sessions() as session, session.begin():
        await lane_chief(session, desk)
        resident = await person(session, RESIDENT)
        unsure = "Something is not right here, please look"
        routed = await submit_report(
            session, draft(desk, resident, "r:1", unsure), reporter=resident, now=NOW, desk=desk
        )
        case = routed.case
        assert routed.how == "triage" and not routed.accepted
        assert (case.state, case.category_id, case.assignee_id) == ("triage", None, None)
        assert await actions(session, case) == ["submitted", "triaged"]


async def test_a_category_the_channel_chose_replaces_the_classifiers_guess(
    sessions: async_sessionmaker[AsyncSession], desk: Desk
) -> None:
    class Chosen(Classifier):
        def __init__(self) -> None:
            pass

        def classify(self, text: str) -> Classification:
            return Classification("jinggai", 1.0, "open311", ("chosen",))

    async with sessions() as session, session.begin():
        routed = await submit_report(
            session,
            draft(desk, None, "o311:2"),
            reporter=None,
            now=NOW,
            desk=desk,
            classifier=Chosen(),
        )
        assert routed.how == "department"
        assert (routed.case.category_id, routed.case.department_id) == ("jinggai", "shizheng")


async def test_a_second_report_nearby_is_linked_to_the_open_case(
    sessions: async_sessionmaker[AsyncSession], desk: Desk
) -> None:
    async with sessions() as session, session.begin():
        await lane_chief(session, desk)
        first, second = await person(session, RESIDENT), await person(session, NEIGHBOUR)
        original = await submit_report(
            session, draft(desk, first, "r:1"), reporter=first, now=NOW, desk=desk
        )
        later = NOW + timedelta(minutes=5)
        repeat = await submit_report(
            session, draft(desk, second, "n:1"), reporter=second, now=later, desk=desk
        )
        assert repeat.how == "duplicate" and repeat.decision is None
        assert repeat.duplicate_of is original.case
        assert (repeat.case.state, repeat.case.duplicate_of_id) == ("duplicate", original.case.id)
        assert await actions(session, repeat.case) == ["submitted", "duplicate"]
        assert await actions(session, original.case) == ["submitted", "dispatched", "plus_one"]


async def test_the_same_report_again_is_the_same_case_and_nothing_to_announce(
    sessions: async_sessionmaker[AsyncSession], desk: Desk
) -> None:
    async with sessions() as session, session.begin():
        await lane_chief(session, desk)
        resident = await person(session, RESIDENT)
        first = await submit_report(
            session, draft(desk, resident, "r:1"), reporter=resident, now=NOW, desk=desk
        )
        again = await submit_report(
            session, draft(desk, resident, "r:1"), reporter=resident, now=NOW, desk=desk
        )
        assert again == Routed(case=first.case, created=False, reporter=resident)
        assert again.how == "earlier"
        assert await actions(session, first.case) == ["submitted", "dispatched"]


async def test_a_refused_report_stores_nothing(
    sessions: async_sessionmaker[AsyncSession], desk: Desk
) -> None:
    async with sessions() as session, session.begin():
        resident = await person(session, RESIDENT)
        with pytest.raises(CaseError) as refused:
            await submit_report(
                session, draft(desk, resident, "r:1", "  "), reporter=resident, now=NOW, desk=desk
            )
        assert refused.value.code == "empty_report"
        assert await session.scalar(select(func.count()).select_from(Case)) == 0


async def test_a_case_that_cannot_be_routed_is_a_fault_not_a_refusal(
    sessions: async_sessionmaker[AsyncSession], desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A channel turns a CaseError into "your report was refused" and commits: a case created
    but never routed would then be kept with nobody to act on it."""

    async def cannot_route(*args: object, **kwargs: object) -> Routed:
        raise CaseError("not_dispatchable", state="submitted")

    monkeypatch.setattr(intake, "route_new_case", cannot_route)
    with pytest.raises(RoutingFailed) as failed:
        async with sessions() as session, session.begin():
            resident = await person(session, RESIDENT)
            await submit_report(
                session, draft(desk, resident, "r:1"), reporter=resident, now=NOW, desk=desk
            )
    assert not isinstance(failed.value, CaseError)
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Case)) == 0


async def test_the_reporter_must_be_the_drafts(
    sessions: async_sessionmaker[AsyncSession], desk: Desk
) -> None:
    async with sessions() as session, session.begin():
        resident, neighbour = await person(session, RESIDENT), await person(session, NEIGHBOUR)
        with pytest.raises(ValueError):
            await submit_report(
                session, draft(desk, resident, "r:1"), reporter=neighbour, now=NOW, desk=desk
            )
