"""A synthetic district of any size: a grid of lanes in Beijing, the sample's categories.

Lanes alternate between short zig-zag streets and small estates (polygons), laid out on a
regular grid so that every lane's representative point is on that lane alone; lanes are split
evenly over `streets` street offices. Departments and categories are copied from the sample
district, so classification and dispatch behave as in production.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.config import SAMPLE_DISTRICT_DIR

LAT0, LON0 = 39.90, 116.40
SPACING_M = 120.0
M_PER_DEG_LAT = 111_320.0
TRIAGE_CHAT_BASE = -1002000000000


@dataclass(frozen=True)
class SyntheticDistrict:
    path: Path
    lanes: int
    streets: int


def _lane_id(k: int) -> str:
    return f"L{k:05d}"


def lane_ids(n: int) -> list[str]:
    return [_lane_id(k) for k in range(n)]


def street_of(k: int, lanes: int, streets: int) -> str:
    """Lanes are split into `streets` contiguous bands of ids."""
    per = math.ceil(lanes / streets)
    return f"S{k // per:02d}"


def _geometry(k: int, cols: int) -> dict[str, Any]:
    row, col = divmod(k, cols)
    m_per_deg_lon = M_PER_DEG_LAT * math.cos(math.radians(LAT0))

    def at(dx_m: float, dy_m: float) -> list[float]:
        x = col * SPACING_M + dx_m
        y = row * SPACING_M + dy_m
        return [round(LON0 + x / m_per_deg_lon, 7), round(LAT0 + y / M_PER_DEG_LAT, 7)]

    if k % 5 == 4:  # a small estate
        ring = [at(0, 0), at(60, 0), at(60, 50), at(0, 50), at(0, 0)]
        return {"type": "Polygon", "coordinates": [ring]}
    return {"type": "LineString", "coordinates": [at(0, 0), at(30, 12), at(60, 0), at(90, 12)]}


def write_district(folder: Path, lanes: int, streets: int = 2) -> SyntheticDistrict:
    """Write district.toml and lanes.geojson for `lanes` lanes in `streets` street offices."""
    folder.mkdir(parents=True, exist_ok=True)
    cols = max(1, math.ceil(math.sqrt(lanes)))
    features = []
    for k in range(lanes):
        street = street_of(k, lanes, streets)
        polygon = k % 5 == 4
        features.append(
            {
                "type": "Feature",
                "properties": {
                    "lane_id": _lane_id(k),
                    "name_zh": f"测试巷{k}号",
                    "name_en": f"Test Lane {k}",
                    "street": street,
                    "community": f"社区{k // 50}",
                    "buffer_m": 10 if polygon else 25,
                },
                "geometry": _geometry(k, cols),
            }
        )
    (folder / "lanes.geojson").write_text(
        json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8"
    )
    sample = (SAMPLE_DISTRICT_DIR / "district.toml").read_text(encoding="utf-8")
    shared = sample[sample.index("[[departments]]") :]
    head = [
        'name_zh = "基准测试区"',
        'name_en = "Benchmark District"',
        'case_prefix = "BM"',
        'timezone = "Asia/Shanghai"',
        'lanes_file = "lanes.geojson"',
        "",
    ]
    offices = []
    for s in range(streets):
        offices += [
            "[[street_offices]]",
            f'id = "S{s:02d}"',
            f'name_zh = "测试街道{s}"',
            f'name_en = "Test Subdistrict {s}"',
            f"triage_chat_id = {TRIAGE_CHAT_BASE - s}",
            "",
        ]
    (folder / "district.toml").write_text("\n".join(head + offices) + shared, encoding="utf-8")
    return SyntheticDistrict(folder, lanes, streets)
