"""Files the bot makes for one sending (CSV exports, digest charts) are removed after a week.

Photos of cases are evidence and stay; exports and charts can be made again at any time, and
without pruning they would fill MEDIA_DIR by one file per export and per digest every day.
A file still named by a message waiting in the outbox is kept, however old.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.digest_jobs import CHART_DIR
from bot.export import EXPORT_DIR
from storage.models import OutboxMessage
from storage.outbox import PENDING

log = logging.getLogger(__name__)

GENERATED_DIRS = (EXPORT_DIR, CHART_DIR)
KEEP = timedelta(days=7)


async def prune_generated(
    session: AsyncSession, media_dir: Path, now: datetime, keep: timedelta = KEEP
) -> int:
    """Delete generated files older than `keep` that no pending message names; how many."""
    cutoff = (now - keep).timestamp()
    old = [
        path
        for folder in GENERATED_DIRS
        if (media_dir / folder).is_dir()
        for path in (media_dir / folder).iterdir()
        if path.is_file() and path.stat().st_mtime < cutoff
    ]
    if not old:
        return 0
    params = await session.scalars(
        select(OutboxMessage.params).where(OutboxMessage.status == PENDING)
    )
    waiting = {media_dir / rel for p in params for rel in _paths(p)}
    removed = 0
    for path in old:
        if path not in waiting:
            path.unlink(missing_ok=True)
            removed += 1
    if removed:
        log.info("removed %d generated file(s) older than %s", removed, keep)
    return removed


def _paths(value: Any) -> Iterator[str]:
    """Every file an outbox message's parameters name: {"path": ...} at any depth."""
    if isinstance(value, dict):
        if isinstance(value.get("path"), str):
            yield value["path"]
        for item in value.values():
            yield from _paths(item)
    elif isinstance(value, list):
        for item in value:
            yield from _paths(item)
