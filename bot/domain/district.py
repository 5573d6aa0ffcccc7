"""The district as data: street offices, departments, categories, lanes and the boundary.

A district lives in one folder (the default is the sample shipped in `district/`):

- `district.toml`: names, case-number prefix, time zone, street offices (街道), departments,
  categories with their handlers and time limits;
- `lanes.geojson` (or the file named by `lanes_file`): one Feature per lane (街巷), a
  LineString / MultiLineString for streets and hutongs or a Polygon / MultiPolygon for squares
  and estates, with properties `lane_id`, `name_zh`, `name_en`, `street`, `community`,
  `buffer_m`;
- the file named by `boundary_file` (optional): one Polygon / MultiPolygon feature per street
  office with property `street`, the offices' administrative areas. Without it the boundary
  is derived from the lanes (each lane buffered by its `buffer_m` plus `DERIVED_MARGIN_M`).

Everything is checked in one pass: `check_district` returns every problem with its file and
place (`line 17`, `feature 12 (lane_id CW-013)`, `categories[4] (id jinggai)`; indices count
from 0 like the lists they index), `load_district` raises `DistrictError` carrying all of them.

Geometries are kept in WGS84 as GeoJSON has them (x = longitude, y = latitude); points handed
to and from the rest of the bot are `(lat, lon)`. `District.projection` maps them to metres on
a local plane for buffers and distances.
"""

from __future__ import annotations

import json
import math
import re
import statistics
import tomllib
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import shapely
from shapely.geometry import shape

# shapely ships no type information: its geometries are `Any` to mypy.
Geometry = Any

EARTH_RADIUS_M = 6_371_008.8
DEFAULT_TIMEZONE = "Asia/Shanghai"
DEFAULT_DEDUPE_RADIUS_M = 50.0
DEFAULT_LANES_FILE = "lanes.geojson"
# A lane's buffer wider than this swallows its neighbours; most likely a typo (metres).
MAX_BUFFER_M = 500.0
# With no boundary file, the district is the lanes buffered by their buffer_m plus this much.
DERIVED_MARGIN_M = 100.0
# A lane this far from the middle of the others has wrong coordinates (a city is < 150 km).
OUTLIER_KM = 150.0
# Street offices' areas may overlap this much where their digitised borders disagree (m²).
MAX_AREA_OVERLAP_M2 = 100.0
# A lane's representative point keeps at least this distance from every other lane if it can.
REPRESENTATIVE_CLEARANCE_M = 5.0

LINE_TYPES = frozenset({"LineString", "MultiLineString"})
AREA_TYPES = frozenset({"Polygon", "MultiPolygon"})
LANE_TYPES = LINE_TYPES | AREA_TYPES
GEOJSON_GEOMETRY_TYPES = LANE_TYPES | {"Point", "MultiPoint", "GeometryCollection"}

# Ids go into database columns of 64 characters and lane ids into Telegram deep links
# (t.me/<bot>?start=lane_<id>: letters, digits, '_' and '-', at most 64 characters in all).
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_LANE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,58}$")
_CASE_PREFIX = re.compile(r"^[A-Z][A-Z0-9]{0,9}$")
_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")
_TOML_AT_END = re.compile(r"\s*\(at end of document\)$")

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


# --------------------------------------------------------------------------- the data


@dataclass(frozen=True)
class Privacy:
    """The `[privacy]` table: what the district shows of where residents were, and how long it
    keeps what no case needs (pruned hourly, bot/jobs/housekeeping.py). Defaults in each field."""

    # Keyless Open311 readers get each case's point on a grid this coarse (about a block).
    open311_location_precision_m: float = 100.0
    # Photos stored for a draft that never became a case (cancelled, abandoned, refused).
    keep_unused_photos_days: float = 7.0
    # Half-finished reports (and other conversation state) untouched this long.
    keep_abandoned_drafts_days: float = 30.0
    # Copies of sent (or given-up) messages; a card of an unfinished case is kept.
    keep_sent_messages_days: float = 30.0
    # Update ids kept so a redelivered update is not applied twice; Telegram redelivers for
    # at most 24 hours, so fewer than 1 day is refused.
    keep_processed_updates_days: float = 7.0


PRIVACY_LIMITS: dict[str, tuple[float, float]] = {  # key: (least, most)
    "open311_location_precision_m": (1.0, 10_000.0),
    "keep_unused_photos_days": (1.0, 3650.0),
    "keep_abandoned_drafts_days": (1.0, 3650.0),
    "keep_sent_messages_days": (1.0, 3650.0),
    "keep_processed_updates_days": (1.0, 3650.0),
}


@dataclass(frozen=True)
class StreetOffice:
    """A street office (街道办事处): owns its lanes and triages reports on none of them."""

    id: str
    name_zh: str
    name_en: str
    triage_chat_id: int | None


@dataclass(frozen=True)
class Department:
    """A professional department (城管, 环卫 …) that handles categories or answers a whistle."""

    id: str
    name_zh: str
    name_en: str
    chat_id: int | None


@dataclass(frozen=True)
class Category:
    """A kind of problem: who handles it and how fast."""

    id: str
    name_zh: str
    name_en: str
    keywords: tuple[str, ...]  # Chinese then English, all lower-cased ("ktv"), no repeats
    handler: str  # "chief" | "department:<id>"
    department_id: str | None  # the <id> of "department:<id>"; None for "chief"
    response_hours: float
    resolve_hours: float
    dedupe_radius_m: float
    group: str  # for Open311 services, e.g. "市容环境"; "" when ungrouped


@dataclass(frozen=True)
class Lane:
    """A street, hutong, square or estate with its street-lane chief (街巷长)."""

    id: str
    name_zh: str
    name_en: str
    street_id: str
    community: str  # 社区
    buffer_m: float  # a point this close to the lane is on it
    geometry: Geometry  # WGS84, (lon, lat); LineString, Polygon or Multi*
    representative_point: tuple[float, float]  # (lat, lon) on or inside the lane


class Named(Protocol):
    @property
    def name_zh(self) -> str: ...

    @property
    def name_en(self) -> str: ...


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


@dataclass(frozen=True, eq=False)
class District:
    """The whole district; read-only after loading. Hashable by identity (a cache key)."""

    name_zh: str
    name_en: str
    case_prefix: str
    timezone: str
    street_offices: dict[str, StreetOffice]
    departments: dict[str, Department]
    categories: dict[str, Category]
    lanes: dict[str, Lane]
    boundary: Geometry  # WGS84 (Multi)Polygon
    # Each street office's administrative area (WGS84), when the boundary file gives them.
    street_areas: dict[str, Geometry] = field(default_factory=dict)
    privacy: Privacy = field(default_factory=Privacy)

    def name(self, obj: Named, lang: str) -> str:
        """`obj`'s name in `lang` ("zh" or "en"; "en-US" etc. count as English).

        Any language other than English gets the Chinese name; an empty name falls back to
        the other language's.
        """
        english = lang.lower().startswith("en")
        first, second = (obj.name_en, obj.name_zh) if english else (obj.name_zh, obj.name_en)
        return first or second

    @property
    def projection(self) -> LocalProjection:
        """The district's local metric plane (centred on the boundary)."""
        return projection_for(self.boundary)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the district's files."""

    file: str
    where: str  # "line 17", "feature 12 (lane_id CW-013)", "categories[4] (id jinggai)" …
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.where}: {self.message}"


class DistrictError(Exception):
    """The district's files have problems; `problems` lists all of them."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        shown = "\n".join(str(p) for p in self.problems[:10])
        more = len(self.problems) - 10
        tail = f"\n… and {more} more" if more > 0 else ""
        super().__init__(f"{len(self.problems)} problem(s) in the district:\n{shown}{tail}")


def load_district(path: Path) -> District:
    """Load and check the district in folder `path` (or from its `district.toml`).

    Raises `DistrictError` with every problem found, not just the first.
    """
    district, problems = _Loader(Path(path)).run()
    if problems or district is None:
        raise DistrictError(problems or [Problem(str(path), "-", "could not be loaded")])
    return district


def check_district(path: Path) -> list[Problem]:
    """Every problem in the district in folder `path`; empty when it loads."""
    return _Loader(Path(path)).run()[1]


# --------------------------------------------------------------------------- loading


@dataclass
class _Feature:
    """A lane feature that passed its own checks, before cross-checks."""

    where: str
    lane_id: str
    name_zh: str
    name_en: str
    street: str
    community: str
    buffer_m: float
    geometry: Geometry


class _Entry:
    """One table of an array of tables (or the top level) in district.toml, with its place."""

    def __init__(
        self,
        loader: _Loader,
        data: Mapping[str, Any],
        where: str,
        file: str | None = None,
        *,
        silent: bool = False,
    ) -> None:
        self.loader, self.data, self.where, self.silent = loader, data, where, silent
        self.file = loader.toml_file if file is None else file

    def problem(self, message: str) -> None:
        if not self.silent:
            self.loader.problem(self.file, self.where, message)

    def text(self, key: str, *, required: bool = True, default: str = "") -> str:
        value = self.data.get(key)
        if value is None:
            if required:
                self.problem(f"missing {key}")
            return default
        if not isinstance(value, str):
            self.problem(f"{key} must be a string, not {_kind(value)}")
            return default
        value = value.strip()
        if required and not value:
            self.problem(f"{key} is empty")
        return value

    def ident(self, key: str = "id", *, pattern: re.Pattern[str] = _ID, limit: int = 64) -> str:
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
        return _positive(value, key, self.problem, maximum=maximum)

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


class _Loader:
    def __init__(self, path: Path) -> None:
        if path.suffix == ".toml" or path.is_file():
            self.folder, self.toml_file = path.parent, str(path)
        else:
            self.folder, self.toml_file = path, str(path / "district.toml")
        self.problems: list[Problem] = []
        self.toml_ok = False
        self.timezone = DEFAULT_TIMEZONE

    def problem(self, file: str, where: str, message: str) -> None:
        self.problems.append(Problem(file, where, message))

    # ---- the whole district

    def run(self) -> tuple[District | None, list[Problem]]:
        if not self.folder.is_dir():
            self.problem(str(self.folder), "-", "no such folder")
            return None, self.problems
        top = self._read_toml()
        # An unreadable district.toml is one problem, not one more for every missing key.
        head = _Entry(self, top, "top level", silent=not self.toml_ok)
        name_zh = head.text("name_zh")
        name_en = head.text("name_en")
        case_prefix = head.text("case_prefix")
        if case_prefix and not _CASE_PREFIX.match(case_prefix):
            head.problem(
                f"case_prefix {case_prefix!r} must be 1–10 capital letters or digits, "
                "starting with a letter (case numbers look like CY-20261123-0001)"
            )
        self.timezone = head.text("timezone", required=False, default=DEFAULT_TIMEZONE)
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            head.problem(f"timezone {self.timezone!r} is not an IANA time zone (Asia/Shanghai)")
            self.timezone = DEFAULT_TIMEZONE
        lanes_name = head.text("lanes_file", required=False, default=DEFAULT_LANES_FILE)
        boundary_name = head.text("boundary_file", required=False)

        offices = self._street_offices(top)
        departments = self._departments(top)
        categories = self._categories(top, departments)
        privacy = self._privacy(top)

        lanes_file = str(self.folder / (lanes_name or DEFAULT_LANES_FILE))
        features = self._lanes(lanes_file, offices if self.toml_ok else None)
        projection = projection_for([f.geometry for f in features])

        street_areas: dict[str, Geometry] = {}
        if boundary_name:
            boundary_file = str(self.folder / boundary_name)
            street_areas = self._street_areas(boundary_file, offices if self.toml_ok else None)
            boundary = shapely.union_all(list(street_areas.values()))
            self._lanes_within(lanes_file, boundary_file, features, boundary, street_areas)
        else:
            boundary = _derived_boundary(features, projection)

        if self.problems:
            return None, self.problems
        points = _representative_points([f.geometry for f in features], projection)
        lanes = {
            f.lane_id: Lane(
                id=f.lane_id,
                name_zh=f.name_zh,
                name_en=f.name_en,
                street_id=f.street,
                community=f.community,
                buffer_m=f.buffer_m,
                geometry=f.geometry,
                representative_point=point,
            )
            for f, point in zip(features, points, strict=True)
        }
        district = District(
            name_zh=name_zh,
            name_en=name_en,
            case_prefix=case_prefix,
            timezone=self.timezone,
            street_offices=offices,
            departments=departments,
            categories=categories,
            lanes=lanes,
            boundary=boundary,
            street_areas=street_areas,
            privacy=privacy,
        )
        return district, self.problems

    # ---- district.toml

    def _read_toml(self) -> dict[str, Any]:
        try:
            raw = Path(self.toml_file).read_bytes()
        except OSError as exc:
            self.problem(self.toml_file, "-", f"cannot read: {exc.strerror or exc}")
            return {}
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            self.problem(self.toml_file, f"line {line}", "not UTF-8 text")
            return {}
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            message = str(exc)
            where = "-"
            if m := _TOML_POSITION.search(message):
                where = f"line {m.group(1)}"
                message = f"{message[: m.start()]} (column {m.group(2)})"
            elif m := _TOML_AT_END.search(message):
                where = f"line {text.count(chr(10)) + 1}"
                message = f"{message[: m.start()]} (at the end of the file)"
            self.problem(self.toml_file, where, f"not valid TOML: {message}")
            return {}
        self.toml_ok = True
        return data

    def _tables(self, top: Mapping[str, Any], key: str) -> Iterator[_Entry]:
        value = top.get(key, [])
        if not isinstance(value, list):
            self.problem(self.toml_file, key, f"must be an array of tables ([[{key}]])")
            return
        for i, item in enumerate(value):
            where = f"{key}[{i}]"
            if not isinstance(item, dict):
                self.problem(self.toml_file, where, f"must be a table ([[{key}]])")
                continue
            ident = item.get("id")
            if isinstance(ident, str) and ident.strip():
                where += f" (id {ident.strip()})"
            yield _Entry(self, item, where)

    def _unique(self, seen: dict[str, str], ident: str, entry: _Entry, what: str) -> bool:
        if not ident:
            return False
        if ident in seen:
            entry.problem(f"duplicate {what} id {ident!r} (first at {seen[ident]})")
            return False
        seen[ident] = entry.where
        return True

    def _street_offices(self, top: Mapping[str, Any]) -> dict[str, StreetOffice]:
        offices: dict[str, StreetOffice] = {}
        seen: dict[str, str] = {}
        for e in self._tables(top, "street_offices"):
            office = StreetOffice(
                id=e.ident(),
                name_zh=e.text("name_zh"),
                name_en=e.text("name_en"),
                triage_chat_id=e.chat_id("triage_chat_id"),
            )
            if self._unique(seen, office.id, e, "street office"):
                offices[office.id] = office
        if self.toml_ok and not seen:
            self.problem(self.toml_file, "street_offices", "no street offices ([[street_offices]])")
        return offices

    def _departments(self, top: Mapping[str, Any]) -> dict[str, Department]:
        departments: dict[str, Department] = {}
        seen: dict[str, str] = {}
        for e in self._tables(top, "departments"):
            dept = Department(
                id=e.ident(),
                name_zh=e.text("name_zh"),
                name_en=e.text("name_en"),
                chat_id=e.chat_id("chat_id"),
            )
            if self._unique(seen, dept.id, e, "department"):
                departments[dept.id] = dept
        return departments

    def _categories(
        self, top: Mapping[str, Any], departments: Mapping[str, Department]
    ) -> dict[str, Category]:
        categories: dict[str, Category] = {}
        seen: dict[str, str] = {}
        for e in self._tables(top, "categories"):
            handler = e.text("handler")
            department_id: str | None = None
            if handler.startswith("department:"):
                department_id = handler.removeprefix("department:").strip()
                if not department_id:
                    e.problem("handler 'department:' names no department")
                elif department_id not in departments:
                    e.problem(f"handler names unknown department {department_id!r}")
            elif handler and handler != "chief":
                e.problem(f"handler {handler!r} must be 'chief' or 'department:<id>'")
            response = e.number("response_hours")
            resolve = e.number("resolve_hours")
            if response > 0 and resolve > 0 and resolve < response:
                e.problem(f"resolve_hours {resolve:g} is shorter than response_hours {response:g}")
            zh = [w.lower() for w in e.words("keywords_zh")]
            en = [w.lower() for w in e.words("keywords_en")]
            category = Category(
                id=e.ident(),
                name_zh=e.text("name_zh"),
                name_en=e.text("name_en"),
                keywords=tuple(dict.fromkeys(zh + en)),
                handler=handler,
                department_id=department_id,
                response_hours=response,
                resolve_hours=resolve,
                dedupe_radius_m=e.number("dedupe_radius_m", default=DEFAULT_DEDUPE_RADIUS_M),
                group=e.text("group", required=False),
            )
            if self._unique(seen, category.id, e, "category"):
                categories[category.id] = category
        if self.toml_ok and not seen:
            self.problem(self.toml_file, "categories", "no categories ([[categories]])")
        return categories

    def _privacy(self, top: Mapping[str, Any]) -> Privacy:
        table = top.get("privacy", {})
        if not isinstance(table, dict):
            self.problem(self.toml_file, "privacy", "must be a table ([privacy])")
            return Privacy()
        e = _Entry(self, table, "privacy")
        # A misspelt key would silently keep the default period: name it.
        for key in sorted(set(table) - set(PRIVACY_LIMITS)):
            e.problem(f"unknown key {key!r} (known: {', '.join(PRIVACY_LIMITS)})")
        values: dict[str, float] = {}
        for key, (least, most) in PRIVACY_LIMITS.items():
            number = e.number(key, default=getattr(Privacy, key), maximum=most)
            if number < least:
                e.problem(f"{key} {number:g} is smaller than {least:g}")
            values[key] = number
        return Privacy(**values)

    # ---- GeoJSON files

    def _read_geojson(self, file: str) -> list[tuple[int, dict[str, Any]]]:
        """The features of a FeatureCollection that are at least objects, with their index."""
        try:
            raw = Path(file).read_bytes()
        except OSError as exc:
            self.problem(file, "-", f"cannot read: {exc.strerror or exc}")
            return []
        try:
            data = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            self.problem(file, f"line {line}", "not UTF-8 text")
            return []
        except json.JSONDecodeError as exc:
            self.problem(
                file, f"line {exc.lineno}", f"not valid JSON: {exc.msg} (column {exc.colno})"
            )
            return []
        if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
            self.problem(file, "top level", "invalid GeoJSON: expected a FeatureCollection")
            return []
        features = data.get("features")
        if not isinstance(features, list):
            self.problem(file, "top level", "invalid GeoJSON: 'features' must be a list")
            return []
        good = []
        for i, feature in enumerate(features):
            if not isinstance(feature, dict) or feature.get("type") != "Feature":
                self.problem(file, f"feature {i}", "invalid GeoJSON: not a Feature object")
                continue
            good.append((i, feature))
        return good

    def _geometry(
        self, file: str, where: str, feature: Mapping[str, Any], allowed: frozenset[str]
    ) -> Geometry | None:
        """The feature's geometry if it is well-formed, of an allowed type, sane and valid."""

        def report(message: str) -> None:
            self.problem(file, where, message)

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
        if (message := _coordinate_problem(coords, self.timezone)) is not None:
            report(message)
            return None
        reason = shapely.is_valid_reason(geometry)
        if reason != "Valid Geometry":
            report(f"invalid geometry: {_explain(reason)}")
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

    def _lanes(self, file: str, offices: Mapping[str, StreetOffice] | None) -> list[_Feature]:
        features: list[_Feature] = []
        seen: dict[str, str] = {}
        raw_features = self._read_geojson(file)
        if not raw_features and not any(p.file == file for p in self.problems):
            self.problem(file, "top level", "no lanes: the FeatureCollection is empty")
        for i, feature in raw_features:
            props = feature.get("properties")
            if not isinstance(props, dict):
                props = {}
            lane_id = props.get("lane_id")
            where = f"feature {i}"
            if isinstance(lane_id, str) and lane_id.strip():
                where += f" (lane_id {lane_id.strip()})"
            problems_before = len(self.problems)
            entry = _Entry(self, props, where, file)
            report = entry.problem
            lane_id = entry.ident("lane_id", pattern=_LANE_ID, limit=59)
            name_zh = entry.text("name_zh")
            name_en = entry.text("name_en")
            street = entry.text("street")
            community = entry.text("community")
            buffer_m = entry.number("buffer_m", maximum=MAX_BUFFER_M)
            if street and offices is not None and street not in offices:
                known = ", ".join(sorted(offices)) or "none"
                report(f"unknown street office {street!r} (district.toml has: {known})")
            geometry = self._geometry(file, where, feature, LANE_TYPES)
            if lane_id and lane_id in seen:
                report(f"duplicate lane_id {lane_id!r} (first in {seen[lane_id]})")
            elif lane_id:
                seen[lane_id] = where
            if len(self.problems) == problems_before and geometry is not None:
                features.append(
                    _Feature(
                        where, lane_id, name_zh, name_en, street, community, buffer_m, geometry
                    )
                )
        self._outliers(file, features)
        return features

    def _outliers(self, file: str, features: Sequence[_Feature]) -> None:
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
                self.problem(
                    file, f.where, f"lies {km:,.0f} km from the rest of the district{hint}"
                )

    def _street_areas(
        self, file: str, offices: Mapping[str, StreetOffice] | None
    ) -> dict[str, Geometry]:
        areas: dict[str, Geometry] = {}
        seen: dict[str, str] = {}
        for i, feature in self._read_geojson(file):
            props = feature.get("properties")
            street = props.get("street") if isinstance(props, dict) else None
            where = f"feature {i}"
            if isinstance(street, str) and street.strip():
                street = street.strip()
                where += f" (street {street})"
            else:
                self.problem(file, where, "missing street (the street office the area belongs to)")
                street = None
            geometry = self._geometry(file, where, feature, AREA_TYPES)
            if street is None:
                continue
            if offices is not None and street not in offices:
                self.problem(file, where, f"unknown street office {street!r}")
            elif street in seen:
                self.problem(
                    file, where, f"duplicate area for {street!r} (first in {seen[street]})"
                )
            elif geometry is not None:
                seen[street] = where
                areas[street] = geometry
        if offices is not None and not any(p.file == file for p in self.problems):
            for street in offices:
                if street not in areas:
                    self.problem(file, f"street office {street}", "has no area in this file")
        # Two offices claiming the same ground: whose triage gets a report there is a guess.
        projection = projection_for(list(areas.values()))
        streets = list(areas)  # in file order: the later one is reported
        for k, first in enumerate(streets):
            for second in streets[k + 1 :]:
                if not areas[first].intersects(areas[second]):
                    continue
                shared = projection.forward(areas[first].intersection(areas[second])).area
                if shared > MAX_AREA_OVERLAP_M2:
                    self.problem(
                        file,
                        seen[second],
                        f"overlaps the area of {first!r} by {shared:,.0f} m²",
                    )
        return areas

    def _lanes_within(
        self,
        lanes_file: str,
        boundary_file: str,
        features: Sequence[_Feature],
        boundary: Geometry,
        street_areas: Mapping[str, Geometry],
    ) -> None:
        """Every lane touches the district, and its own street office's area."""
        if any(p.file == boundary_file for p in self.problems) or boundary.is_empty:
            return
        for f in features:
            if not f.geometry.intersects(boundary):
                self.problem(
                    lanes_file, f.where, f"lies outside the district boundary ({boundary_file})"
                )
            elif f.street in street_areas and not f.geometry.intersects(street_areas[f.street]):
                self.problem(
                    lanes_file,
                    f.where,
                    f"lies outside the area of its street office {f.street!r} ({boundary_file})",
                )


# --------------------------------------------------------------------------- helpers


def _kind(value: object) -> str:
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def _positive(
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


def _explain(reason: str) -> str:
    """GEOS's 'Self-intersection[116.44 39.92]' as 'Self-intersection at [116.44, 39.92]'."""
    m = re.match(r"^(.*?)\[([-\d.eE+]+) ([-\d.eE+]+)\]$", reason)
    return f"{m.group(1)} at [{m.group(2)}, {m.group(3)}]" if m else reason


def _coordinate_problem(coords: list[list[float]], timezone: str) -> str | None:
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


def _derived_boundary(features: Sequence[_Feature], projection: LocalProjection) -> Geometry:
    """No boundary file: the lanes, each buffered by its buffer_m plus `DERIVED_MARGIN_M`."""
    if not features:
        return shapely.Polygon()
    projected = projection.forward(np.array([f.geometry for f in features], dtype=object))
    widths = np.array([f.buffer_m + DERIVED_MARGIN_M for f in features])
    return projection.inverse(shapely.union_all(shapely.buffer(projected, widths)))


def _representative_points(
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
