"""How a case's facts read in any channel (chat, digest, Open311): a category by its name, a
moment as a local time in the district's zone.

Not Telegram's: the chat's views, the digest and the Open311 answers all word them so.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.domain.district import District
from bot.i18n import t


def local_time(when: datetime, tz: ZoneInfo) -> str:
    return when.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def category_name(lang: str, district: District, category_id: str | None) -> str:
    category = district.categories.get(category_id) if category_id else None
    return district.name(category, lang) if category else t(lang, "category.unknown")
