"""The district's geometry: WGS84 as GeoJSON has it (x = longitude, y = latitude), points handed
to and from the rest of the bot as `(lat, lon)`, and a local metric plane (`LocalProjection`)
for buffers and distances; the boundary derived from the lanes, and each lane's
representative point."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely

# shapely ships no type information: its geometries are `Any` to mypy.
Geometry = Any

EARTH_RADIUS_M = 6_371_008.8
# With no boundary file, the district is the lanes buffered by their buffer_m plus this much.
DERIVED_MARGIN_M = 100.0
# A lane's representative point keeps at least this distance from every other lane if it can.
REPRESENTATIVE_CLEARANCE_M = 5.0


@dataclass(frozen=True)
class LocalProjection:
    """WGS84 to metres on a plane centred on the district (equirectangular).

    x = R·Δλ·cos φ0, y = R·Δφ. Within 50 km of the centre, distances are off by less than
    0.5 % (the change of cos φ over the district), which street-scale buffers do not notice.
    """

    lat0: float
    lon0: float

    @property
    def _kx(self) -> float:
        return EARTH_RADIUS_M * math.cos(math.radians(self.lat0)) * math.pi / 180.0

    @property
    def _ky(self) -> float:
        return EARTH_RADIUS_M * math.pi / 180.0

    def xy(self, lat: float, lon: float) -> tuple[float, float]:
        """A point's metres east and north of the centre."""
        dlon = (lon - self.lon0 + 180.0) % 360.0 - 180.0
        return dlon * self._kx, (lat - self.lat0) * self._ky

    def latlon(self, x: float, y: float) -> tuple[float, float]:
        """The inverse of `xy`."""
        return self.lat0 + y / self._ky, self.lon0 + x / self._kx

    def forward(self, geometry: Geometry) -> Geometry:
        """A WGS84 geometry (lon, lat) on the metric plane."""
        kx, ky, lon0, lat0 = self._kx, self._ky, self.lon0, self.lat0

        def fwd(c: np.ndarray) -> np.ndarray:
            dlon = (c[:, 0] - lon0 + 180.0) % 360.0 - 180.0
            return np.column_stack((dlon * kx, (c[:, 1] - lat0) * ky))

        return shapely.transform(geometry, fwd)

    def inverse(self, geometry: Geometry) -> Geometry:
        """A geometry on the metric plane back in WGS84 (lon, lat)."""
        kx, ky, lon0, lat0 = self._kx, self._ky, self.lon0, self.lat0

        def inv(c: np.ndarray) -> np.ndarray:
            return np.column_stack((lon0 + c[:, 0] / kx, lat0 + c[:, 1] / ky))

        return shapely.transform(geometry, inv)


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def projection_for(geometries: Geometry | Sequence[Geometry]) -> LocalProjection:
    """A projection centred on the middle of WGS84 geometries' bounding box."""
    if isinstance(geometries, Sequence) and not geometries:
        return LocalProjection(0.0, 0.0)
    minx, miny, maxx, maxy = (float(v) for v in shapely.total_bounds(geometries))
    if not all(math.isfinite(v) for v in (minx, miny, maxx, maxy)):
        return LocalProjection(0.0, 0.0)
    return LocalProjection(lat0=(miny + maxy) / 2, lon0=(minx + maxx) / 2)


def derived_boundary(
    geometries: Sequence[Geometry], buffers_m: Sequence[float], projection: LocalProjection
) -> Geometry:
    """No boundary file: the lanes, each buffered by its buffer_m plus `DERIVED_MARGIN_M`."""
    if not geometries:
        return shapely.Polygon()
    projected = projection.forward(np.array(geometries, dtype=object))
    widths = np.array([buffer_m + DERIVED_MARGIN_M for buffer_m in buffers_m])
    return projection.inverse(shapely.union_all(shapely.buffer(projected, widths)))


def representative_points(
    geometries: Sequence[Geometry], projection: LocalProjection
) -> list[tuple[float, float]]:
    """A point on (lines) or inside (areas) each lane, clear of the other lanes if possible.

    The middle of a line / shapely's point on the surface of an area, unless another lane
    comes within `REPRESENTATIVE_CLEARANCE_M` of it; then the same taken on the part of the
    lane left after cutting away the other lanes' surroundings. So the point locates back to
    its own lane.
    """
    if not geometries:
        return []
    projected = projection.forward(np.array(geometries, dtype=object))
    kinds = shapely.get_type_id(projected)
    points = np.empty(len(projected), dtype=object)
    simple_line = kinds == shapely.GeometryType.LINESTRING
    simple_area = kinds == shapely.GeometryType.POLYGON
    points[simple_line] = shapely.line_interpolate_point(
        projected[simple_line], 0.5, normalized=True
    )
    points[simple_area] = shapely.point_on_surface(projected[simple_area])
    for i in np.flatnonzero(~(simple_line | simple_area)):
        points[i] = _middle(projected[i])

    tree = shapely.STRtree(projected)
    clear = REPRESENTATIVE_CLEARANCE_M
    which, near = tree.query(points, predicate="dwithin", distance=clear)
    for i in np.unique(which[which != near]):
        around = tree.query(projected[i], predicate="dwithin", distance=clear)
        others = projected[around[around != i]]
        rest = projected[i].difference(shapely.union_all(shapely.buffer(others, clear)))
        if not rest.is_empty:
            points[i] = _middle(rest)
    xy = shapely.get_coordinates(points)
    return [projection.latlon(float(x), float(y)) for x, y in xy]


def _middle(geometry: Geometry) -> Geometry:
    """The middle of the longest line / a point inside the largest area of a geometry."""
    parts = [p for p in shapely.get_parts(geometry) if not p.is_empty]
    areas = [p for p in parts if p.geom_type == "Polygon"]
    if areas:
        return max(areas, key=lambda p: float(p.area)).representative_point()
    lines = [p for p in parts if p.geom_type == "LineString"]
    if lines:
        return max(lines, key=lambda p: float(p.length)).interpolate(0.5, normalized=True)
    return geometry.representative_point()
