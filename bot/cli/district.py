"""`python -m bot district check` and `python -m bot district show [--json]`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bot.domain.district import District, DistrictError, load_district


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `district` command and its sub-commands to the bot's CLI."""
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="the district folder (default: DISTRICT_DIR from the settings)",
    )
    parser = subparsers.add_parser(
        "district", help="check or show the district's data (lanes, categories, departments)"
    )
    sub = parser.add_subparsers(dest="district_command", required=True)
    check = sub.add_parser(
        "check", parents=[where], help="validate district.toml and the GeoJSON files"
    )
    check.set_defaults(func=check_command)
    show = sub.add_parser("show", parents=[where], help="print the district as the bot sees it")
    show.add_argument("--json", action="store_true", help="as JSON (UTF-8, not ASCII-escaped)")
    show.set_defaults(func=show_command)


def _folder(args: argparse.Namespace) -> Path:
    folder: Path | None = getattr(args, "dir", None)
    if folder is not None:
        return folder
    from bot.config import get_settings

    return get_settings().district_dir


def check_command(args: argparse.Namespace) -> int:
    """Print every problem as `file: where: message` (exit 1), or a one-line summary (exit 0)."""
    folder = _folder(args)
    try:
        district = load_district(folder)
    except DistrictError as exc:
        for problem in exc.problems:
            print(problem)
        print(f"{len(exc.problems)} problem(s) in {folder}", file=sys.stderr)
        return 1
    print(summary(district, folder))
    return 0


def show_command(args: argparse.Namespace) -> int:
    """Print the district (as JSON with --json); exit 1 when it does not load."""
    folder = _folder(args)
    try:
        district = load_district(folder)
    except DistrictError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    if getattr(args, "json", False):
        print(json.dumps(as_json(district), ensure_ascii=False, indent=2))
    else:
        print(as_text(district, folder))
    return 0


def summary(district: District, folder: Path) -> str:
    areal = sum(
        1 for lane in district.lanes.values() if lane.geometry.geom_type.endswith("Polygon")
    )
    return (
        f"{folder}: OK — {district.name_zh} / {district.name_en}: "
        f"{len(district.street_offices)} street offices, {len(district.lanes)} lanes "
        f"({len(district.lanes) - areal} streets, {areal} areas), "
        f"{len(district.categories)} categories, {len(district.departments)} departments"
    )


def as_json(district: District) -> dict[str, Any]:
    """The district as plain JSON-able data; each lane with one point on/inside it."""
    minx, miny, maxx, maxy = (round(float(v), 7) for v in district.boundary.bounds)
    return {
        "name_zh": district.name_zh,
        "name_en": district.name_en,
        "case_prefix": district.case_prefix,
        "timezone": district.timezone,
        "bounds": {"south": miny, "west": minx, "north": maxy, "east": maxx},
        "street_offices": [
            {
                "id": s.id,
                "name_zh": s.name_zh,
                "name_en": s.name_en,
                "triage_chat_id": s.triage_chat_id,
            }
            for s in district.street_offices.values()
        ],
        "departments": [
            {"id": d.id, "name_zh": d.name_zh, "name_en": d.name_en, "chat_id": d.chat_id}
            for d in district.departments.values()
        ],
        "categories": [
            {
                "id": c.id,
                "name_zh": c.name_zh,
                "name_en": c.name_en,
                "handler": c.assignee,  # the district file's key
                "department_id": c.department_id,
                "response_hours": c.response_hours,
                "resolve_hours": c.resolve_hours,
                "dedupe_radius_m": c.dedupe_radius_m,
                "group": c.group,
                "keywords": list(c.keywords),
            }
            for c in district.categories.values()
        ],
        "lanes": [
            {
                "id": lane.id,
                "name_zh": lane.name_zh,
                "name_en": lane.name_en,
                "street": lane.street_id,
                "community": lane.community,
                "buffer_m": lane.buffer_m,
                "geometry_type": lane.geometry.geom_type,
                "lat": round(lane.representative_point[0], 7),
                "lon": round(lane.representative_point[1], 7),
            }
            for lane in district.lanes.values()
        ],
    }


def as_text(district: District, folder: Path) -> str:
    lines = [summary(district, folder), ""]
    for office in district.street_offices.values():
        lanes = [lane for lane in district.lanes.values() if lane.street_id == office.id]
        lines.append(f"{office.id}  {office.name_zh} / {office.name_en}  ({len(lanes)} lanes)")
        for lane in lanes:
            lat, lon = lane.representative_point
            lines.append(
                f"  {lane.id:<10} {lane.name_zh} / {lane.name_en}  [{lane.community}, "
                f"{lane.geometry.geom_type}, ±{lane.buffer_m:g} m]  {lat:.6f},{lon:.6f}"
            )
    lines.append("")
    lines.append("categories:")
    for c in district.categories.values():
        lines.append(
            f"  {c.id:<18} {c.name_zh} / {c.name_en}  → {c.assignee}; "
            f"respond {c.response_hours:g} h, resolve {c.resolve_hours:g} h"
        )
    lines.append("")
    lines.append("departments:")
    for d in district.departments.values():
        lines.append(f"  {d.id:<12} {d.name_zh} / {d.name_en}  chat {d.chat_id}")
    return "\n".join(lines)
