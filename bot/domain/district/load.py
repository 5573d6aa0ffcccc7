"""Loading a district from its folder: `district.toml` read and checked here, its GeoJSON files
by `geojson`, everything checked in one pass.

`check_district` returns every problem with its file and place (`line 17`, `feature 12
(lane_id CW-013)`, `categories[4] (id jinggai)`; indices count from 0 like the lists they
index), `load_district` raises `DistrictError` carrying all of them.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import shapely

from bot.domain.district.checks import CASE_PREFIX_PATTERN, Entry, Problems
from bot.domain.district.geojson import GeoJsonReader
from bot.domain.district.geometry import (
    Geometry,
    derived_boundary,
    projection_for,
    representative_points,
)
from bot.domain.district.model import (
    DEFAULT_DEDUPE_RADIUS_M,
    PRIVACY_LIMITS,
    Category,
    Department,
    District,
    DistrictError,
    Lane,
    Privacy,
    Problem,
    StreetOffice,
)
from bot.domain.localtime import DEFAULT_TIMEZONE

DEFAULT_LANES_FILE = "lanes.geojson"
_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")
_TOML_AT_END = re.compile(r"\s*\(at end of document\)$")


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


class _Loader:
    def __init__(self, path: Path) -> None:
        if path.suffix == ".toml" or path.is_file():
            self.folder, self.toml_file = path.parent, str(path)
        else:
            self.folder, self.toml_file = path, str(path / "district.toml")
        self.problems = Problems()
        self.toml_ok = False
        self.timezone = DEFAULT_TIMEZONE

    def problem(self, file: str, where: str, message: str) -> None:
        self.problems.add(file, where, message)

    # ---- the whole district

    def run(self) -> tuple[District | None, list[Problem]]:
        if not self.folder.is_dir():
            self.problem(str(self.folder), "-", "no such folder")
            return None, list(self.problems)
        top = self._read_toml()
        # An unreadable district.toml is one problem, not one more for every missing key.
        head = Entry(self.problems, top, "top level", self.toml_file, silent=not self.toml_ok)
        name_zh = head.text("name_zh")
        name_en = head.text("name_en")
        case_prefix = head.text("case_prefix")
        if case_prefix and not CASE_PREFIX_PATTERN.match(case_prefix):
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
        geo = GeoJsonReader(self.problems, self.timezone)
        features = geo.lanes(lanes_file, offices if self.toml_ok else None)
        projection = projection_for([f.geometry for f in features])

        street_areas: dict[str, Geometry] = {}
        if boundary_name:
            boundary_file = str(self.folder / boundary_name)
            street_areas = geo.street_areas(boundary_file, offices if self.toml_ok else None)
            boundary = shapely.union_all(list(street_areas.values()))
            geo.lanes_within(lanes_file, boundary_file, features, boundary, street_areas)
        else:
            boundary = derived_boundary(
                [f.geometry for f in features], [f.buffer_m for f in features], projection
            )

        if self.problems:
            return None, list(self.problems)
        points = representative_points([f.geometry for f in features], projection)
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
        return district, list(self.problems)

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

    def _tables(self, top: Mapping[str, Any], key: str) -> Iterator[Entry]:
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
            yield Entry(self.problems, item, where, self.toml_file)

    def _unique(self, seen: dict[str, str], ident: str, entry: Entry, what: str) -> bool:
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
                assignee=handler,
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
        e = Entry(self.problems, table, "privacy", self.toml_file)
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
