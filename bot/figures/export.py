"""Cases as CSV for supervisors: a row per case, a local time for each stage, no personal data.

UTF-8 with a byte-order mark, so that Excel opens the Chinese names correctly. Rows are built a
chunk at a time (one query for the cases, one for their events), so an export of a year streams
in constant memory. Left out on purpose: the reporter (name, username, Telegram id), the
description and address (residents write phone numbers and flat numbers into them), photos.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.domain.district import District
from bot.domain.lifecycle import FINAL, TRANSITIONS, Event
from bot.figures.kpi import Period
from bot.i18n import t
from storage.models import Case, CaseEvent

# Under MEDIA_DIR; files here are removed after a week (bot/jobs/housekeeping.py).
EXPORT_DIR = "exports"

BOM = "\ufeff".encode()
CHUNK = 1000
# The stages whose first time is exported, and those whose last time is (a fix that stands,
# the latest rating, the end).
FIRST = (Event.DISPATCHED, Event.ACCEPTED, Event.WHISTLED, Event.REPORTED_FOR_DUTY)
LAST = (Event.RESOLVED, Event.RATED)
ENDS = tuple(dict.fromkeys(t.event for t in TRANSITIONS.values() if t.to_state in FINAL))

COLUMNS = (
    Case.id,
    Case.number,
    Case.state,
    Case.category_id,
    Case.street_id,
    Case.lane_id,
    Case.department_id,
    Case.created_at,
    Case.response_due_at,
    Case.resolve_due_at,
)
# Column headers, in Chinese for the street office's spreadsheets.
HEADER = (
    "编号",
    "状态",
    "类别",
    "街道",
    "街巷",
    "部门",
    "上报时间",
    "响应时限",
    "办结时限",
    "派单时间",
    "接单时间",
    "吹哨时间",
    "报到时间",
    "办结时间",
    "评价星级",
    "评价时间",
    "结案时间",
    "重开次数",
    "重复于",
)


@dataclass
class _Stages:
    """What a case's events say about it, folded in timeline order."""

    times: dict[str, datetime] = field(default_factory=dict)
    stars: int | None = None
    reopened: int = 0

    def add(self, action: str, at: datetime, data: dict[str, Any] | None) -> None:
        if action in FIRST:
            self.times.setdefault(action, at)
        elif action in LAST:
            self.times[action] = at
            if action == Event.RATED and data:
                self.stars = data.get("stars")
        elif action in ENDS:
            self.times["end"] = at
        elif action == Event.REOPENED:
            self.reopened += 1


async def export_csv(
    session: AsyncSession,
    district: District,
    *,
    start: date,
    end: date,
    street_id: str | None,
    tz: ZoneInfo,
) -> bytes:
    """The CSV of the cases reported on local days `start`..`end`, whole."""
    parts = [
        chunk
        async for chunk in stream_csv(
            session, district, start=start, end=end, street_id=street_id, tz=tz
        )
    ]
    return b"".join(parts)


async def stream_csv(
    session: AsyncSession,
    district: District,
    *,
    start: date,
    end: date,
    street_id: str | None,
    tz: ZoneInfo,
    chunk: int = CHUNK,
) -> AsyncIterator[bytes]:
    """The same CSV in pieces: the BOM and header, then one piece per `chunk` cases."""
    yield BOM + _encode([HEADER])
    names = _Names(district)
    period = Period(start, end, tz)
    async for rows, stages in _chunks(session, period, street_id, chunk):
        yield _encode([_row(row, stages.get(row.id, _Stages()), names, tz) for row in rows])


async def _chunks(
    session: AsyncSession, period: Period, street_id: str | None, size: int
) -> AsyncIterator[tuple[Sequence[Any], dict[int, _Stages]]]:
    """Cases reported in the period, `size` at a time (keyset on id), with their events.

    Plain columns, not ORM objects: nothing piles up in the caller's session.
    """
    lo, hi = period.bounds()
    original = aliased(Case)
    query = (
        select(*COLUMNS, original.number.label("duplicate_of"))
        .outerjoin(original, original.id == Case.duplicate_of_id)
        .where(Case.created_at >= lo, Case.created_at < hi)
        .order_by(Case.id)
        .limit(size)
    )
    if street_id is not None:
        query = query.where(Case.street_id == street_id)
    last_id = 0
    while True:
        rows: Sequence[Any] = (await session.execute(query.where(Case.id > last_id))).all()
        if not rows:
            return
        ids = [row.id for row in rows]
        yield rows, await _stages(session, ids)
        last_id = ids[-1]


async def _stages(session: AsyncSession, case_ids: list[int]) -> dict[int, _Stages]:
    events = await session.execute(
        select(CaseEvent.case_id, CaseEvent.action, CaseEvent.created_at, CaseEvent.data)
        .where(
            CaseEvent.case_id.in_(case_ids),
            CaseEvent.action.in_((*FIRST, *LAST, *ENDS, Event.REOPENED)),
        )
        .order_by(CaseEvent.case_id, CaseEvent.id)
    )
    out: dict[int, _Stages] = {}
    for case_id, action, at, data in events:
        out.setdefault(case_id, _Stages()).add(action, at, data)
    return out


class _Names:
    """Chinese names of the district's things (ids when the district no longer knows them)."""

    def __init__(self, district: District) -> None:
        self.categories = {k: v.name_zh for k, v in district.categories.items()}
        self.streets = {k: v.name_zh for k, v in district.street_offices.items()}
        self.lanes = {k: v.name_zh for k, v in district.lanes.items()}
        self.departments = {k: v.name_zh for k, v in district.departments.items()}

    @staticmethod
    def of(names: dict[str, str], key: str | None) -> str:
        return "" if key is None else names.get(key, key)


def _row(case: Any, s: _Stages, n: _Names, tz: ZoneInfo) -> list[str]:
    def local(at: datetime | None) -> str:
        # isoformat is three times as fast as strftime, which matters over a year of cases.
        return "" if at is None else at.astimezone(tz).isoformat(" ", "seconds")[:19]

    return [
        case.number,
        t("zh", f"state.{case.state}"),
        n.of(n.categories, case.category_id),
        n.of(n.streets, case.street_id),
        n.of(n.lanes, case.lane_id),
        n.of(n.departments, case.department_id),
        local(case.created_at),
        local(case.response_due_at),
        local(case.resolve_due_at),
        *(local(s.times.get(stage)) for stage in FIRST),
        local(s.times.get(Event.RESOLVED)),
        "" if s.stars is None else str(s.stars),
        local(s.times.get(Event.RATED)),
        local(s.times.get("end")),
        str(s.reopened),
        case.duplicate_of or "",
    ]


def _encode(rows: Sequence[Sequence[str]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf)  # quotes what needs it; \r\n line ends, as Excel writes them
    writer.writerows([[_cell(v) for v in row] for row in rows])
    return buf.getvalue().encode("utf-8")


def _cell(value: str) -> str:
    """Text Excel would run as a formula gets a leading apostrophe (CSV injection)."""
    return f"'{value}" if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
