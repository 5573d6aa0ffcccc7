"""Dispatch and deduplication rules: who gets a case, by when, and when a report repeats one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import SAMPLE_DISTRICT_DIR
from bot.domain.district import District, load_district
from bot.domain.routing.dedupe import find_duplicate
from bot.domain.routing.dispatch import CHIEF, DEPARTMENT, TRIAGE, decide
from storage.db import make_engine, make_sessionmaker
from storage.models import Case, Photo
from tests.harness import Harness, grant, noise_jpeg, plain_text

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def district() -> District:
    return load_district(SAMPLE_DISTRICT_DIR)


def test_a_chief_category_on_a_lane_with_a_chief_goes_to_the_chief(district: District) -> None:
    d = decide(
        district,
        now=NOW,
        category_id="duiwuduiliao",
        lane_id="CW-001",
        street_id="chaowai",
        chief_id=7,
    )
    assert (d.target, d.chief_id, d.department_id) == (CHIEF, 7, None)
    category = district.categories["duiwuduiliao"]
    assert d.response_due_at == NOW + timedelta(hours=category.response_hours)
    assert d.resolve_due_at == NOW + timedelta(hours=category.resolve_hours)
    assert any("chief of lane CW-001" in r for r in d.reasons)


def test_a_department_category_goes_to_the_department_wherever_it_is(district: District) -> None:
    for lane, chief in (("CW-001", 7), (None, None)):
        d = decide(
            district,
            now=NOW,
            category_id="jinggai",
            lane_id=lane,
            street_id="chaowai",
            chief_id=chief,
        )
        assert (d.target, d.department_id) == (DEPARTMENT, "shizheng")
        assert d.response_due_at == NOW + timedelta(hours=2)  # a manhole is a hazard


@pytest.mark.parametrize(
    ("category", "lane", "chief", "why"),
    [
        (None, "CW-001", 7, "category unknown"),
        ("duiwuduiliao", "CW-001", None, "has no chief"),
        ("duiwuduiliao", None, None, "no lane"),
    ],
)
def test_what_cannot_be_dispatched_goes_to_the_street_offices_triage(
    district: District, category: str | None, lane: str | None, chief: int | None, why: str
) -> None:
    d = decide(
        district, now=NOW, category_id=category, lane_id=lane, street_id="chaowai", chief_id=chief
    )
    assert d.target == TRIAGE and d.street_id == "chaowai"
    assert any(why in r for r in d.reasons)


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(database_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def add_case(
    session: AsyncSession,
    n: int,
    *,
    category: str = "duiwuduiliao",
    lat: float = 39.92361,
    lon: float = 116.44325,
    state: str = "dispatched",
    created: datetime = NOW,
    sha: str | None = None,
    phash: str = "0000000000000000",
) -> Case:
    case = Case(
        number=f"CY-20261123-{n:04d}",
        state=state,
        source="chat",
        category_id=category,
        street_id="chaowai",
        lat=lat,
        lon=lon,
        description="x",
        priority=0,
        created_at=created,
        updated_at=created,
        photos=[],
    )
    session.add(case)
    await session.flush()
    session.add(
        Photo(
            case_id=case.id,
            kind="before",
            path=f"p/{n}.jpg",
            sha256=sha or f"{n:064d}",
            phash=phash,
            size=1,
            width=1,
            height=1,
            created_at=created,
        )
    )
    await session.flush()
    await session.refresh(case, ["photos"])
    return case


async def test_deduplication(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        original = await add_case(session, 1, phash="ffff0000ffff0000")
        # Same kind, 30 m away: a repeat of the open case.
        near = await add_case(session, 2, lat=39.92361 + 30 / 111_320, phash="0f0f0f0f0f0f0f0f")
        found = await find_duplicate(session, near, radius_m=50, now=NOW)
        assert found is not None and found[0].id == original.id
        assert "within 30 m" in found[1]
        # 150 m away, another kind, or the same place but the original closed or stale: new.
        far = await add_case(session, 3, lat=39.92361 + 150 / 111_320, phash="00ff00ff00ff00ff")
        assert await find_duplicate(session, far, radius_m=50, now=NOW) is None
        other = await add_case(session, 4, category="xiaoguanggao", phash="f0f0f0f0f0f0f0f0")
        assert await find_duplicate(session, other, radius_m=50, now=NOW) is None
        original.state = "closed"
        near2 = await add_case(session, 5, lat=39.92362, phash="0ff00ff00ff00ff0")
        found = await find_duplicate(session, near2, radius_m=50, now=NOW)
        assert found is not None and found[0].id == near.id  # the closed one is not joined
        # The same photo file, anywhere and of any kind, is the same problem.
        copy = await add_case(
            session,
            6,
            category="xiaoguanggao",
            lat=39.95,
            lon=116.47,
            sha=f"{4:064d}",
            phash="1234123412341234",
        )
        found = await find_duplicate(session, copy, radius_m=50, now=NOW)
        assert found is not None and found[0].id == other.id and found[1] == "same photo file"
        # A near-identical photo (a few bits of the perceptual hash differ): also the same.
        similar = await add_case(
            session, 7, category="lvhua", lat=39.90, lon=116.40, phash="f0f0f0f0f0f0f0f1"
        )
        found = await find_duplicate(session, similar, radius_m=50, now=NOW)
        assert found is not None and found[1] == "near-identical photo"
        # Older than 14 days: not a repeat any more.
        stale_now = NOW + timedelta(days=15)
        late = await add_case(session, 8, phash="8888888888888888", created=stale_now)
        assert await find_duplicate(session, late, radius_m=50, now=stale_now) is None


async def test_a_second_report_of_the_same_problem_joins_the_first(h: Harness) -> None:
    lane = h.district.lanes["CW-001"]
    await grant(h, 2001, "chief", "CW-001", "lane")
    chief = h.emulator.user(2001, first_name="Chief", language_code="en")
    await chief.send_command("/help")
    await chief.expect(contains="How to report")
    first, second = (
        h.emulator.user(1001 + i, first_name=f"R{i}", language_code="en") for i in range(2)
    )
    for i, resident in enumerate((first, second)):
        await resident.send_photo(noise_jpeg(i), caption="Junk piled up blocking the path")
        await resident.send_location(*lane.representative_point)
        await resident.expect(contains="Please check your report")
        await resident.press("✅ Confirm")
        await resident.expect(contains="Your case number is")
    [original, repeat] = await h.cases()
    assert (original.state, repeat.state, repeat.duplicate_of_id) == (
        "dispatched",
        "duplicate",
        original.id,
    )
    await second.expect(
        contains=plain_text(
            "en", "routed.duplicate", number=repeat.number, original=original.number, reports=2
        )
    )
    await chief.expect(contains=f"Case {original.number} was reported again (2 reports in all)")
    assert sum((m.text or "").startswith("📋") for m in chief.inbox()) == 1  # no second card
    # The second reporter follows the original: they hear when it is accepted.
    await chief.press("✅ Accept")
    await second.expect(contains=f"Case {original.number} was accepted")
