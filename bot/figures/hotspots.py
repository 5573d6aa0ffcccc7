"""Hotspots: places with several reports in a few days, where to act before the next complaint.

The database picks the window's located reports; they are clustered here, around the report
with the most neighbours first: every report within `radius_m` of that seed joins its place,
and the next seed is taken from the reports left. A grid of `radius_m` cells keeps the
neighbour search to the 3 × 3 cells around each report, and numpy measures a cell at a time.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.district import LocalProjection
from bot.domain.lifecycle import State
from storage.models import Case

# Reports that are not a problem on the street: taken back, or judged not real.
NOT_COUNTED = (State.WITHDRAWN, State.REJECTED)


@dataclass(frozen=True)
class Hotspot:
    """A place (the centre of its reports) and the reports there, newest first."""

    lat: float
    lon: float
    reports: int
    numbers: tuple[str, ...]
    lane_id: str | None  # the lane most of its reports are on
    category_id: str | None  # the commonest kind of problem there


@dataclass(frozen=True)
class _Report:
    number: str
    lat: float
    lon: float
    lane_id: str | None
    category_id: str | None


async def hotspots(
    session: AsyncSession,
    street_id: str | None,
    *,
    now: datetime,
    days: int = 7,
    min_reports: int = 3,
    radius_m: float = 50.0,
) -> list[Hotspot]:
    """Places with at least `min_reports` reports (repeat reports too) in the last `days` days."""
    stmt = (
        select(Case.number, Case.lat, Case.lon, Case.lane_id, Case.category_id)
        .where(
            Case.created_at > now - timedelta(days=days),
            Case.created_at <= now,
            Case.lat.is_not(None),
            Case.lon.is_not(None),
            Case.state.not_in(NOT_COUNTED),
        )
        .order_by(Case.created_at.desc(), Case.id.desc())
    )
    if street_id is not None:
        stmt = stmt.where(Case.street_id == street_id)
    rows = (await session.execute(stmt)).all()
    reports = [
        _Report(n, lat, lon, lane, kind)
        for n, lat, lon, lane, kind in rows
        if lat is not None and lon is not None
    ]
    return cluster(reports, min_reports=min_reports, radius_m=radius_m)


def cluster(reports: Sequence[_Report], *, min_reports: int, radius_m: float) -> list[Hotspot]:
    """Densest places first; each report belongs to at most one place."""
    near = _neighbours(reports, radius_m)
    order = sorted(range(len(reports)), key=lambda i: (-len(near[i]), i))
    taken = np.zeros(len(reports), dtype=bool)
    places = []
    for seed in order:
        if taken[seed]:
            continue
        members = near[seed][~taken[near[seed]]]
        if len(members) < min_reports:
            continue
        taken[members] = True
        places.append(_place([reports[j] for j in sorted(members.tolist())]))
    places.sort(key=lambda p: (-p.reports, p.numbers))
    return places


def _neighbours(reports: Sequence[_Report], radius_m: float) -> list[np.ndarray]:
    """For each report, the indices of the reports within `radius_m` of it (itself included).

    Distances on the district's local plane (`LocalProjection`: within 0.5 % of great-circle
    distances at this scale), one cell of the grid at a time against its 3 × 3 neighbourhood.
    """
    if not reports:
        return []
    projection = LocalProjection(
        lat0=sum(r.lat for r in reports) / len(reports),
        lon0=sum(r.lon for r in reports) / len(reports),
    )
    xy = np.array([projection.xy(r.lat, r.lon) for r in reports])
    cells = np.floor(xy / max(radius_m, 1.0)).astype(np.int64)
    grid: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, (cx, cy) in enumerate(cells.tolist()):
        grid[(cx, cy)].append(i)
    out: list[np.ndarray] = [np.empty(0, dtype=np.int64)] * len(reports)
    for (cx, cy), members in grid.items():
        around = [
            j for dx in (-1, 0, 1) for dy in (-1, 0, 1) for j in grid.get((cx + dx, cy + dy), ())
        ]
        candidates = np.array(around, dtype=np.int64)
        d2 = ((xy[members][:, None, :] - xy[candidates][None, :, :]) ** 2).sum(axis=2)
        for row, i in enumerate(members):
            out[i] = np.sort(candidates[d2[row] <= radius_m * radius_m])
    return out


def _place(members: Sequence[_Report]) -> Hotspot:
    lanes = Counter(m.lane_id for m in members if m.lane_id)
    kinds = Counter(m.category_id for m in members if m.category_id)
    return Hotspot(
        lat=sum(m.lat for m in members) / len(members),
        lon=sum(m.lon for m in members) / len(members),
        reports=len(members),
        numbers=tuple(m.number for m in members),
        lane_id=lanes.most_common(1)[0][0] if lanes else None,
        category_id=kinds.most_common(1)[0][0] if kinds else None,
    )
