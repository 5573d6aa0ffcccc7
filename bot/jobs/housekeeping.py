"""Housekeeping, every hour: what nothing needs any more is removed.

- Files the bot makes for one sending (CSV exports, digest charts), after a week: they can be
  made again at any time, and would otherwise fill MEDIA_DIR by one file per export and digest.
- Photos no case uses: stored when a resident sends them, before the report exists, so a
  report cancelled or abandoned (or refused) leaves them behind.
- Drafts nobody touched for a while (the conversation state: a half-finished report holds the
  resident's words, place and photos).
- The copies of messages sent, and the update ids kept so that a redelivered update is not
  applied twice (Telegram redelivers for at most 24 hours).

How long each is kept is the district's `[privacy]` table (bot/domain/district/model.py,
README "What is kept, for how long, and why"). Nothing a case, a live draft or a waiting
message still uses is removed: a photo a case, a draft or a pending message names stays however
old, and so do the cards of a case that can still change (they are edited in place) and a
message a waiting edit names. Rows go in batches, each in a short transaction of its own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute

from bot.domain.lifecycle import FINAL
from bot.figures.export import EXPORT_DIR
from bot.telegram.digest import CHART_DIR
from storage.models import Base, Case, FsmState, OutboxMessage, Photo, ProcessedUpdate
from storage.outbox import PENDING

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from bot.context import AppContext

log = logging.getLogger(__name__)

GENERATED_DIRS = (EXPORT_DIR, CHART_DIR)
KEEP = timedelta(days=7)
BATCH = 500
# Where bot/domain/photos.py stores a photo: <first two hex digits>/<sha256 of the stored bytes>.jpg
_PHOTO_DIR = re.compile(r"[0-9a-f]{2}")
_PHOTO_FILE = re.compile(r"[0-9a-f]{64}\.jpg")
# aiogram's RedisStorage keys (DefaultKeyBuilder): fsm:<chat>:<user>:state|data
_REDIS_DRAFTS = "fsm:*"
_REDIS_DRAFT_PARTS = (b":state", b":data")

Sessions = async_sessionmaker[AsyncSession]


async def housekeep(ctx: AppContext) -> int:
    """The hourly job: everything above, with the district's periods; how much went."""
    now, keep = ctx.clock.now(), ctx.district.privacy
    async with ctx.sessionmaker() as session:
        removed = await prune_generated(session, ctx.media_dir, now)
    redis = _redis(ctx.settings.redis_url)
    try:
        removed += await prune_drafts(
            ctx.sessionmaker, now, timedelta(days=keep.keep_abandoned_drafts_days), redis
        )
        removed += await prune_unused_photos(
            ctx.sessionmaker,
            ctx.media_dir,
            now,
            timedelta(days=keep.keep_unused_photos_days),
            redis,
        )
    finally:
        if redis is not None:
            await redis.aclose()
    removed += await prune_sent_messages(
        ctx.sessionmaker, now, timedelta(days=keep.keep_sent_messages_days)
    )
    removed += await prune_processed_updates(
        ctx.sessionmaker, now, timedelta(days=keep.keep_processed_updates_days)
    )
    return removed


def _redis(url: str | None) -> Redis | None:
    if not url:
        return None
    from redis.asyncio import Redis

    return Redis.from_url(url)


# --------------------------------------------------------------------------- generated files


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
    waiting = {media_dir / rel for rel in await _pending_paths(session)}
    removed = 0
    for path in old:
        if path not in waiting:
            path.unlink(missing_ok=True)
            removed += 1
    if removed:
        log.info("removed %d generated file(s) older than %s", removed, keep)
    return removed


async def _pending_paths(session: AsyncSession) -> set[str]:
    params = await session.scalars(
        select(OutboxMessage.params).where(OutboxMessage.status == PENDING)
    )
    return {rel for p in params for rel in _paths(p)}


def _paths(value: Any) -> Iterator[str]:
    """Every file named in a message's parameters or a draft: {"path": ...} at any depth."""
    if isinstance(value, dict):
        if isinstance(value.get("path"), str):
            yield value["path"]
        for item in value.values():
            yield from _paths(item)
    elif isinstance(value, list):
        for item in value:
            yield from _paths(item)


# --------------------------------------------------------------------------- drafts and photos


async def prune_drafts(
    sessions: Sessions, now: datetime, keep: timedelta, redis: Redis | None = None
) -> int:
    """Conversation states untouched for `keep`; how many rows went.

    In Redis (REDIS_URL) a draft has no time of its own: each one without an expiry is given
    `keep`, and every write to it takes that away again, so it goes `keep` (and at most an
    hour) after it was last touched.
    """
    removed = await _delete_in_batches(
        sessions, FsmState, FsmState.key, [FsmState.updated_at < now - keep]
    )
    if removed:
        log.info("removed %d conversation state(s) untouched for %s", removed, keep)
    if redis is not None:
        timed = 0
        async for key in redis.scan_iter(match=_REDIS_DRAFTS, count=BATCH):
            if key.endswith(_REDIS_DRAFT_PARTS) and await redis.ttl(key) == -1:
                timed += bool(await redis.expire(key, keep))
        if timed:
            log.info("%d conversation state(s) in Redis now expire after %s", timed, keep)
    return removed


async def prune_unused_photos(
    sessions: Sessions,
    media_dir: Path,
    now: datetime,
    keep: timedelta,
    redis: Redis | None = None,
) -> int:
    """Delete stored photos older than `keep` that no case, draft or pending message names.

    A file's time is when it was first stored: a photo sent again later has the same name (it
    is stored by content) and an old time, and is kept by the draft that names it. Drafts are
    read before the cases, so a draft becoming a case meanwhile is seen as one or the other.
    """
    old = await asyncio.to_thread(_old_photos, media_dir, (now - keep).timestamp())
    if not old:
        return 0
    async with sessions() as session:
        named = await _draft_paths(session, redis) | await _pending_paths(session)
    removed = 0
    for start in range(0, len(old), BATCH):
        batch = [rel for rel in old[start : start + BATCH] if rel not in named]
        async with sessions() as session:
            used = set(await session.scalars(select(Photo.path).where(Photo.path.in_(batch))))
        unused = [rel for rel in batch if rel not in used]
        await asyncio.to_thread(_unlink, media_dir, unused)
        removed += len(unused)
    if removed:
        log.info("removed %d photo(s) no case used, older than %s", removed, keep)
    return removed


def _old_photos(media_dir: Path, cutoff: float) -> list[str]:
    """Stored photos (relative paths) last written before `cutoff`."""
    found = []
    for folder in media_dir.iterdir() if media_dir.is_dir() else ():
        if not (_PHOTO_DIR.fullmatch(folder.name) and folder.is_dir()):
            continue
        for path in folder.iterdir():
            if not _PHOTO_FILE.fullmatch(path.name):
                continue
            try:
                if path.stat().st_mtime < cutoff:
                    found.append(f"{folder.name}/{path.name}")
            except FileNotFoundError:
                continue
    return found


def _unlink(media_dir: Path, paths: Sequence[str]) -> None:
    for rel in paths:
        (media_dir / rel).unlink(missing_ok=True)


async def _draft_paths(session: AsyncSession, redis: Redis | None) -> set[str]:
    """Every file a live draft names (a resident's photos, a chief's after-photo)."""
    found = {rel for data in await session.scalars(select(FsmState.data)) for rel in _paths(data)}
    if redis is not None:
        async for key in redis.scan_iter(match=_REDIS_DRAFTS, count=BATCH):
            if key.endswith(b":data"):
                raw = await redis.get(key)
                try:
                    found.update(_paths(json.loads(raw or b"{}")))
                except ValueError:
                    log.warning("draft %r in Redis is not JSON: its photos are not known", key)
    return found


# --------------------------------------------------------------------------- rows


async def prune_sent_messages(sessions: Sessions, now: datetime, keep: timedelta) -> int:
    """Copies of messages sent (or given up) more than `keep` ago; how many went.

    Kept however old: a card of a case that is not final (it is edited in place at each
    step, found by its `card:` ref) and a message that a waiting edit names.
    """
    async with sessions() as session:
        params = await session.scalars(
            select(OutboxMessage.params).where(OutboxMessage.status == PENDING)
        )
        edited = {p["message_ref"] for p in params if isinstance(p.get("message_ref"), str)}
    unfinished = select(Case.id).where(Case.state.not_in(FINAL))
    ref = OutboxMessage.ref
    where = [
        OutboxMessage.status != PENDING,
        OutboxMessage.created_at < now - keep,
        or_(
            ref.is_(None),
            ref.not_like("card:%"),
            OutboxMessage.case_id.is_(None),
            OutboxMessage.case_id.not_in(unfinished),
        ),
    ]
    if edited:
        where.append(or_(ref.is_(None), ref.not_in(edited)))
    removed = await _delete_in_batches(sessions, OutboxMessage, OutboxMessage.id, where)
    if removed:
        log.info("removed %d sent message(s) older than %s", removed, keep)
    return removed


async def prune_processed_updates(sessions: Sessions, now: datetime, keep: timedelta) -> int:
    """Update ids recorded more than `keep` ago: Telegram no longer redelivers them."""
    removed = await _delete_in_batches(
        sessions,
        ProcessedUpdate,
        ProcessedUpdate.update_id,
        [ProcessedUpdate.processed_at < now - keep],
    )
    if removed:
        log.info("removed %d processed update id(s) older than %s", removed, keep)
    return removed


async def _delete_in_batches(
    sessions: Sessions,
    model: type[Base],
    key: InstrumentedAttribute[Any],
    where: Sequence[ColumnElement[bool]],
) -> int:
    """Delete the rows matching `where`, BATCH at a time, oldest keys first.

    The DELETE checks `where` again: a row that changed since it was picked (a draft touched,
    a message handed to the sender) stays.
    """
    removed = 0
    while True:
        async with sessions() as session, session.begin():
            picked = (
                await session.scalars(select(key).where(*where).order_by(key).limit(BATCH))
            ).all()
            if picked:
                result = await session.execute(
                    delete(model)
                    .where(key.in_(picked), *where)
                    .execution_options(synchronize_session=False)
                )
                removed += int(getattr(result, "rowcount", 0) or 0)
        if len(picked) < BATCH:
            return removed
