"""Texts built from domain objects for one reader, in their language (Telegram HTML)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.domain.district import District
from bot.domain.lifecycle import current_deadline
from bot.figures.names import category_name, local_time
from bot.i18n import Safe, t
from storage.models import Case, CaseEvent

SNIPPET = 60


def place(lang: str, district: District, data: Mapping[str, Any]) -> str:
    """Where a draft or case is, as a reader would say it.

    What comes from the catalogue is Telegram HTML already (its fields escaped) and is marked
    `Safe`, so that a text it goes into does not escape it a second time; a bare name is plain
    text, escaped there once.
    """
    lane_id, street_id = data.get("lane_id"), data.get("street_id")
    lat, lon, address = data.get("lat"), data.get("lon"), data.get("address")
    if lane_id and lane_id in district.lanes:
        where = district.name(district.lanes[lane_id], lang)
    elif street_id and street_id in district.street_offices:
        where = district.name(district.street_offices[street_id], lang)
    else:
        where = ""
    if lat is not None and lon is not None:
        coords = f"{lat:.5f}, {lon:.5f}"
        return Safe(t(lang, "place.lane_at", lane=where, coords=coords)) if where else coords
    if address:
        return Safe(t(lang, "place.address", address=address))
    return where or Safe(t(lang, "place.unknown"))


def summary(lang: str, district: District, data: Mapping[str, Any]) -> str:
    return t(
        lang,
        "report.summary",
        photos=len(data.get("photos", [])),
        description=data.get("description", ""),
        place=place(lang, district, data),
    )


def case_line(lang: str, case: Case, tz: ZoneInfo) -> str:
    text = (
        case.description if len(case.description) <= SNIPPET else case.description[:SNIPPET] + "…"
    )
    return t(
        lang,
        "case.line",
        number=case.number,
        state=t(lang, f"state.{case.state}"),
        date=local_time(case.created_at, tz),
        description=text,
    )


def case_detail(
    lang: str, district: District, case: Case, events: Sequence[CaseEvent], tz: ZoneInfo
) -> str:
    data = {
        "lane_id": case.lane_id,
        "street_id": case.street_id,
        "lat": case.lat,
        "lon": case.lon,
        "address": case.address,
    }
    lines = [
        t(
            lang,
            "case.detail",
            number=case.number,
            state=t(lang, f"state.{case.state}"),
            description=case.description,
            place=place(lang, district, data),
            photos=len(case.photos),
        )
    ]
    for event in events:
        note = Safe(t(lang, "case.event_note", note=event.note) if event.note else "")
        lines.append(
            t(
                lang,
                "case.event",
                time=local_time(event.created_at, tz),
                action=t(lang, f"event.{event.action}"),
                note=note,
            )
        )
    return "\n".join(lines)


def card(lang: str, district: District, case: Case, tz: ZoneInfo, *, reports: int = 1) -> str:
    """The assignment card: what, where, by when (no personal data of the reporter)."""
    data = {
        "lane_id": case.lane_id,
        "street_id": case.street_id,
        "lat": case.lat,
        "lon": case.lon,
        "address": case.address,
    }
    return t(
        lang,
        "card.text",
        number=case.number,
        category=category_name(lang, district, case.category_id),
        place=place(lang, district, data),
        description=case.description,
        respond_by=local_time(case.response_due_at, tz) if case.response_due_at else "—",
        resolve_by=local_time(case.resolve_due_at, tz) if case.resolve_due_at else "—",
        reports=reports,
        state=t(lang, f"state.{case.state}"),
    )


def task_line(lang: str, district: District, case: Case, tz: ZoneInfo, now: datetime) -> str:
    """One open case in a chief's /tasks: number, state, lane, deadline (and if it is late)."""
    due = current_deadline(case)
    late = due is not None and due < now
    lane = district.lanes.get(case.lane_id or "")
    return t(
        lang,
        "tasks.line_late" if late else "tasks.line",
        number=case.number,
        state=t(lang, f"state.{case.state}"),
        lane=district.name(lane, lang) if lane else "—",
        due=local_time(due, tz) if due else "—",
        priority="❗" * case.priority,
    )
