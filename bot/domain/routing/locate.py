"""Which lane a point is on: nearest lane whose buffer covers it, else the street office's triage.

The lanes are projected once onto the district's local metric plane (see
`bot.domain.district.LocalProjection`) and indexed in a shapely `STRtree` over their bounding boxes
grown by each lane's own buffer, so a lookup only measures the few lanes that can cover the
point. A point inside a polygon lane is at distance 0 from it; a point in a polygon's hole is
not inside it (it may still be within the polygon's buffer of the hole's edge). Among lanes
that cover a point the nearest wins, ties going to the smallest lane id.

Lanes come first: a point within a border street's buffer is that street's even when it is a
few metres beyond the boundary line (the far kerb of a border road). Bad input (NaN,
latitude beyond ±90, longitude beyond ±180) is `OutsideDistrict` with an infinite distance,
never an exception.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely

from bot.domain.district import District, LocalProjection, haversine_m


@dataclass(frozen=True)
class LaneMatch:
    """The point is on a lane.

    how: "inside" — a polygon lane covers the point (distance 0);
         "buffer" — the point is within the lane's buffer_m;
         "near"   — only from `Locator.lanes_near`: within the asked radius, beyond buffer_m.
    """

    lane_id: str
    street_id: str
    distance_m: float
    how: str


@dataclass(frozen=True)
class NoLane:
    """Inside the district but on no lane: for that street office's triage.

    street_id is the street office whose area contains the point, or (with no areas, or in a
    gap between them) the street office of the nearest lane; None only for a district
    without lanes.
    """

    street_id: str | None


@dataclass(frozen=True)
class OutsideDistrict:
    """Beyond every lane's buffer and the district boundary: metres to the boundary
    (great-circle; infinite for coordinates that are not a place on Earth)."""

    distance_m: float


Location = LaneMatch | NoLane | OutsideDistrict


class Locator:
    """Answers point → lane for one district; build once, share freely (read-only)."""

    def __init__(self, district: District) -> None:
        self.district = district
        self.projection: LocalProjection = district.projection
        lanes = sorted(district.lanes.values(), key=lambda lane: lane.id)
        self._ids: list[str] = [lane.id for lane in lanes]
        self._streets: list[str] = [lane.street_id for lane in lanes]
        geometries = np.array([lane.geometry for lane in lanes], dtype=object)
        self._geoms: Any = self.projection.forward(geometries) if lanes else geometries
        self._buffer_list: list[float] = [lane.buffer_m for lane in lanes]
        self._buffers: Any = np.array(self._buffer_list, dtype=float)
        self._areal: list[bool] = [
            lane.geometry.geom_type in ("Polygon", "MultiPolygon") for lane in lanes
        ]
        # Tree over each lane's bounding box grown by its own buffer: a point's candidates are
        # the few lanes whose buffer might reach it; only those are measured.
        if lanes:
            b = shapely.bounds(self._geoms)
            r = self._buffers
            grown = shapely.box(b[:, 0] - r, b[:, 1] - r, b[:, 2] + r, b[:, 3] + r)
        else:
            grown = np.array([], dtype=object)
        self._reach = shapely.STRtree(grown)
        self._tree = shapely.STRtree(self._geoms)
        self._boundary: Any = self.projection.forward(district.boundary)
        shapely.prepare(self._boundary)
        areas = sorted(district.street_areas.items())
        self._area_streets: list[str] = [street for street, _ in areas]
        self._areas = shapely.STRtree(
            [self.projection.forward(area) for _, area in areas] if areas else []
        )

    # ---- queries

    def locate(self, lat: float, lon: float) -> Location:
        """The lane the point is on, else the street office to triage it, else how far out."""
        xy = self._xy(lat, lon)
        if xy is None:
            return OutsideDistrict(distance_m=math.inf)
        x, y = xy
        point = shapely.points(np.array((x, y)))
        candidates = self._reach.query(point)
        if len(candidates):
            # A few candidates at most: plain Python beats numpy's per-call overhead here.
            distances = shapely.distance(self._geoms[candidates], point).tolist()
            best: tuple[float, int] | None = None
            for i, d in zip(candidates.tolist(), distances, strict=True):
                # lanes are indexed in id order, so (distance, index) breaks ties by id
                if d <= self._buffer_list[i] and (best is None or (d, i) < best):
                    best = (d, i)
            if best is not None:
                return self._match(best[1], best[0])
        if self._area_streets:
            hits = self._areas.query(point, predicate="intersects")
            if hits.size:  # the boundary is the union of the areas: inside
                return NoLane(street_id=self._area_streets[int(hits.min())])
        if shapely.intersects_xy(self._boundary, x, y):
            return NoLane(street_id=self._nearest_street(point))
        return OutsideDistrict(distance_m=self._distance_outside(point, lat, lon))

    def lanes_near(self, lat: float, lon: float, radius_m: float) -> list[LaneMatch]:
        """Every lane within radius_m of the point, nearest first (ties by lane id)."""
        xy = self._xy(lat, lon)
        if xy is None or not math.isfinite(radius_m) or radius_m < 0:
            return []
        x, y = xy
        point = shapely.points(np.array((x, y)))
        candidates = self._reach.query(
            shapely.box(x - radius_m, y - radius_m, x + radius_m, y + radius_m)
        )
        if not candidates.size:
            return []
        distances = shapely.distance(self._geoms[candidates], point)
        within = distances <= radius_m
        found, d = candidates[within], distances[within]
        order = np.lexsort((found, d))
        return [self._match(int(found[k]), float(d[k])) for k in order]

    # ---- helpers

    def _xy(self, lat: float, lon: float) -> tuple[float, float] | None:
        try:
            lat, lon = float(lat), float(lon)
        except (TypeError, ValueError):
            return None
        if not (math.isfinite(lat) and math.isfinite(lon)):
            return None
        if abs(lat) > 90 or abs(lon) > 180:
            return None
        return self.projection.xy(lat, lon)

    def _match(self, index: int, distance: float) -> LaneMatch:
        if distance == 0.0 and self._areal[index]:
            how = "inside"
        elif distance <= self._buffer_list[index]:
            how = "buffer"
        else:
            how = "near"
        return LaneMatch(self._ids[index], self._streets[index], distance, how)

    def _nearest_street(self, point: Any) -> str | None:
        """The street office of the lane nearest to the point (ties: smallest lane id)."""
        if not self._ids:
            return None
        nearest = self._tree.query_nearest(point)
        return self._streets[int(nearest.min())]

    def _distance_outside(self, point: Any, lat: float, lon: float) -> float:
        if self._boundary.is_empty:
            return math.inf
        nearest = shapely.shortest_line(self._boundary, point)
        bx, by = shapely.get_coordinates(nearest)[0]
        blat, blon = self.projection.latlon(float(bx), float(by))
        return haversine_m(lat, lon, blat, blon)
