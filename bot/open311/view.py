"""A case as an Open311 service request, for anyone to read: no personal data at all.

Left out on purpose: the reporter, the description and the address the reporter typed (both
often hold names, phone and flat numbers: the CSV export leaves them out for the same reason)
and photos (not served). `address` is the lane and street office the case is on, from the
district data, and `address_id` the lane's id. `lat`/`long` are where the resident stood (or
their photo's GPS, often taken from a window at home): published on a grid of the district's
`open311_location_precision_m` (100 m), exact only to a client allowed it.

Status: the spec knows only `open` and `closed` ("closed: it has been resolved"). A case is
open while it is not fixed yet (`lifecycle.UNFIXED`: submitted, triage, dispatched, accepted,
whistled) and closed once it is fixed (resolved, even while the fix awaits confirmation: a
reopen makes it open again) or ended (closed, rejected, withdrawn, a duplicate): not the bot's
own "open" (`lifecycle.OPEN`), under which a resolved case still takes the reporter's notes.
`status_notes` says the finer state in words.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from bot.domain.district import EARTH_RADIUS_M, District
from bot.domain.lifecycle import UNFIXED, State
from bot.figures.names import local_time
from bot.i18n import plain
from bot.open311.params import w3c
from bot.open311.render import Value
from storage.models import Case

OPEN = "open"
CLOSED = "closed"
OPEN_STATES = UNFIXED
_METRES_PER_DEGREE = EARTH_RADIUS_M * math.pi / 180.0


@dataclass(frozen=True)
class Grid:
    """Points snapped to the nearest node of a grid `metres` apart, the same for everyone.

    Rows are `metres` of latitude apart; along a row, nodes are `metres` apart at the row's
    latitude. The grid depends on nothing but `metres`, so a point always lands on the same
    node: many reports from one doorstep all show that node, and averaging them gives nothing
    finer.
    """

    metres: float

    def snap(self, lat: float, lon: float) -> tuple[float, float]:
        step = self.metres / _METRES_PER_DEGREE
        row = round(lat / step) * step
        across = math.cos(math.radians(row))
        if across < 1e-9:  # a pole: one node
            return row, 0.0
        return row, round(lon / (step / across)) * (step / across)


def status(case: Case) -> str:
    return OPEN if case.state in OPEN_STATES else CLOSED


def status_notes(case: Case, lang: str, original: str | None = None) -> str:
    if case.state == State.DUPLICATE and original:
        return plain(lang, "open311.status.duplicate_of", original=original)
    return plain(lang, f"open311.status.{case.state}")


def agency(district: District, case: Case, lang: str) -> str:
    """Who has the case: a department, a lane's chief (the role, never a person), an office."""
    office = district.street_offices.get(case.street_id or "")
    if case.state != State.TRIAGE:
        department = district.departments.get(case.department_id or "")
        if department is not None:
            return district.name(department, lang)
        lane = district.lanes.get(case.lane_id or "")
        if lane is not None:
            return plain(lang, "open311.agency.lane_chief", lane=district.name(lane, lang))
    if office is not None:
        return district.name(office, lang)
    return district.name(district, lang)


def address(district: District, case: Case, lang: str) -> str | None:
    """Where the case is, from the district data: lane and street office."""
    office = district.street_offices.get(case.street_id or "")
    lane = district.lanes.get(case.lane_id or "")
    parts = [district.name(p, lang) for p in (office, lane) if p is not None]
    return plain(lang, "open311.address", places=" ".join(parts)) if parts else None


def point(case: Case, grid: Grid | None) -> tuple[float | None, float | None]:
    """The case's point as published: snapped to `grid`, or as stored (grid None)."""
    if case.lat is None or case.lon is None:
        return None, None
    lat, lon = (case.lat, case.lon) if grid is None else grid.snap(case.lat, case.lon)
    return round(lat, 6), round(lon, 6)


def service_request(
    district: District,
    case: Case,
    lang: str,
    tz: ZoneInfo,
    grid: Grid | None,
    *,
    original: str | None = None,
) -> dict[str, Value]:
    """One entry of GET requests; `original` is the case number a duplicate joined."""
    category = district.categories.get(case.category_id or "")
    is_open = status(case) == OPEN
    lat, lon = point(case, grid)
    return {
        "service_request_id": case.number,
        "status": status(case),
        "status_notes": status_notes(case, lang, original),
        "service_name": district.name(category, lang) if category else None,
        "service_code": category.id if category else None,
        "agency_responsible": agency(district, case, lang),
        "service_notice": (
            plain(lang, "open311.notice.due", due=local_time(case.resolve_due_at, tz))
            if is_open and case.resolve_due_at is not None
            else None
        ),
        "requested_datetime": w3c(case.created_at, tz),
        "updated_datetime": w3c(case.updated_at, tz),
        "expected_datetime": w3c(case.resolve_due_at, tz) if case.resolve_due_at else None,
        "address": address(district, case, lang),
        "address_id": case.lane_id if case.lane_id in district.lanes else None,
        "lat": lat,
        "long": lon,
    }
