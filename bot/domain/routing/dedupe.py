"""Deduplicate: a new report of an open problem joins it instead of making a second case."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.district import haversine_m
from bot.domain.lifecycle import OPEN
from storage.models import Case, Photo

WINDOW = timedelta(days=14)
PHASH_NEAR = 6  # of 64 bits: a re-encoded or resized copy of the same photo


def phash_distance(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


async def find_duplicate(
    session: AsyncSession,
    case: Case,
    *,
    radius_m: float,
    now: datetime,
) -> tuple[Case, str] | None:
    """The open case from the last 14 days this one repeats, and how it was recognised."""
    since = now - WINDOW
    by_photo = await _same_photo(session, case, since)
    if by_photo is not None:
        return by_photo
    if case.category_id is None or case.lat is None or case.lon is None:
        return None
    # A bounding box first, so the database narrows the search; exact distance after.
    dlat = radius_m / 111_320.0
    dlon = dlat / max(math.cos(math.radians(case.lat)), 0.01)
    nearby = await session.scalars(
        select(Case).where(
            Case.id != case.id,
            Case.category_id == case.category_id,
            Case.state.in_(OPEN),
            Case.duplicate_of_id.is_(None),
            Case.created_at >= since,
            Case.lat.between(case.lat - dlat, case.lat + dlat),
            Case.lon.between(case.lon - dlon, case.lon + dlon),
        )
    )
    best: tuple[float, Case] | None = None
    for other in nearby:
        assert other.lat is not None and other.lon is not None
        d = haversine_m(case.lat, case.lon, other.lat, other.lon)
        if d <= radius_m and (best is None or (d, other.id) < (best[0], best[1].id)):
            best = (d, other)
    if best is None:
        return None
    return best[1], f"same category within {best[0]:.0f} m"


async def _same_photo(
    session: AsyncSession, case: Case, since: datetime
) -> tuple[Case, str] | None:
    if not case.photos:
        return None
    result = await session.execute(
        select(Photo, Case)
        .join(Case, Case.id == Photo.case_id)
        .where(
            Case.id != case.id,
            # Near-identical photos are looked for in the same street office only.
            Case.street_id == case.street_id if case.street_id else Case.id.is_not(None),
            Case.state.in_(OPEN),
            Case.duplicate_of_id.is_(None),
            Case.created_at >= since,
        )
    )
    rows: Sequence[tuple[Photo, Case]] = [(photo, other) for photo, other in result.all()]
    mine = {p.sha256 for p in case.photos}
    hashes = [p.phash for p in case.photos if p.phash]
    for photo, other in rows:
        if photo.sha256 in mine:
            return other, "same photo file"
    for photo, other in rows:
        if photo.phash and any(phash_distance(photo.phash, h) <= PHASH_NEAR for h in hashes):
            return other, "near-identical photo"
    return None
