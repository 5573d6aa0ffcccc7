"""A week of cases on 朝外街道, written straight into the database, with known figures.

`chaowai_week` builds the cases the KPI, digest and export tests share; the expected figures
for Sunday 22 November 2026 (local) are worked out by hand in tests/test_kpi.py.
Times are local (Asia/Shanghai, UTC+8); `now` is Monday 23 November, 08:00 local.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Case, CaseEvent, Person

TZ = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 11, 22)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A local time in November 2026, as aware UTC."""
    return datetime(2026, 11, day, hour, minute, tzinfo=TZ).astimezone(UTC)


NOW = at(23, 8)

Step = tuple[str, datetime, dict[str, Any] | None]
BY_REPORTER = ("submitted", "rated", "reopened", "withdrawn")


@dataclass
class Casebook:
    """Inserts people, cases and their timelines as the bot would have left them."""

    session: AsyncSession
    cases: dict[str, Case] = field(default_factory=dict)
    _serials: dict[date, int] = field(default_factory=lambda: defaultdict(int))

    async def person(self, telegram_id: int, name: str, username: str) -> Person:
        person = Person(telegram_id=telegram_id, name=name, username=username, created_at=NOW)
        self.session.add(person)
        await self.session.flush()
        return person

    async def case(
        self,
        key: str,
        created: datetime,
        *,
        state: str,
        lane: str | None,
        street: str = "chaowai",
        category: str = "huanjingweisheng",
        department: str | None = None,
        assignee: int | None = None,
        reporter: int | None = None,
        triaged: datetime | None = None,
        dispatched: datetime | None = None,
        routed: bool = True,
        response_h: float = 24,
        resolve_h: float = 168,
        lat: float | None = None,
        lon: float | None = None,
        steps: list[Step] | None = None,
    ) -> Case:
        """A case submitted at `created`, (auto-)dispatched then unless told otherwise."""
        local_day = created.astimezone(TZ).date()
        self._serials[local_day] += 1
        handed = (dispatched or (None if triaged else created)) if routed else None
        case = Case(
            number=f"CY-{local_day:%Y%m%d}-{self._serials[local_day]:04d}",
            state=state,
            category_id=category,
            lane_id=lane,
            street_id=street,
            department_id=department,
            assignee_id=assignee,
            reporter_id=reporter,
            lat=lat,
            lon=lon,
            description=f"{key}: 垃圾满溢，联系电话 13800000000",
            address="朝外大街 1 号院 3 单元",
            created_at=created,
            updated_at=created,
            response_due_at=handed + timedelta(hours=response_h) if handed else None,
            resolve_due_at=handed + timedelta(hours=resolve_h) if handed else None,
        )
        self.session.add(case)
        await self.session.flush()
        timeline: list[Step] = [("submitted", created, {"photos": 1, "source": "chat"})]
        if triaged is not None:
            timeline.append(("triaged", triaged, {"target": "triage"}))
        if handed is not None:
            target = "department" if department and not triaged else "chief"
            timeline.append(("dispatched", handed, {"target": target}))
        timeline += steps or []
        for action, when, data in timeline:
            self.session.add(
                CaseEvent(
                    case_id=case.id,
                    actor_id=reporter if action in BY_REPORTER else assignee,
                    action=action,
                    data=data,
                    created_at=when,
                )
            )
            await self.session.flush()  # ids follow the timeline's order
            if action in ("closed", "rejected", "withdrawn", "duplicate"):
                case.closed_at = when
        self.cases[key] = case
        return case


def ok(within: bool = True) -> dict[str, Any]:
    return {"within_limit": within}


async def chaowai_week(session: AsyncSession) -> Casebook:
    """The cases A–N on 朝外 and M on 三里屯 (see the table in tests/test_kpi.py)."""
    book = Casebook(session)
    resident = await book.person(9001, "王小明", "wangxm")
    chief = await book.person(9002, "李街长", "li_chief")
    r, c = resident.id, chief.id
    await book.case(
        "A", at(22, 9), state="closed", lane="CW-001", assignee=c, reporter=r,
        lat=39.92300, lon=116.43400,  # 朝阳门外大街: the hotspot
        steps=[
            ("accepted", at(22, 10), ok()),
            ("resolved", at(22, 15), ok()),
            ("rated", at(22, 16), {"stars": 5}),
            ("closed", at(22, 16), {"rated": True}),
        ],
    )  # fmt: skip
    await book.case(
        "B", at(21, 23, 50), state="closed", lane="CW-001", assignee=c, reporter=r,
        lat=39.92320, lon=116.43390,
        steps=[
            ("accepted", at(22, 0, 10), ok()),
            ("resolved", at(22, 12), ok()),
            ("rated", at(22, 13), {"stars": 4}),
            ("closed", at(22, 13), {"rated": True}),
        ],
    )  # fmt: skip
    await book.case(
        "C", at(20, 10), state="resolved", lane="CW-002", reporter=r,
        lat=39.9210, lon=116.4400,
        steps=[
            ("accepted", at(20, 11), ok()),
            ("resolved", at(22, 9), ok()),
            ("rated", at(22, 10), {"stars": 2}),
            ("reopened", at(22, 10), None),
            ("resolved", at(22, 18), ok()),
        ],
    )  # fmt: skip
    await book.case(
        "D", at(18, 10), state="closed", lane="CW-002", reporter=r,
        steps=[
            ("accepted", at(18, 11), ok()),
            ("resolved", at(19, 10), ok()),
            ("closed", at(22, 10), {"rated": False}),
        ],
    )  # fmt: skip
    await book.case(
        "E", at(22, 11), state="rejected", lane="CW-003", reporter=r,
        lat=39.92305, lon=116.43405,
        steps=[("rejected", at(22, 12), None)],
    )  # fmt: skip
    a = book.cases["A"]
    await book.case(
        "F", at(22, 14), state="duplicate", lane="CW-001", reporter=r, routed=False,
        lat=39.92302, lon=116.43402,
        steps=[("duplicate", at(22, 14), {"how": "nearby"})],
    )  # fmt: skip
    book.cases["F"].duplicate_of_id = a.id
    session.add(
        CaseEvent(case_id=a.id, actor_id=r, action="plus_one", data=None, created_at=at(22, 14))
    )
    await book.case("G", at(20, 8), state="dispatched", lane="CW-003", reporter=r)
    await book.case(
        "H", at(21, 9), state="accepted", lane="CW-004", reporter=r,
        steps=[("accepted", at(22, 10), ok(False))],
    )  # fmt: skip
    await book.case(
        "I", at(14, 10), state="accepted", lane="CW-004", reporter=r,
        triaged=at(14, 10), dispatched=at(14, 11),
        steps=[("accepted", at(14, 12), ok())],
    )  # fmt: skip
    await book.case(
        "J", at(22, 7), state="resolved", lane="CW-005", department="huanwei", reporter=r,
        triaged=at(22, 7), dispatched=at(22, 8), response_h=2, resolve_h=12,
        steps=[
            ("accepted", at(22, 9), ok()),
            ("resolved", at(22, 21), ok(False)),
        ],
    )  # fmt: skip
    await book.case(
        "K", at(22, 10), state="accepted", lane="CW-005", department="chengguan", reporter=r,
        steps=[
            ("whistled", at(22, 10, 30), {"department": "chengguan"}),
            ("reported_for_duty", at(22, 11), {"department": "chengguan", "response_s": 1800}),
        ],
    )  # fmt: skip
    await book.case(
        "L", at(22, 16), state="withdrawn", lane="CW-001", assignee=c, reporter=r,
        lat=39.92301, lon=116.43401,
        steps=[("withdrawn", at(22, 17), None)],
    )  # fmt: skip
    await book.case(
        "M", at(22, 9), state="accepted", lane="SLT-001", street="sanlitun", reporter=r,
        steps=[("accepted", at(22, 9, 30), ok())],
    )  # fmt: skip
    await book.case(
        "N", at(21, 12), state="withdrawn", lane="CW-003", reporter=r,
        steps=[("withdrawn", at(22, 11), None)],
    )  # fmt: skip
    await session.flush()
    return book
