"""Point → lane: edges, the sample district, a property test against brute force, speed."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.config import SAMPLE_DISTRICT_DIR
from bot.domain.district import District, load_district
from bot.domain.routing.locate import LaneMatch, Locator, NoLane, OutsideDistrict
from tests.test_district import area, at, feature, latlon, write_district


@pytest.fixture(scope="module")
def sample() -> District:
    return load_district(SAMPLE_DISTRICT_DIR)


@pytest.fixture(scope="module")
def sample_locator(sample: District) -> Locator:
    return Locator(sample)


def square(west: float, south: float, east: float, north: float) -> list[list[float]]:
    return [at(west, south), at(east, south), at(east, north), at(west, north), at(west, south)]


@pytest.fixture(scope="module")
def town(tmp_path_factory: pytest.TempPathFactory) -> Locator:
    """A small district laid out in metres around (39.92 N, 116.44 E).

    A-001, A-002: parallel streets 30 m apart (buffer 20 m, so their buffers overlap);
    A-003: an estate, 200 × 200 m with a 120 × 120 m hole (buffer 10 m);
    A-004: a street running north from the estate's north edge (buffer 15 m);
    T-1, T-2: the same street entered twice (a tie);
    A-007: a street along the district's southern boundary line.
    Street offices: "west" for x < 250 m, "east" beyond.
    """
    features = [
        feature("A-001", [at(-200, 0), at(200, 0)]),
        feature("A-002", [at(-200, 30), at(200, 30)]),
        feature(
            "A-003",
            [square(-100, 100, 100, 300), square(-60, 140, 60, 260)],
            "Polygon",
            buffer_m=10,
        ),
        feature("A-004", [at(0, 300), at(0, 400)], buffer_m=15),
        feature("T-2", [at(320, -100), at(320, 100)], street="east", buffer_m=25),
        feature("T-1", [at(320, -100), at(320, 100)], street="east", buffer_m=25),
        feature("A-007", [at(-400, -300), at(200, -300)]),
    ]
    boundary = [area("west", -500, -300, 250, 500), area("east", 250, -300, 600, 500)]
    folder = write_district(tmp_path_factory.mktemp("town"), features=features, boundary=boundary)
    return Locator(load_district(folder))


def find(locator: Locator, east: float, north: float) -> Any:
    return locator.locate(*latlon(east, north))


# --------------------------------------------------------------------------- edges


def test_point_on_a_line(town: Locator) -> None:
    found = find(town, 50, 0)
    assert isinstance(found, LaneMatch)
    assert (found.lane_id, found.street_id, found.how) == ("A-001", "west", "buffer")
    assert found.distance_m < 1e-6


def test_point_on_a_polygon_boundary_is_inside(town: Locator) -> None:
    for east, north in [(-100, 100), (0, 100), (100, 200)]:  # a corner, two edges
        found = find(town, east, north)
        assert isinstance(found, LaneMatch)
        assert (found.lane_id, found.how) == ("A-003", "inside")
        assert found.distance_m == pytest.approx(0, abs=1e-6)


def test_between_two_lanes_the_nearest_wins(town: Locator) -> None:
    near_first = find(town, 50, 12)
    near_second = find(town, 50, 18)
    assert isinstance(near_first, LaneMatch) and isinstance(near_second, LaneMatch)
    assert near_first.lane_id == "A-001"
    assert near_first.distance_m == pytest.approx(12, abs=0.01)
    assert near_second.lane_id == "A-002"
    assert near_second.distance_m == pytest.approx(12, abs=0.01)


def test_a_polygon_holding_the_point_beats_a_line_within_its_buffer(town: Locator) -> None:
    found = find(town, 5, 298)  # inside the estate, 5.4 m from A-004's end
    assert isinstance(found, LaneMatch)
    assert (found.lane_id, found.how, found.distance_m) == ("A-003", "inside", 0.0)
    beyond = find(town, 5, 302)  # just north of the estate: 2 m from it, 5 m from A-004
    assert isinstance(beyond, LaneMatch)
    assert (beyond.lane_id, beyond.how) == ("A-003", "buffer")


def test_ties_go_to_the_smallest_lane_id(town: Locator) -> None:
    for east in (320, 330, 310):
        found = find(town, east, 0)
        assert isinstance(found, LaneMatch)
        assert (found.lane_id, found.street_id) == ("T-1", "east")


def test_in_a_polygon_hole(town: Locator) -> None:
    middle = find(town, 0, 200)  # 60 m from the hole's edge: on no lane
    assert middle == NoLane(street_id="west")
    edge = find(town, 0, 145)  # in the hole, 5 m from its edge: the estate's buffer
    assert isinstance(edge, LaneMatch)
    assert (edge.lane_id, edge.how) == ("A-003", "buffer")
    assert edge.distance_m == pytest.approx(5, abs=0.01)
    ring = find(town, 0, 120)  # between the outer edge and the hole
    assert isinstance(ring, LaneMatch) and ring.how == "inside"


def test_just_inside_and_just_outside_the_buffer(town: Locator) -> None:
    inside = find(town, 0, -19.9)
    assert isinstance(inside, LaneMatch) and inside.lane_id == "A-001"
    assert inside.distance_m == pytest.approx(19.9, abs=0.01)
    assert find(town, 0, -20.1) == NoLane(street_id="west")


@pytest.mark.parametrize(
    ("lat", "lon"),
    [
        (math.nan, 116.44),
        (39.92, math.nan),
        (math.inf, 116.44),
        (39.92, -math.inf),
        (91.0, 116.44),
        (-90.5, 116.44),
        (39.92, 180.5),
        (39.92, -181.0),
    ],
)
def test_impossible_coordinates_are_outside(town: Locator, lat: float, lon: float) -> None:
    assert town.locate(lat, lon) == OutsideDistrict(distance_m=math.inf)
    assert town.lanes_near(lat, lon, 100) == []


def test_null_island_is_outside(town: Locator) -> None:
    found = town.locate(0.0, 0.0)
    assert isinstance(found, OutsideDistrict)
    assert 12_000_000 < found.distance_m < 13_000_000  # Beijing is ~12,200 km from (0, 0)


def test_outside_the_district(town: Locator) -> None:
    found = find(town, 0, -800)  # 500 m south of the boundary
    assert isinstance(found, OutsideDistrict)
    assert found.distance_m == pytest.approx(500, rel=1e-3)
    far = town.locate(31.23, 121.47)  # Shanghai
    assert isinstance(far, OutsideDistrict)
    assert 1_000_000 < far.distance_m < 1_100_000


def test_a_border_street_reaches_beyond_the_boundary(town: Locator) -> None:
    found = find(town, 0, -310)  # 10 m past the boundary line, on the border street's far kerb
    assert isinstance(found, LaneMatch) and found.lane_id == "A-007"
    assert isinstance(find(town, 0, -330), OutsideDistrict)


def test_no_lane_goes_to_the_street_office_whose_area_holds_it(town: Locator) -> None:
    assert find(town, -300, -200) == NoLane(street_id="west")
    assert find(town, 500, -200) == NoLane(street_id="east")
    assert find(town, 260, 400) == NoLane(street_id="east")  # nearer west's lanes, east's area


def test_without_areas_no_lane_goes_to_the_nearest_lanes_street(tmp_path: Path) -> None:
    # no boundary file: the boundary is derived from the lanes, and there are no areas
    locator = Locator(load_district(write_district(tmp_path / "d")))
    assert locator.locate(*latlon(-200, 60)) == NoLane(street_id="west")  # near
    assert locator.locate(*latlon(200, -60)) == NoLane(street_id="east")  # near X-003
    assert isinstance(locator.locate(*latlon(200, -400)), OutsideDistrict)


def test_lanes_near(town: Locator) -> None:
    found = town.lanes_near(*latlon(50, 14), 40)
    assert [m.lane_id for m in found] == ["A-001", "A-002"]
    assert [m.how for m in found] == ["buffer", "buffer"]
    assert [m.distance_m for m in found] == pytest.approx([14, 16], abs=0.01)
    tie = town.lanes_near(*latlon(320, 0), 10)
    assert [m.lane_id for m in tie] == ["T-1", "T-2"]  # equal distance: by id
    wider = town.lanes_near(*latlon(0, 60), 50)
    assert [(m.lane_id, m.how) for m in wider] == [("A-002", "near"), ("A-003", "near")]
    assert wider[0].distance_m < wider[1].distance_m
    inside = town.lanes_near(*latlon(0, 120), 0)
    assert [(m.lane_id, m.how) for m in inside] == [("A-003", "inside")]
    assert town.lanes_near(*latlon(0, 60), -1) == []
    assert town.lanes_near(*latlon(0, 60), math.nan) == []


# --------------------------------------------------------------------------- the sample


def test_each_lanes_representative_point_locates_back(
    sample: District, sample_locator: Locator
) -> None:
    for lane in sample.lanes.values():
        lat, lon = lane.representative_point
        for point in [(lat, lon), (round(lat, 7), round(lon, 7))]:  # as `show --json` prints
            found = sample_locator.locate(*point)
            assert isinstance(found, LaneMatch), (lane.id, found)
            assert (found.lane_id, found.street_id) == (lane.id, lane.street_id)
            assert found.distance_m < 0.01


def test_sample_places(sample_locator: Locator) -> None:
    stadium = sample_locator.locate(39.9318, 116.4460)  # Workers' Stadium: no lane
    assert stadium == NoLane(street_id="sanlitun")
    school = sample_locator.locate(39.9185, 116.4435)  # the school in the estate's hole
    assert school == NoLane(street_id="chaowai")
    street = sample_locator.locate(39.92362, 116.4400)  # 朝阳门外大街
    assert isinstance(street, LaneMatch) and street.lane_id == "CW-001"
    assert isinstance(sample_locator.locate(39.9100, 116.4400), OutsideDistrict)


# --------------------------------------------------------------------------- property


def _brute_force(district: District, lat: float, lon: float) -> dict[str, float]:
    projection = district.projection
    point = shapely.Point(*projection.xy(lat, lon))
    return {
        lane.id: float(projection.forward(lane.geometry).distance(point))
        for lane in district.lanes.values()
    }


def _bbox(district: District, margin: float = 0.003) -> tuple[float, float, float, float]:
    west, south, east, north = (float(v) for v in district.boundary.bounds)
    return south - margin, north + margin, west - margin, east + margin


_SAMPLE = load_district(SAMPLE_DISTRICT_DIR)
_SOUTH, _NORTH, _WEST, _EAST = _bbox(_SAMPLE)
_REPS = sorted(lane.representative_point for lane in _SAMPLE.lanes.values())

anywhere = st.tuples(
    st.floats(_SOUTH, _NORTH, allow_nan=False), st.floats(_WEST, _EAST, allow_nan=False)
)
# near a lane: a representative point moved up to ~70 m, where buffers meet and end
near_lanes = st.builds(
    lambda p, dlat, dlon: (p[0] + dlat, p[1] + dlon),
    st.sampled_from(_REPS),
    st.floats(-0.0006, 0.0006),
    st.floats(-0.0008, 0.0008),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(point=st.one_of(anywhere, near_lanes))
def test_locate_agrees_with_brute_force(point: tuple[float, float]) -> None:
    locator = _sample_locator()
    lat, lon = point
    found = locator.locate(lat, lon)
    distances = _brute_force(_SAMPLE, lat, lon)
    covering = sorted(
        (d, lane_id) for lane_id, d in distances.items() if d <= _SAMPLE.lanes[lane_id].buffer_m
    )
    if isinstance(found, LaneMatch):
        lane = _SAMPLE.lanes[found.lane_id]
        assert found.street_id == lane.street_id
        assert found.distance_m == pytest.approx(distances[found.lane_id], abs=1e-6)
        assert found.distance_m <= lane.buffer_m
        # nobody nearer; at equal distance, nobody with a smaller id
        assert (found.distance_m, found.lane_id) == pytest.approx(covering[0])
        assert covering[0][1] == found.lane_id
        xy = shapely.Point(*_SAMPLE.projection.xy(lat, lon))
        areal = lane.geometry.geom_type.endswith("Polygon")
        inside = areal and _SAMPLE.projection.forward(lane.geometry).covers(xy)
        assert (found.how == "inside") == inside
        assert found.how in ("inside", "buffer")
    else:
        assert covering == [], (found, covering[:3])
        holder = _SAMPLE.boundary.covers(shapely.Point(lon, lat))
        if isinstance(found, NoLane):
            assert holder
            assert found.street_id is not None
            assert _SAMPLE.street_areas[found.street_id].covers(shapely.Point(lon, lat))
        else:
            assert isinstance(found, OutsideDistrict)
            assert not holder
            assert found.distance_m > 0


_LOCATOR: list[Locator] = []


def _sample_locator() -> Locator:
    if not _LOCATOR:
        _LOCATOR.append(Locator(_SAMPLE))
    return _LOCATOR[0]


@settings(max_examples=100, deadline=None)
@given(
    point=st.one_of(anywhere, near_lanes),
    radius=st.floats(0, 200, allow_nan=False),
)
def test_lanes_near_agrees_with_brute_force(point: tuple[float, float], radius: float) -> None:
    lat, lon = point
    found = _sample_locator().lanes_near(lat, lon, radius)
    distances = _brute_force(_SAMPLE, lat, lon)
    expected = sorted((d, lane_id) for lane_id, d in distances.items() if d <= radius)
    assert [m.lane_id for m in found] == [lane_id for _, lane_id in expected]
    assert [m.distance_m for m in found] == pytest.approx([d for d, _ in expected])


# --------------------------------------------------------------------------- speed


def test_fast_among_ten_thousand_lanes(tmp_path: Path) -> None:
    """10,000 hutongs 80 m long on a 100 m grid (10 × 10 km): lookups stay in tens of µs."""
    features = []
    for i in range(100):
        for j in range(100):
            x, y = i * 100.0, j * 100.0
            end = at(x + 80, y) if (i + j) % 2 else at(x, y + 80)
            street = "west" if i < 50 else "east"
            features.append(feature(f"G-{i:02d}-{j:02d}", [at(x, y), end], street=street))
    boundary = [area("west", -100, -100, 5000, 10000), area("east", 5000, -100, 10100, 10000)]
    district = load_district(write_district(tmp_path / "big", features=features, boundary=boundary))
    locator = Locator(district)
    points = [latlon(i * 7.31 % 10000, i * 13.7 % 10000) for i in range(5000)]
    # warm up, then time
    for p in points[:100]:
        locator.locate(*p)
    started = time.perf_counter()
    results = [locator.locate(*p) for p in points]
    per_lookup = (time.perf_counter() - started) / len(points)
    assert any(isinstance(r, LaneMatch) for r in results)
    assert any(isinstance(r, NoLane) for r in results)
    # typically 20–40 µs on a laptop; the bound leaves room for a busy CI machine
    assert per_lookup < 500e-6, f"{per_lookup * 1e6:.0f} µs per lookup"
    # and the answer is the brute-force one for a sample of points
    for p, r in list(zip(points, results, strict=True))[::250]:
        lat, lon = p
        distances = _brute_force(district, lat, lon)
        covering = sorted((d, k) for k, d in distances.items() if d <= district.lanes[k].buffer_m)
        if isinstance(r, LaneMatch):
            assert covering[0][1] == r.lane_id
        else:
            assert covering == []
