"""The district as data: street offices, departments, categories, lanes, the boundary and the
privacy periods, as `load_district` returns them (read-only); `Problem` and `DistrictError`
for what is wrong with its files."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol
from zoneinfo import ZoneInfo

from bot.domain.district.geometry import Geometry, LocalProjection, projection_for

# A category's `dedupe_radius_m` when district.toml gives none: reports of it this close are
# one problem.
DEFAULT_DEDUPE_RADIUS_M = 50.0


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
    """A kind of problem: whom its cases go to and how fast."""

    id: str
    name_zh: str
    name_en: str
    keywords: tuple[str, ...]  # Chinese then English, all lower-cased ("ktv"), no repeats
    # The kind of assignee its cases go to: "chief" (the lane's) | "department:<id>" (the
    # district file's `handler` key, kept as it was for the files already written).
    assignee: str
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
