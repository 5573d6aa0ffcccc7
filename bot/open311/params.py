"""Reading an Open311 call's parameters: language, W3C dates, comma lists, coordinates."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from aiohttp import web

from bot.open311.errors import bad_request

DEFAULT_LANGUAGE = "zh"
# Dates outside these are a mistake or a probe: no case is that old or new, and the 90-day
# window around year 9999 (or year 1) does not fit in a datetime.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def language(request: web.Request) -> str:
    """`locale` (e.g. en, zh_CN, en-US), else Accept-Language, else Chinese."""
    chosen = _ours(request.query.get("locale", ""))
    if chosen:
        return chosen
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(request.headers.get("Accept-Language", "").split(",")):
        tag, _, rest = part.strip().partition(";")
        weight = 1.0
        if rest.strip().startswith("q="):
            try:
                weight = float(rest.strip()[2:])
            except ValueError:
                weight = 0.0
        ours = _ours(tag)
        if ours and weight > 0:
            ranked.append((-weight, i, ours))
    return min(ranked)[2] if ranked else DEFAULT_LANGUAGE


def _ours(tag: str) -> str | None:
    tag = tag.strip().lower()
    if tag == "zh" or tag.startswith(("zh-", "zh_")):
        return "zh"
    if tag == "en" or tag.startswith(("en-", "en_")):
        return "en"
    return None


def comma_list(value: str | None) -> list[str]:
    """`a, b,,c` → [a, b, c]; the spec lets several values be given comma-delimited."""
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def w3c_datetime(name: str, value: str, tz: ZoneInfo) -> datetime:
    """A W3C date-time (`2026-11-23T09:00:00+08:00`, `…Z`) or date; no zone: the district's."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise bad_request("bad_date", name=name, value=value[:40]) from None
    when = parsed.replace(tzinfo=tz) if parsed.tzinfo is None else parsed
    if not EARLIEST <= when < LATEST:
        raise bad_request("date_out_of_range", name=name, value=value[:40])
    return when


def w3c(when: datetime, tz: ZoneInfo) -> str:
    """A moment as the spec writes it: local time with its offset, to the second."""
    return when.astimezone(tz).isoformat(timespec="seconds")


def coordinate(name: str, value: str, limit: float) -> float:
    try:
        number = float(value)
    except ValueError:
        raise bad_request("bad_coordinate", name=name, value=value[:40]) from None
    if not math.isfinite(number) or abs(number) > limit:
        raise bad_request("bad_coordinate", name=name, value=value[:40])
    return number
