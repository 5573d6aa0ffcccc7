"""The district's GeoJSON files: the lanes (`lanes.geojson`) and, optionally, the street offices'
areas (`boundary_file`), each feature checked on its own and then against the others."""

from __future__ import annotations

import json
import statistics
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import shape

from bot.domain.district.checks import (
    AREA_TYPES,
    GEOJSON_GEOMETRY_TYPES,
    LANE_ID_PATTERN,
    LANE_TYPES,
    MAX_AREA_OVERLAP_M2,
    MAX_BUFFER_M,
    OUTLIER_KM,
    Entry,
    Problems,
    coordinate_problem,
    explain,
)
from bot.domain.district.geometry import Geometry, haversine_m, projection_for
from bot.domain.district.model import StreetOffice


@dataclass
class LaneFeature:
    """A lane feature that passed its own checks, before cross-checks."""

    where: str
    lane_id: str
    name_zh: str
    name_en: str
    street: str
    community: str
    buffer_m: float
    geometry: Geometry


class GeoJsonReader:
    """Reads a district's GeoJSON files, noting every problem in `problems`; `timezone` (the
    district's) tells where its coordinates can be."""

    def __init__(self, problems: Problems, timezone: str) -> None:
        self.problems, self.timezone = problems, timezone

    def read_features(self, file: str) -> list[tuple[int, dict[str, Any]]]:
        """The features of a FeatureCollection that are at least objects, with their index."""
        try:
            raw = Path(file).read_bytes()
        except OSError as exc:
            self.problems.add(file, "-", f"cannot read: {exc.strerror or exc}")
            return []
        try:
            data = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            self.problems.add(file, f"line {line}", "not UTF-8 text")
            return []
        except json.JSONDecodeError as exc:
            self.problems.add(
                file, f"line {exc.lineno}", f"not valid JSON: {exc.msg} (column {exc.colno})"
            )
            return []
        if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
            self.problems.add(file, "top level", "invalid GeoJSON: expected a FeatureCollection")
            return []
        features = data.get("features")
        if not isinstance(features, list):
            self.problems.add(file, "top level", "invalid GeoJSON: 'features' must be a list")
            return []
        good = []
        for i, feature in enumerate(features):
            if not isinstance(feature, dict) or feature.get("type") != "Feature":
                self.problems.add(file, f"feature {i}", "invalid GeoJSON: not a Feature object")
                continue
            good.append((i, feature))
        return good

    def feature_geometry(
        self, file: str, where: str, feature: Mapping[str, Any], allowed: frozenset[str]
    ) -> Geometry | None:
        """The feature's geometry if it is well-formed, of an allowed type, sane and valid."""

        def report(message: str) -> None:
            self.problems.add(file, where, message)

        raw = feature.get("geometry")
        if not isinstance(raw, dict):
            report("invalid GeoJSON: the feature has no geometry")
            return None
        kind = raw.get("type")
        if kind not in GEOJSON_GEOMETRY_TYPES:
            report(f"invalid GeoJSON: unknown geometry type {kind!r}")
            return None
        if kind not in allowed:
            report(f"wrong geometry type {kind}; expected {' or '.join(sorted(allowed))}")
            return None
        try:
            with warnings.catch_warnings():  # NaN coordinates: reported below, not warned
                warnings.simplefilter("ignore", RuntimeWarning)
                geometry = shapely.force_2d(shape(raw))
        except Exception as exc:  # shapely raises several kinds on malformed coordinates
            report(f"invalid GeoJSON {kind}: {exc}")
            return None
        if geometry.is_empty:
            report(f"empty {kind}")
            return None
        coords = shapely.get_coordinates(geometry).tolist()
        if (message := coordinate_problem(coords, self.timezone)) is not None:
            report(message)
            return None
        reason = shapely.is_valid_reason(geometry)
        if reason != "Valid Geometry":
            report(f"invalid geometry: {explain(reason)}")
            return None
        if kind == "LineString" and not geometry.is_simple:
            report("invalid geometry: the line crosses or runs back over itself")
            return None
        if kind == "MultiLineString":
            for part_no, part in enumerate(shapely.get_parts(geometry)):
                if not part.is_simple:
                    report(f"invalid geometry: line {part_no} crosses or runs back over itself")
                    return None
        return geometry

    def lanes(self, file: str, offices: Mapping[str, StreetOffice] | None) -> list[LaneFeature]:
        features: list[LaneFeature] = []
        seen: dict[str, str] = {}
        raw_features = self.read_features(file)
        if not raw_features and not self.problems.any_in(file):
            self.problems.add(file, "top level", "no lanes: the FeatureCollection is empty")
        for i, feature in raw_features:
            props = feature.get("properties")
            if not isinstance(props, dict):
                props = {}
            lane_id = props.get("lane_id")
            where = f"feature {i}"
            if isinstance(lane_id, str) and lane_id.strip():
                where += f" (lane_id {lane_id.strip()})"
            problems_before = len(self.problems)
            entry = Entry(self.problems, props, where, file)
            report = entry.problem
            lane_id = entry.ident("lane_id", pattern=LANE_ID_PATTERN, limit=59)
            name_zh = entry.text("name_zh")
            name_en = entry.text("name_en")
            street = entry.text("street")
            community = entry.text("community")
            buffer_m = entry.number("buffer_m", maximum=MAX_BUFFER_M)
            if street and offices is not None and street not in offices:
                known = ", ".join(sorted(offices)) or "none"
                report(f"unknown street office {street!r} (district.toml has: {known})")
            geometry = self.feature_geometry(file, where, feature, LANE_TYPES)
            if lane_id and lane_id in seen:
                report(f"duplicate lane_id {lane_id!r} (first in {seen[lane_id]})")
            elif lane_id:
                seen[lane_id] = where
            if len(self.problems) == problems_before and geometry is not None:
                features.append(
                    LaneFeature(
                        where, lane_id, name_zh, name_en, street, community, buffer_m, geometry
                    )
                )
        self._outliers(file, features)
        return features

    def _outliers(self, file: str, features: Sequence[LaneFeature]) -> None:
        """Lanes far from the rest: coordinates typed wrong, or latitude and longitude swapped."""
        if len(features) < 3:
            return
        centres = [(float(c.y), float(c.x)) for c in (f.geometry.centroid for f in features)]
        lat0 = statistics.median(c[0] for c in centres)
        lon0 = statistics.median(c[1] for c in centres)
        for f, (lat, lon) in zip(features, centres, strict=True):
            km = haversine_m(lat, lon, lat0, lon0) / 1000
            if km > OUTLIER_KM:
                hint = ""
                if -90 <= lon <= 90 and haversine_m(lon, lat, lat0, lon0) / 1000 <= OUTLIER_KM:
                    hint = "; its coordinates look swapped: GeoJSON wants [longitude, latitude]"
                self.problems.add(
                    file, f.where, f"lies {km:,.0f} km from the rest of the district{hint}"
                )

    def street_areas(
        self, file: str, offices: Mapping[str, StreetOffice] | None
    ) -> dict[str, Geometry]:
        areas: dict[str, Geometry] = {}
        seen: dict[str, str] = {}
        for i, feature in self.read_features(file):
            props = feature.get("properties")
            street = props.get("street") if isinstance(props, dict) else None
            where = f"feature {i}"
            if isinstance(street, str) and street.strip():
                street = street.strip()
                where += f" (street {street})"
            else:
                self.problems.add(
                    file, where, "missing street (the street office the area belongs to)"
                )
                street = None
            geometry = self.feature_geometry(file, where, feature, AREA_TYPES)
            if street is None:
                continue
            if offices is not None and street not in offices:
                self.problems.add(file, where, f"unknown street office {street!r}")
            elif street in seen:
                self.problems.add(
                    file, where, f"duplicate area for {street!r} (first in {seen[street]})"
                )
            elif geometry is not None:
                seen[street] = where
                areas[street] = geometry
        if offices is not None and not self.problems.any_in(file):
            for street in offices:
                if street not in areas:
                    self.problems.add(file, f"street office {street}", "has no area in this file")
        # Two offices claiming the same ground: whose triage gets a report there is a guess.
        projection = projection_for(list(areas.values()))
        streets = list(areas)  # in file order: the later one is reported
        for k, first in enumerate(streets):
            for second in streets[k + 1 :]:
                if not areas[first].intersects(areas[second]):
                    continue
                shared = projection.forward(areas[first].intersection(areas[second])).area
                if shared > MAX_AREA_OVERLAP_M2:
                    self.problems.add(
                        file,
                        seen[second],
                        f"overlaps the area of {first!r} by {shared:,.0f} m²",
                    )
        return areas

    def lanes_within(
        self,
        lanes_file: str,
        boundary_file: str,
        features: Sequence[LaneFeature],
        boundary: Geometry,
        street_areas: Mapping[str, Geometry],
    ) -> None:
        """Every lane touches the district, and its own street office's area."""
        if self.problems.any_in(boundary_file) or boundary.is_empty:
            return
        for f in features:
            if not f.geometry.intersects(boundary):
                self.problems.add(
                    lanes_file, f.where, f"lies outside the district boundary ({boundary_file})"
                )
            elif f.street in street_areas and not f.geometry.intersects(street_areas[f.street]):
                self.problems.add(
                    lanes_file,
                    f.where,
                    f"lies outside the area of its street office {f.street!r} ({boundary_file})",
                )
