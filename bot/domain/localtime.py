"""The district's time zone, from one place: the `timezone` key of its district.toml.

Case numbers, cards, deadlines, KPIs, digests and exports all follow it: the running bot and
Open311 the loaded `District.tz` (read once, like the rest of the district: a change takes
effect at the next start), what loads no district (the TIMEZONE setting's check at start-up,
`python -m bot case show`) `district_timezone` here, the same key of the same file.
"""

from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# A district.toml that names no `timezone` is in this one (bot.domain.district loads it too).
DEFAULT_TIMEZONE = "Asia/Shanghai"


def district_toml(path: Path) -> Path:
    """The district.toml of the district in folder `path` (or `path` itself), as loaded."""
    return path if path.suffix == ".toml" or path.is_file() else path / "district.toml"


def district_timezone(path: Path) -> ZoneInfo:
    """The time zone of the district in folder `path`.

    A file that cannot be read, or names no valid zone, gives the default: loading the district
    refuses it with the reason (`python -m bot district check`).
    """
    file = district_toml(Path(path))
    try:
        version = file.stat().st_mtime_ns
    except OSError:
        return ZoneInfo(DEFAULT_TIMEZONE)
    return ZoneInfo(_timezone_in(str(file), version))


@lru_cache(maxsize=16)
def _timezone_in(file: str, _version: int) -> str:
    """Cached per file version: cards and case numbers ask on every message."""
    try:
        data = tomllib.loads(Path(file).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return DEFAULT_TIMEZONE
    value = data.get("timezone")
    if not isinstance(value, str) or not value.strip():
        return DEFAULT_TIMEZONE
    try:
        ZoneInfo(value.strip())
    except (ZoneInfoNotFoundError, ValueError):
        return DEFAULT_TIMEZONE
    return value.strip()
