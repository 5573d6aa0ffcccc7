"""What the district's files are checked against, and how a problem is noted with its place.

`Entry` reads one table (of district.toml, or a GeoJSON feature's properties) and notes every
value that is missing or wrong; the other functions judge coordinates and geometries. Nothing
here reads a file: that is `load` (district.toml) and `geojson` (lanes and areas).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from bot.domain.district.model import Problem

# A lane's buffer wider than this swallows its neighbours; most likely a typo (metres).
MAX_BUFFER_M = 500.0
# A lane this far from the middle of the others has wrong coordinates (a city is < 150 km).
OUTLIER_KM = 150.0
# Street offices' areas may overlap this much where their digitised borders disagree (m²).
MAX_AREA_OVERLAP_M2 = 100.0

LINE_TYPES = frozenset({"LineString", "MultiLineString"})
AREA_TYPES = frozenset({"Polygon", "MultiPolygon"})
LANE_TYPES = LINE_TYPES | AREA_TYPES
GEOJSON_GEOMETRY_TYPES = LANE_TYPES | {"Point", "MultiPoint", "GeometryCollection"}

# Ids go into database columns of 64 characters and lane ids into Telegram deep links
# (t.me/<bot>?start=lane_<id>: letters, digits, '_' and '-', at most 64 characters in all).
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
LANE_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,58}$")
CASE_PREFIX_PATTERN = re.compile(r"^[A-Z][A-Z0-9]{0,9}$")

# Where a district in a given time zone can be: coordinates elsewhere are wrong or swapped.
Region = tuple[float, float, float, float]  # lat min, lat max, lon min, lon max
_CHINA: Region = (18.0, 54.0, 73.0, 135.5)
_TIMEZONE_REGIONS: dict[str, Region] = {
    "Asia/Shanghai": _CHINA,
    "Asia/Chongqing": _CHINA,
    "Asia/Chungking": _CHINA,
    "Asia/Harbin": _CHINA,
    "Asia/Urumqi": _CHINA,
    "Asia/Kashgar": _CHINA,
    "PRC": _CHINA,
}


class Problems(list[Problem]):
    """Every problem found so far, in the order found."""

    def add(self, file: str, where: str, message: str) -> None:
        self.append(Problem(file, where, message))

    def any_in(self, file: str) -> bool:
        return any(p.file == file for p in self)


class Entry:
    """One table of district.toml (an item of an array of tables, or the top level), or a
    GeoJSON feature's properties, with its file and place."""

    def __init__(
        self,
        problems: Problems,
        data: Mapping[str, Any],
        where: str,
        file: str,
        *,
        silent: bool = False,
    ) -> None:
        self.problems, self.data, self.where, self.silent = problems, data, where, silent
        self.file = file

    def problem(self, message: str) -> None:
        if not self.silent:
            self.problems.add(self.file, self.where, message)

    def text(self, key: str, *, required: bool = True, default: str = "") -> str:
        value = self.data.get(key)
        if value is None:
            if required:
                self.problem(f"missing {key}")
            return default
        if not isinstance(value, str):
            self.problem(f"{key} must be a string, not {kind_of(value)}")
            return default
        value = value.strip()
        if required and not value:
            self.problem(f"{key} is empty")
        return value

    def ident(
        self, key: str = "id", *, pattern: re.Pattern[str] = ID_PATTERN, limit: int = 64
    ) -> str:
        value = self.text(key)
        if value and not pattern.match(value):
            self.problem(
                f"{key} {value!r} must be letters, digits, '-' or '_', at most {limit} characters"
            )
        return value

    def number(
        self, key: str, *, default: float | None = None, maximum: float | None = None
    ) -> float:
        value = self.data.get(key, default)
        if value is None:
            self.problem(f"missing {key}")
            return math.nan
        return positive(value, key, self.problem, maximum=maximum)

    def chat_id(self, key: str) -> int | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value == 0:
            self.problem(f"{key} must be a Telegram chat id (a non-zero integer), not {value!r}")
            return None
        return value

    def words(self, key: str) -> list[str]:
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problem(f"{key} must be a list of strings")
            return []
        return [v.strip() for v in value if v.strip()]


def kind_of(value: object) -> str:
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def positive(
    value: object, key: str, report: Callable[[str], None], *, maximum: float | None = None
) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        report(f"{key} must be a number, not {value!r}")
        return math.nan
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        report(f"{key} must be positive, not {value!r}")
        return math.nan
    if maximum is not None and number > maximum:
        report(f"{key} {value!r} is larger than {maximum:g}")
        return math.nan
    return number


def explain(reason: str) -> str:
    """GEOS's 'Self-intersection[116.44 39.92]' as 'Self-intersection at [116.44, 39.92]'."""
    m = re.match(r"^(.*?)\[([-\d.eE+]+) ([-\d.eE+]+)\]$", reason)
    return f"{m.group(1)} at [{m.group(2)}, {m.group(3)}]" if m else reason


def coordinate_problem(coords: list[list[float]], timezone: str) -> str | None:
    """What is wrong with a feature's [lon, lat] coordinates, if anything.

    Plain Python: a lane has a handful of coordinates, too few for numpy to pay off.
    """
    if not all(math.isfinite(lon) and math.isfinite(lat) for lon, lat in coords):
        return "coordinates must be finite numbers (found NaN or infinity)"
    region = _TIMEZONE_REGIONS.get(timezone)
    swapped = all(_in_region(lat, lon, region) for lon, lat in coords)
    for lon, lat in coords:
        if abs(lon) > 180 or abs(lat) > 90:
            message = (
                f"coordinate [{lon:g}, {lat:g}] is outside WGS84 "
                "(longitude −180…180, latitude −90…90)"
            )
            if swapped:
                message += "; it looks swapped: GeoJSON wants [longitude, latitude]"
            return message
    if region is None:
        return None
    for lon, lat in coords:
        if not _in_region(lon, lat, region):
            if swapped:
                return (
                    f"coordinates look swapped: [{lon:g}, {lat:g}] is latitude {lat:g}, "
                    f"longitude {lon:g}, far from {timezone}; GeoJSON wants [longitude, latitude]"
                )
            lat_min, lat_max, lon_min, lon_max = region
            return (
                f"coordinate [{lon:g}, {lat:g}] is far from the district's time zone "
                f"{timezone} (latitude {lat_min:g}…{lat_max:g}, longitude {lon_min:g}…{lon_max:g})"
            )
    return None


def _in_region(lon: float, lat: float, region: Region | None) -> bool:
    """Whether [lon, lat] is in the region, or anywhere on Earth with no region."""
    if region is None:
        return abs(lon) <= 180 and abs(lat) <= 90
    lat_min, lat_max, lon_min, lon_max = region
    return lat_min <= lat <= lat_max and lon_min <= lon <= lon_max
