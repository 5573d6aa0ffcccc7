"""The district as data: the sample district, every validation problem, and the CLI."""

from __future__ import annotations

import argparse
import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest
import shapely

from bot.cli import district as district_cli
from bot.config import SAMPLE_DISTRICT_DIR
from bot.domain.district import (
    EARTH_RADIUS_M,
    Category,
    District,
    DistrictError,
    Problem,
    check_district,
    haversine_m,
    load_district,
)

# --------------------------------------------------------------------------- fixtures

ORIGIN_LAT, ORIGIN_LON = 39.92, 116.44
_KY = EARTH_RADIUS_M * math.pi / 180
_KX = _KY * math.cos(math.radians(ORIGIN_LAT))


def at(east_m: float, north_m: float) -> list[float]:
    """A GeoJSON position [lon, lat] this many metres east and north of the origin."""
    return [ORIGIN_LON + east_m / _KX, ORIGIN_LAT + north_m / _KY]


def latlon(east_m: float, north_m: float) -> tuple[float, float]:
    lon, lat = at(east_m, north_m)
    return lat, lon


def to_toml(data: dict[str, Any]) -> str:
    """Just enough TOML writing for these fixtures: scalars, lists, arrays of tables."""

    def value(v: Any) -> str:
        if isinstance(v, str):
            return json.dumps(v, ensure_ascii=False)
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return repr(v)

    lines = [f"{k} = {value(v)}" for k, v in data.items() if not _is_tables(v)]
    for key, tables in data.items():
        if _is_tables(tables):
            for table in tables:
                lines += ["", f"[[{key}]]"]
                lines += [f"{k} = {value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def _is_tables(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


def base_config() -> dict[str, Any]:
    return {
        "name_zh": "测试区",
        "name_en": "Test District",
        "case_prefix": "TS",
        "timezone": "Asia/Shanghai",
        "street_offices": [
            {"id": "west", "name_zh": "西街道", "name_en": "West Subdistrict"},
            {
                "id": "east",
                "name_zh": "东街道",
                "name_en": "East Subdistrict",
                "triage_chat_id": -1001,
            },
        ],
        "departments": [
            {"id": "chengguan", "name_zh": "城管", "name_en": "Chengguan", "chat_id": -2001},
            {"id": "shizheng", "name_zh": "市政", "name_en": "Municipal", "chat_id": -2002},
        ],
        "categories": [
            {
                "id": "luantingche",
                "name_zh": "乱停车",
                "name_en": "Illegal parking",
                "keywords_zh": ["乱停车", "违停"],
                "keywords_en": ["Illegal Parking", "parked car"],
                "handler": "chief",
                "response_hours": 2,
                "resolve_hours": 12,
                "group": "街面秩序",
            },
            {
                "id": "jinggai",
                "name_zh": "井盖",
                "name_en": "Manhole cover",
                "keywords_zh": ["井盖"],
                "keywords_en": ["manhole"],
                "handler": "department:shizheng",
                "response_hours": 2,
                "resolve_hours": 24,
                "dedupe_radius_m": 20,
                "group": "市政设施",
            },
        ],
    }


def feature(
    lane_id: str | None,
    coordinates: Any,
    kind: str = "LineString",
    *,
    street: str = "west",
    buffer_m: Any = 20,
    **props: Any,
) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "lane_id": lane_id,
        "name_zh": f"{lane_id}胡同",
        "name_en": f"{lane_id} Hutong",
        "street": street,
        "community": "测试社区",
        "buffer_m": buffer_m,
    }
    properties.update(props)
    properties = {k: v for k, v in properties.items() if v is not None}
    return {
        "type": "Feature",
        "properties": properties,
        "geometry": {"type": kind, "coordinates": coordinates},
    }


def base_features() -> list[dict[str, Any]]:
    return [
        feature("X-001", [at(-300, 0), at(-100, 0)]),
        feature("X-002", [at(-300, 100), at(-100, 100)]),
        feature("X-003", [at(100, 0), at(300, 0)], street="east"),
    ]


def collection(features: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": features}


def write_district(
    folder: Path,
    config: dict[str, Any] | None = None,
    features: list[dict[str, Any]] | None = None,
    boundary: list[dict[str, Any]] | None = None,
) -> Path:
    """A district folder: district.toml, lanes.geojson and, if given, boundary.geojson."""
    folder.mkdir(parents=True, exist_ok=True)
    config = base_config() if config is None else config
    if boundary is not None:
        config = {**config, "boundary_file": "boundary.geojson"}
        (folder / "boundary.geojson").write_text(json.dumps(collection(boundary)), "utf-8")
    (folder / "district.toml").write_text(to_toml(config), "utf-8")
    features = base_features() if features is None else features
    (folder / "lanes.geojson").write_text(
        json.dumps(collection(features), ensure_ascii=False, indent=1), "utf-8"
    )
    return folder


def area(street: str, west: float, south: float, east: float, north: float) -> dict[str, Any]:
    ring = [at(west, south), at(east, south), at(east, north), at(west, north), at(west, south)]
    return {
        "type": "Feature",
        "properties": {"street": street},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }


def base_boundary() -> list[dict[str, Any]]:
    return [area("west", -500, -300, 0, 300), area("east", 0, -300, 500, 300)]


def only(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, "\n".join(map(str, problems))
    return problems[0]


def problems_in(tmp_path: Path, **kwargs: Any) -> list[Problem]:
    return check_district(write_district(tmp_path / "d", **kwargs))


def name(problem: Problem) -> str:
    return Path(problem.file).name


# --------------------------------------------------------------------------- the sample

TEN_NOS = [
    "私搭乱建",
    "开墙打洞",
    "乱停车",
    "乱占道经营",
    "乱搭架空线",
    "外立面破损",
    "违规广告牌匾",
    "道路破损",
    "违规经营",
    "堆物堆料",
]


@pytest.fixture(scope="module")
def sample() -> District:
    return load_district(SAMPLE_DISTRICT_DIR)


def test_sample_district_is_valid() -> None:
    assert check_district(SAMPLE_DISTRICT_DIR) == []


def test_sample_has_two_street_offices_and_enough_lanes(sample: District) -> None:
    assert sample.case_prefix == "CY"
    assert sample.timezone == "Asia/Shanghai"
    assert len(sample.lanes) >= 30
    by_street: dict[str, int] = {}
    for lane in sample.lanes.values():
        by_street[lane.street_id] = by_street.get(lane.street_id, 0) + 1
        assert lane.name_zh and lane.name_en and lane.community
        assert 10 <= lane.buffer_m <= 40
        assert lane.street_id in sample.street_offices
    assert set(by_street) == set(sample.street_offices) == {"chaowai", "sanlitun"}
    assert by_street["chaowai"] >= 30
    assert by_street["sanlitun"] >= 3


def test_sample_geometry_kinds(sample: District) -> None:
    kinds = {lane.geometry.geom_type for lane in sample.lanes.values()}
    assert {"LineString", "Polygon"} <= kinds
    with_hole = [
        lane
        for lane in sample.lanes.values()
        if lane.geometry.geom_type == "Polygon" and len(lane.geometry.interiors) > 0
    ]
    assert with_hole, "at least one polygon lane has a hole"
    for lane in sample.lanes.values():
        assert lane.geometry.is_valid
        lon_min, lat_min, lon_max, lat_max = lane.geometry.bounds
        assert 39.90 < lat_min <= lat_max < 39.95
        assert 116.42 < lon_min <= lon_max < 116.47


def test_sample_boundary_holds_every_lane(sample: District) -> None:
    assert set(sample.street_areas) == {"chaowai", "sanlitun"}
    for lane in sample.lanes.values():
        lat, lon = lane.representative_point
        assert sample.boundary.covers(shapely.Point(lon, lat)), lane.id
        assert sample.street_areas[lane.street_id].intersects(lane.geometry), lane.id


def test_sample_categories_cover_ten_nos_and_more(sample: District) -> None:
    names = {c.name_zh for c in sample.categories.values()}
    for no in TEN_NOS:
        assert no in names, no
    needed = ["垃圾", "路灯", "排水", "井盖", "绿化", "噪音", "共享单车", "小广告", "其他"]
    for word in needed:
        assert any(word in n for n in names), word
    assert "other" in sample.categories
    for c in sample.categories.values():
        assert c.name_en and c.group
        assert 0 < c.response_hours <= c.resolve_hours <= 24 * 15
        assert c.dedupe_radius_m > 0
        assert c.keywords or c.id == "other"
        assert all(k == k.lower() for k in c.keywords if k.isascii())
        assert c.assignee == "chief" or c.department_id in sample.departments
    manhole = sample.categories["jinggai"]
    assert manhole.response_hours <= 2
    assert {"井盖", "窨井", "manhole", "drain cover"} <= set(manhole.keywords)


def test_sample_departments(sample: District) -> None:
    needed = {"chengguan", "huanwei", "yuanlin", "shizheng", "jiaotong", "shuiwu", "gongdian"}
    assert needed | {"jiedao"} <= set(sample.departments)
    for dept in sample.departments.values():
        assert dept.chat_id is not None and dept.chat_id < 0
    for office in sample.street_offices.values():
        assert office.triage_chat_id is not None and office.triage_chat_id < 0


def test_name_helper(sample: District) -> None:
    lane = sample.lanes["CW-001"]
    assert sample.name(lane, "zh") == "朝阳门外大街"
    assert sample.name(lane, "en") == "Chaoyangmenwai Street"
    assert sample.name(lane, "en-US") == "Chaoyangmenwai Street"
    assert sample.name(sample, "zh") == "北京市朝阳区"
    assert sample.name(sample.street_offices["chaowai"], "en") == "Chaowai Subdistrict"
    assert sample.name(sample.categories["jinggai"], "ru") == "井盖"


def test_district_is_usable_as_cache_key(sample: District) -> None:
    assert {sample: 1}[sample] == 1


# --------------------------------------------------------------------------- loading


def test_minimal_district_loads(tmp_path: Path) -> None:
    district = load_district(write_district(tmp_path / "d"))
    assert set(district.lanes) == {"X-001", "X-002", "X-003"}
    parking = district.categories["luantingche"]
    assert parking == Category(
        id="luantingche",
        name_zh="乱停车",
        name_en="Illegal parking",
        keywords=("乱停车", "违停", "illegal parking", "parked car"),
        assignee="chief",
        department_id=None,
        response_hours=2.0,
        resolve_hours=12.0,
        dedupe_radius_m=50.0,
        group="街面秩序",
    )
    assert district.categories["jinggai"].department_id == "shizheng"
    assert district.street_offices["west"].triage_chat_id is None
    assert district.street_offices["east"].triage_chat_id == -1001
    assert district.street_areas == {}
    # No boundary file: the lanes buffered by their buffer plus a margin.
    lane = district.lanes["X-001"]
    lat, lon = latlon(-200, 100 + 20 + 50)
    assert district.boundary.covers(shapely.Point(lon, lat))
    lat, lon = latlon(-200, 100 + 20 + 150)
    assert not district.boundary.covers(shapely.Point(lon, lat))
    lat, lon = lane.representative_point
    assert lane.geometry.distance(shapely.Point(lon, lat)) < 1e-9


def test_path_may_name_the_toml_file(tmp_path: Path) -> None:
    folder = write_district(tmp_path / "d")
    assert set(load_district(folder / "district.toml").lanes) == {"X-001", "X-002", "X-003"}


def test_boundary_file_gives_street_areas(tmp_path: Path) -> None:
    district = load_district(write_district(tmp_path / "d", boundary=base_boundary()))
    assert set(district.street_areas) == {"west", "east"}
    assert district.boundary.area == pytest.approx(
        sum(a.area for a in district.street_areas.values())
    )


def test_load_raises_with_every_problem(tmp_path: Path) -> None:
    config = base_config()
    config["categories"][1]["handler"] = "department:nobody"
    config["street_offices"][0]["name_en"] = ""
    features = base_features()
    features[1]["properties"]["buffer_m"] = -5
    features[2]["geometry"]["type"] = "Point"
    features[2]["geometry"]["coordinates"] = at(0, 0)
    folder = write_district(tmp_path / "d", config=config, features=features)
    with pytest.raises(DistrictError) as caught:
        load_district(folder)
    problems = caught.value.problems
    assert len(problems) == 4, problems
    assert problems == check_district(folder)
    assert {(name(p), p.where) for p in problems} == {
        ("district.toml", "street_offices[0] (id west)"),
        ("district.toml", "categories[1] (id jinggai)"),
        ("lanes.geojson", "feature 1 (lane_id X-002)"),
        ("lanes.geojson", "feature 2 (lane_id X-003)"),
    }
    assert "4 problem(s)" in str(caught.value)


def test_problem_prints_as_file_where_message() -> None:
    p = Problem("district/lanes.geojson", "feature 3 (lane_id CW-004)", "duplicate lane_id")
    assert str(p) == "district/lanes.geojson: feature 3 (lane_id CW-004): duplicate lane_id"


def test_missing_folder(tmp_path: Path) -> None:
    p = only(check_district(tmp_path / "nowhere"))
    assert "no such folder" in p.message


# --------------------------------------------------------------------------- district.toml


def test_unreadable_toml_reports_the_line(tmp_path: Path) -> None:
    folder = write_district(tmp_path / "d")
    (folder / "district.toml").write_text('name_zh = "测试区"\nname_en = "T"\ncase_prefix = \n')
    # one problem: no "missing name" noise, and the lanes are checked without street offices
    p = only(check_district(folder))
    assert name(p) == "district.toml"
    assert p.where == "line 3"
    assert "not valid TOML" in p.message and "column" in p.message


def test_toml_that_is_not_utf8(tmp_path: Path) -> None:
    folder = write_district(tmp_path / "d")
    (folder / "district.toml").write_bytes(b'name_zh = "x"\nname_en = "\xff"\n')
    p = only(check_district(folder))
    assert (name(p), p.where) == ("district.toml", "line 2")


def test_missing_toml(tmp_path: Path) -> None:
    folder = write_district(tmp_path / "d")
    (folder / "district.toml").unlink()
    p = check_district(folder)[0]
    assert name(p) == "district.toml" and "cannot read" in p.message


@pytest.mark.parametrize(
    ("table", "what"),
    [
        ("categories", "category"),
        ("departments", "department"),
        ("street_offices", "street office"),
    ],
)
def test_duplicate_ids(tmp_path: Path, table: str, what: str) -> None:
    config = base_config()
    config[table].append(copy.deepcopy(config[table][0]))
    ident = config[table][0]["id"]
    p = only(problems_in(tmp_path, config=config))
    assert name(p) == "district.toml"
    assert p.where == f"{table}[{len(config[table]) - 1}] (id {ident})"
    assert f"duplicate {what} id" in p.message and f"{table}[0]" in p.message


def test_handler_names_unknown_department(tmp_path: Path) -> None:
    config = base_config()
    config["categories"][1]["handler"] = "department:shuiwu"
    p = only(problems_in(tmp_path, config=config))
    assert (name(p), p.where) == ("district.toml", "categories[1] (id jinggai)")
    assert "unknown department 'shuiwu'" in p.message


def test_category_without_handler(tmp_path: Path) -> None:
    config = base_config()
    del config["categories"][0]["handler"]
    p = only(problems_in(tmp_path, config=config))
    assert (p.where, p.message) == ("categories[0] (id luantingche)", "missing handler")


@pytest.mark.parametrize("handler", ["boss", "department:", "chief "])
def test_malformed_handler(tmp_path: Path, handler: str) -> None:
    config = base_config()
    config["categories"][0]["handler"] = handler
    problems = problems_in(tmp_path, config=config)
    if handler == "chief ":  # surrounding blanks are forgiven
        assert problems == []
    else:
        assert only(problems).where == "categories[0] (id luantingche)"


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("response_hours", 0, "must be positive"),
        ("resolve_hours", -24, "must be positive"),
        ("dedupe_radius_m", 0, "must be positive"),
        ("response_hours", "two", "must be a number"),
        ("response_hours", True, "must be a number"),
        ("resolve_hours", 1, "shorter than response_hours"),
    ],
)
def test_bad_time_limits(tmp_path: Path, key: str, value: Any, words: str) -> None:
    config = base_config()
    config["categories"][1][key] = value
    p = only(problems_in(tmp_path, config=config))
    assert (name(p), p.where) == ("district.toml", "categories[1] (id jinggai)")
    assert words in p.message


def test_missing_time_limit(tmp_path: Path) -> None:
    config = base_config()
    del config["categories"][0]["resolve_hours"]
    p = only(problems_in(tmp_path, config=config))
    assert p.message == "missing resolve_hours"


@pytest.mark.parametrize(
    ("path", "where"),
    [
        (("name_en",), "top level"),
        (("street_offices", 1, "name_zh"), "street_offices[1] (id east)"),
        (("departments", 0, "name_en"), "departments[0] (id chengguan)"),
        (("categories", 0, "name_zh"), "categories[0] (id luantingche)"),
        (("categories", 1, "id"), "categories[1]"),
    ],
)
def test_missing_names(tmp_path: Path, path: tuple[Any, ...], where: str) -> None:
    config = base_config()
    target: Any = config
    for step in path[:-1]:
        target = target[step]
    del target[path[-1]]
    p = only(problems_in(tmp_path, config=config))
    assert (name(p), p.where) == ("district.toml", where)
    assert p.message == f"missing {path[-1]}"


def test_empty_name_is_missing_too(tmp_path: Path) -> None:
    config = base_config()
    config["departments"][1]["name_zh"] = "  "
    p = only(problems_in(tmp_path, config=config))
    assert (p.where, p.message) == ("departments[1] (id shizheng)", "name_zh is empty")


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("case_prefix", "cy-", "case_prefix"),
        ("timezone", "Asia/Peking", "time zone"),
    ],
)
def test_bad_top_level_values(tmp_path: Path, key: str, value: str, words: str) -> None:
    config = base_config() | {key: value}
    p = only(problems_in(tmp_path, config=config))
    assert p.where == "top level" and words in p.message


def test_chat_id_must_be_an_integer(tmp_path: Path) -> None:
    config = base_config()
    config["departments"][0]["chat_id"] = "-2001"
    p = only(problems_in(tmp_path, config=config))
    assert p.where == "departments[0] (id chengguan)" and "chat id" in p.message


def test_bad_id_characters(tmp_path: Path) -> None:
    config = base_config()
    config["departments"][0]["id"] = "城管"
    config["categories"] = [config["categories"][0]]
    assert "must be letters" in only(problems_in(tmp_path, config=config)).message


def test_no_categories_no_offices(tmp_path: Path) -> None:
    config = base_config()
    del config["categories"]
    del config["street_offices"]
    problems = problems_in(tmp_path, config=config)
    wheres = {p.where for p in problems if name(p) == "district.toml"}
    assert {"categories", "street_offices"} <= wheres


# --------------------------------------------------------------------------- lanes.geojson


def test_unreadable_geojson_reports_the_line(tmp_path: Path) -> None:
    folder = write_district(tmp_path / "d")
    (folder / "lanes.geojson").write_text('{"type": "FeatureCollection",\n "features": [,]}\n')
    p = only(check_district(folder))
    assert (name(p), p.where) == ("lanes.geojson", "line 2")
    assert "not valid JSON" in p.message


@pytest.mark.parametrize(
    "data",
    [[], {"type": "Feature"}, {"type": "FeatureCollection", "features": {}}],
)
def test_geojson_that_is_not_a_feature_collection(tmp_path: Path, data: Any) -> None:
    folder = write_district(tmp_path / "d")
    (folder / "lanes.geojson").write_text(json.dumps(data))
    p = only(check_district(folder))
    assert (name(p), p.where) == ("lanes.geojson", "top level")
    assert "invalid GeoJSON" in p.message


def test_empty_feature_collection(tmp_path: Path) -> None:
    p = only(problems_in(tmp_path, features=[]))
    assert (name(p), p.where) == ("lanes.geojson", "top level") and "no lanes" in p.message


def test_feature_that_is_not_a_feature(tmp_path: Path) -> None:
    features: list[Any] = [*base_features(), {"type": "LineString", "coordinates": []}]
    p = only(problems_in(tmp_path, features=features))
    assert (p.where, p.message) == ("feature 3", "invalid GeoJSON: not a Feature object")


def test_feature_without_geometry(tmp_path: Path) -> None:
    features = base_features()
    features[0]["geometry"] = None
    p = only(problems_in(tmp_path, features=features))
    assert p.where == "feature 0 (lane_id X-001)" and "no geometry" in p.message


@pytest.mark.parametrize("kind", ["Point", "MultiPoint"])
def test_wrong_geometry_type(tmp_path: Path, kind: str) -> None:
    features = base_features()
    coords = at(0, 0) if kind == "Point" else [at(0, 0), at(1, 1)]
    features.append(feature("X-004", coords, kind))
    p = only(problems_in(tmp_path, features=features))
    assert (name(p), p.where) == ("lanes.geojson", "feature 3 (lane_id X-004)")
    assert p.message.startswith(f"wrong geometry type {kind}")


def test_unknown_geometry_type(tmp_path: Path) -> None:
    features = base_features()
    features[0]["geometry"]["type"] = "Linestring"
    p = only(problems_in(tmp_path, features=features))
    assert "unknown geometry type 'Linestring'" in p.message


def test_self_intersecting_polygon(tmp_path: Path) -> None:
    bowtie = [[at(0, 200), at(100, 300), at(100, 200), at(0, 300), at(0, 200)]]
    features = [*base_features(), feature("X-004", bowtie, "Polygon")]
    p = only(problems_in(tmp_path, features=features))
    assert (name(p), p.where) == ("lanes.geojson", "feature 3 (lane_id X-004)")
    assert p.message.startswith("invalid geometry: Self-intersection at [116.44")


def test_polygon_with_too_short_ring(tmp_path: Path) -> None:
    features = [*base_features(), feature("X-004", [[at(0, 0), at(1, 1), at(0, 0)]], "Polygon")]
    p = only(problems_in(tmp_path, features=features))
    assert p.where == "feature 3 (lane_id X-004)" and "invalid" in p.message


def test_hole_outside_its_polygon(tmp_path: Path) -> None:
    outer = [at(0, 200), at(100, 200), at(100, 300), at(0, 300), at(0, 200)]
    hole = [at(200, 200), at(250, 200), at(250, 250), at(200, 250), at(200, 200)]
    features = [*base_features(), feature("X-004", [outer, hole], "Polygon")]
    p = only(problems_in(tmp_path, features=features))
    assert p.message.startswith("invalid geometry: Hole lies outside shell")


def test_line_crossing_itself(tmp_path: Path) -> None:
    zigzag = [at(0, 200), at(100, 300), at(100, 200), at(0, 300)]
    features = [*base_features(), feature("X-004", zigzag)]
    p = only(problems_in(tmp_path, features=features))
    assert "crosses" in p.message


def test_line_of_one_repeated_point(tmp_path: Path) -> None:
    features = [*base_features(), feature("X-004", [at(0, 200), at(0, 200)])]
    p = only(problems_in(tmp_path, features=features))
    assert p.message.startswith("invalid geometry: Too few points")


def test_a_branching_multilinestring_is_fine(tmp_path: Path) -> None:
    t_shape = [[at(0, 200), at(100, 200)], [at(50, 200), at(50, 260)]]
    features = [*base_features(), feature("X-004", t_shape, "MultiLineString")]
    assert problems_in(tmp_path, features=features) == []


def test_coordinates_outside_wgs84(tmp_path: Path) -> None:
    features = base_features()
    features[1]["geometry"]["coordinates"][1] = [200.0, 39.92]
    p = only(problems_in(tmp_path, features=features))
    assert (name(p), p.where) == ("lanes.geojson", "feature 1 (lane_id X-002)")
    assert "outside WGS84" in p.message and "swapped" not in p.message


def test_swapped_coordinates_in_beijing(tmp_path: Path) -> None:
    features = base_features()
    features[2]["geometry"]["coordinates"] = [[lat, lon] for lon, lat in [at(0, 0), at(50, 0)]]
    p = only(problems_in(tmp_path, features=features))
    assert p.where == "feature 2 (lane_id X-003)"
    assert "outside WGS84" in p.message and "swapped" in p.message


def test_swapped_coordinates_in_urumqi(tmp_path: Path) -> None:
    # Urumqi (43.8 N, 87.6 E): swapped, the latitude 87.6 is still in range but not China's.
    features = [
        feature(f"U-{i}", [[87.60 + i / 1000, 43.80], [87.61 + i / 1000, 43.80]]) for i in range(3)
    ]
    features[1]["geometry"]["coordinates"] = [[43.80, 87.601], [43.80, 87.611]]
    config = base_config() | {"timezone": "Asia/Urumqi"}
    p = only(problems_in(tmp_path, config=config, features=features))
    assert p.where == "feature 1 (lane_id U-1)" and "look swapped" in p.message


def test_far_from_the_time_zone(tmp_path: Path) -> None:
    features = base_features()
    features[0]["geometry"]["coordinates"] = [[2.35, 48.85], [2.36, 48.85]]  # Paris
    p = only(problems_in(tmp_path, features=features))
    assert p.where == "feature 0 (lane_id X-001)"
    assert "far from the district's time zone Asia/Shanghai" in p.message


def test_lane_far_from_the_others(tmp_path: Path) -> None:
    features = base_features()
    features[0]["geometry"]["coordinates"] = [[121.47, 31.23], [121.48, 31.23]]  # Shanghai
    p = only(problems_in(tmp_path, features=features))
    assert p.where == "feature 0 (lane_id X-001)"
    assert "km from the rest of the district" in p.message


def test_nan_coordinates(tmp_path: Path) -> None:
    folder = write_district(tmp_path / "d")
    text = (folder / "lanes.geojson").read_text()
    data = json.loads(text)
    data["features"][0]["geometry"]["coordinates"][0][0] = math.nan
    (folder / "lanes.geojson").write_text(json.dumps(data))  # writes the NaN literal
    p = only(check_district(folder))
    assert p.where == "feature 0 (lane_id X-001)" and "finite" in p.message


def test_duplicate_lane_ids(tmp_path: Path) -> None:
    features = base_features()
    features[2]["properties"]["lane_id"] = "X-001"
    p = only(problems_in(tmp_path, features=features))
    assert (name(p), p.where) == ("lanes.geojson", "feature 2 (lane_id X-001)")
    assert "duplicate lane_id 'X-001'" in p.message and "feature 0" in p.message


def test_lane_of_unknown_street_office(tmp_path: Path) -> None:
    features = base_features()
    features[1]["properties"]["street"] = "north"
    p = only(problems_in(tmp_path, features=features))
    assert (name(p), p.where) == ("lanes.geojson", "feature 1 (lane_id X-002)")
    assert "unknown street office 'north'" in p.message


@pytest.mark.parametrize("key", ["lane_id", "name_zh", "name_en", "street", "community"])
def test_lane_missing_property(tmp_path: Path, key: str) -> None:
    features = base_features()
    del features[1]["properties"][key]
    p = only(problems_in(tmp_path, features=features))
    expected = "feature 1" if key == "lane_id" else "feature 1 (lane_id X-002)"
    assert (name(p), p.where, p.message) == ("lanes.geojson", expected, f"missing {key}")


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (0, "must be positive"),
        (-10, "must be positive"),
        ("20", "must be a number"),
        (5000, "larger"),
    ],
)
def test_bad_buffer(tmp_path: Path, value: Any, words: str) -> None:
    features = base_features()
    features[0]["properties"]["buffer_m"] = value
    p = only(problems_in(tmp_path, features=features))
    assert p.where == "feature 0 (lane_id X-001)" and words in p.message


def test_lane_id_unfit_for_a_deep_link(tmp_path: Path) -> None:
    features = base_features()
    features[0]["properties"]["lane_id"] = "X 001"
    p = only(problems_in(tmp_path, features=features))
    assert p.where == "feature 0 (lane_id X 001)" and "must be letters" in p.message


# --------------------------------------------------------------------------- boundary.geojson


def test_boundary_with_unknown_street(tmp_path: Path) -> None:
    boundary = [*base_boundary(), area("north", -500, 300, 500, 600)]
    p = only(problems_in(tmp_path, boundary=boundary))
    assert (name(p), p.where) == ("boundary.geojson", "feature 2 (street north)")
    assert "unknown street office" in p.message


def test_boundary_missing_a_street_office(tmp_path: Path) -> None:
    p = only(problems_in(tmp_path, boundary=base_boundary()[:1]))
    assert (name(p), p.where) == ("boundary.geojson", "street office east")


def test_boundary_must_be_polygons(tmp_path: Path) -> None:
    boundary = base_boundary()
    boundary[0]["geometry"] = {"type": "LineString", "coordinates": [at(0, 0), at(1, 1)]}
    problems = problems_in(tmp_path, boundary=boundary)
    assert problems[0].where == "feature 0 (street west)"
    assert "wrong geometry type LineString" in problems[0].message


def test_overlapping_street_areas(tmp_path: Path) -> None:
    boundary = [area("west", -500, -300, 50, 300), area("east", 0, -300, 500, 300)]
    p = only(problems_in(tmp_path, boundary=boundary))
    assert (name(p), p.where) == ("boundary.geojson", "feature 1 (street east)")
    assert "overlaps the area of 'west' by 30,000 m²" in p.message
    # a sliver where digitised borders disagree is tolerated
    boundary = [area("west", -500, -300, 0.1, 300), area("east", 0, -300, 500, 300)]
    assert problems_in(tmp_path / "sliver", boundary=boundary) == []


def test_lane_outside_the_boundary(tmp_path: Path) -> None:
    features = [*base_features(), feature("X-004", [at(0, 1000), at(100, 1000)])]
    p = only(problems_in(tmp_path, features=features, boundary=base_boundary()))
    assert (name(p), p.where) == ("lanes.geojson", "feature 3 (lane_id X-004)")
    assert "outside the district boundary" in p.message


def test_lane_outside_its_street_area(tmp_path: Path) -> None:
    features = base_features()
    features[2]["properties"]["street"] = "west"  # X-003 lies in the east
    p = only(problems_in(tmp_path, features=features, boundary=base_boundary()))
    assert p.where == "feature 2 (lane_id X-003)" and "street office 'west'" in p.message


# --------------------------------------------------------------------------- helpers


def test_haversine() -> None:
    # one degree of latitude is about 111.2 km
    assert haversine_m(39.0, 116.0, 40.0, 116.0) == pytest.approx(111_195, rel=1e-3)
    assert haversine_m(39.92, 116.44, 39.92, 116.44) == 0


def test_projection_matches_great_circle_at_street_scale(sample: District) -> None:
    proj = sample.projection
    a = (39.9200, 116.4380)
    b = (39.9280, 116.4510)
    ax, ay = proj.xy(*a)
    bx, by = proj.xy(*b)
    assert math.hypot(bx - ax, by - ay) == pytest.approx(haversine_m(*a, *b), rel=1e-3)
    assert proj.latlon(*proj.xy(*a)) == pytest.approx(a)


# --------------------------------------------------------------------------- CLI


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    district_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return int(args.func(args))


def test_cli_check_valid(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("district", "check", "--dir", str(SAMPLE_DISTRICT_DIR)) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    assert "OK" in out[0] and "2 street offices" in out[0] and "lanes" in out[0]


def test_cli_check_invalid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    features = base_features()
    features[0]["properties"]["street"] = "nowhere"
    features[1]["properties"]["buffer_m"] = 0
    folder = write_district(tmp_path / "d", features=features)
    assert run_cli("district", "check", "--dir", str(folder)) == 1
    captured = capsys.readouterr()
    lanes = folder / "lanes.geojson"
    assert captured.out.splitlines() == [
        f"{lanes}: feature 0 (lane_id X-001): unknown street office 'nowhere' "
        "(district.toml has: east, west)",
        f"{lanes}: feature 1 (lane_id X-002): buffer_m must be positive, not 0",
    ]
    assert "2 problem(s)" in captured.err


def test_cli_show_json(capsys: pytest.CaptureFixture[str], sample: District) -> None:
    assert run_cli("district", "show", "--json", "--dir", str(SAMPLE_DISTRICT_DIR)) == 0
    out = capsys.readouterr().out
    assert "朝阳门外大街" in out  # not \u-escaped
    data = json.loads(out)
    assert data["case_prefix"] == "CY"
    assert len(data["lanes"]) == len(sample.lanes)
    first = next(lane for lane in data["lanes"] if lane["id"] == "CW-001")
    assert first["name_zh"] == "朝阳门外大街"
    assert first["street"] == "chaowai" and first["community"] and first["buffer_m"] > 0
    point = shapely.Point(first["lon"], first["lat"])
    assert sample.lanes["CW-001"].geometry.distance(point) < 1e-6
    assert {c["id"] for c in data["categories"]} == set(sample.categories)
    assert {d["id"] for d in data["departments"]} == set(sample.departments)


def test_cli_show_json_names_each_categorys_assignee_as_the_file_does(
    capsys: pytest.CaptureFixture[str], sample: District
) -> None:
    """`Category.assignee` is read from, and shown as, the district file's `handler` key."""
    assert run_cli("district", "show", "--json", "--dir", str(SAMPLE_DISTRICT_DIR)) == 0
    shown = {c["id"]: c["handler"] for c in json.loads(capsys.readouterr().out)["categories"]}
    assert shown == {c.id: c.assignee for c in sample.categories.values()}
    assert shown["sidaluanjian"] == "department:chengguan"


def test_cli_show_text_and_invalid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("district", "show", "--dir", str(SAMPLE_DISTRICT_DIR)) == 0
    assert "CW-001" in capsys.readouterr().out
    features = base_features()
    features[0]["properties"]["street"] = "nowhere"
    folder = write_district(tmp_path / "d", features=features)
    assert run_cli("district", "show", "--json", "--dir", str(folder)) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "unknown street office" in captured.err


def test_cli_reads_the_folder_from_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.config import get_settings

    folder = write_district(tmp_path / "d")
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("DISTRICT_DIR", str(folder))
    get_settings.cache_clear()
    try:
        assert run_cli("district", "check") == 0
    finally:
        get_settings.cache_clear()
    assert str(folder) in capsys.readouterr().out


def test_cli_through_the_bot_entry_point(capsys: pytest.CaptureFixture[str]) -> None:
    from bot.__main__ import main

    assert main(["district", "check", "--dir", str(SAMPLE_DISTRICT_DIR)]) == 0
    assert "OK" in capsys.readouterr().out
