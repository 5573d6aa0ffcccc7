"""The district as data: street offices, departments, categories, lanes and the boundary.

A district lives in one folder (the default is the sample shipped in `district/`):

- `district.toml`: names, case-number prefix, time zone, street offices (街道), departments,
  categories with their assignees and time limits;
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

The modules: `model` (the data classes), `geometry` (projection, distances, derived boundary,
representative points), `checks` (what values and coordinates must be), `load` (district.toml
and the whole pass), `geojson` (the lanes and areas files). Callers import from here.
"""

from bot.domain.district.checks import (
    AREA_TYPES,
    GEOJSON_GEOMETRY_TYPES,
    LANE_TYPES,
    LINE_TYPES,
    MAX_AREA_OVERLAP_M2,
    MAX_BUFFER_M,
    OUTLIER_KM,
    Region,
)
from bot.domain.district.geometry import (
    DERIVED_MARGIN_M,
    EARTH_RADIUS_M,
    REPRESENTATIVE_CLEARANCE_M,
    Geometry,
    LocalProjection,
    haversine_m,
    projection_for,
)
from bot.domain.district.load import DEFAULT_LANES_FILE, check_district, load_district
from bot.domain.district.model import (
    DEFAULT_DEDUPE_RADIUS_M,
    PRIVACY_LIMITS,
    Category,
    Department,
    District,
    DistrictError,
    Lane,
    Named,
    Privacy,
    Problem,
    StreetOffice,
)
from bot.domain.localtime import DEFAULT_TIMEZONE

__all__ = [
    "AREA_TYPES",
    "DEFAULT_DEDUPE_RADIUS_M",
    "DEFAULT_LANES_FILE",
    "DEFAULT_TIMEZONE",
    "DERIVED_MARGIN_M",
    "EARTH_RADIUS_M",
    "GEOJSON_GEOMETRY_TYPES",
    "LANE_TYPES",
    "LINE_TYPES",
    "MAX_AREA_OVERLAP_M2",
    "MAX_BUFFER_M",
    "OUTLIER_KM",
    "PRIVACY_LIMITS",
    "REPRESENTATIVE_CLEARANCE_M",
    "Category",
    "Department",
    "District",
    "DistrictError",
    "Geometry",
    "Lane",
    "LocalProjection",
    "Named",
    "Privacy",
    "Problem",
    "Region",
    "StreetOffice",
    "check_district",
    "haversine_m",
    "load_district",
    "projection_for",
]
