"""Housekeeping: what nothing needs any more goes after the district's periods; nothing a
case, a live draft or a waiting message still uses goes, however old."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import tests.conftest as conftest
from bot.jobs import housekeeping, scheduler
from bot.jobs.housekeeping import (
    housekeep,
    prune_drafts,
    prune_generated,
    prune_processed_updates,
    prune_sent_messages,
    prune_unused_photos,
)
from storage.db import make_engine, make_sessionmaker
from storage.models import Case, FsmState, OutboxMessage, Photo, ProcessedUpdate
from storage.outbox import FAILED, SENT, enqueue
from tests.harness import Harness

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
WEEK, MONTH = timedelta(days=7), timedelta(days=30)
Sessions = async_sessionmaker[AsyncSession]


def made(media_dir: Path, rel: str, age: timedelta) -> Path:
    path = media_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    when = (NOW - age).timestamp()
    os.utime(path, (when, when))
    return path


def photo_name(n: int) -> str:
    """Where bot/domain/photos.py would store a photo: <2 hex>/<sha256>.jpg."""
    digest = f"{n:064x}"
    return f"{digest[:2]}/{digest}.jpg"


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[Sessions]:
    engine = make_engine(database_url)
    try:
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()


async def a_case(
    session: AsyncSession, state: str = "dispatched", photos: Sequence[str] = ()
) -> Case:
    case = Case(
        number=f"CY-20261123-{uuid.uuid4().int % 10000:04d}",
        state=state,
        created_at=NOW - timedelta(days=400),
        updated_at=NOW - timedelta(days=400),
    )
    session.add(case)
    await session.flush()
    for rel in photos:
        session.add(
            Photo(
                case_id=case.id,
                path=rel,
                sha256="0" * 64,
                size=1,
                width=1,
                height=1,
                created_at=case.created_at,
            )
        )
    return case


def a_draft(key: str, age: timedelta, **data: Any) -> FsmState:
    return FsmState(key=key, state="Report:confirm", data=data, updated_at=NOW - age)


async def sent(
    session: AsyncSession,
    age: timedelta,
    *,
    status: str = SENT,
    ref: str | None = None,
    case: Case | None = None,
    params: dict[str, Any] | None = None,
) -> OutboxMessage:
    row = enqueue(
        session,
        1,
        "sendMessage",
        params or {"text": "hi"},
        now=NOW - age,
        ref=ref,
        case_id=case.id if case else None,
    )
    await session.flush()
    await session.execute(
        update(OutboxMessage).where(OutboxMessage.id == row.id).values(status=status)
    )
    return row


async def remaining(sessions: Sessions, column: Any) -> set[Any]:
    async with sessions() as session:
        return set((await session.scalars(select(column))).all())


# --------------------------------------------------------------------------- generated files


async def test_old_generated_files_go_unless_a_pending_message_still_sends_them(
    sessions: Sessions, media_dir: Path
) -> None:
    old_export = made(media_dir, "exports/20261110-old.csv", timedelta(days=8))
    new_export = made(media_dir, "exports/20261122-new.csv", timedelta(days=1))
    old_chart_waiting = made(media_dir, "digests/aaaa.png", timedelta(days=9))
    old_chart_sent = made(media_dir, "digests/bbbb.png", timedelta(days=9))
    case_photo = made(media_dir, photo_name(1), timedelta(days=400))

    async with sessions() as session, session.begin():
        await a_case(session, photos=[photo_name(1)])
        # Telegram has been refusing this one for days: its chart must still be there.
        enqueue(session, 1, "sendPhoto", {"photo": {"path": "digests/aaaa.png"}}, now=NOW)
        await sent(session, timedelta(0), params={"photo": {"path": "digests/bbbb.png"}})
    async with sessions() as session:
        assert await prune_generated(session, media_dir, NOW) == 2
        assert await prune_generated(session, media_dir, NOW) == 0
    assert await prune_unused_photos(sessions, media_dir, NOW, WEEK) == 0

    assert not old_export.exists() and not old_chart_sent.exists()
    assert new_export.exists() and old_chart_waiting.exists()
    assert case_photo.exists()  # evidence of a case: never pruned


async def test_nothing_generated_yet_is_fine(sessions: Sessions, media_dir: Path) -> None:
    async with sessions() as session:
        assert await prune_generated(session, media_dir, NOW) == 0
    assert await prune_unused_photos(sessions, media_dir, NOW, WEEK) == 0


# --------------------------------------------------------------------------- photos and drafts


async def test_photos_no_case_uses_go_after_their_time_unless_something_names_them(
    sessions: Sessions, media_dir: Path
) -> None:
    """A cancelled report's photos stayed in MEDIA_DIR for ever."""
    of_a_case = made(media_dir, photo_name(1), timedelta(days=400))
    of_a_closed_case = made(media_dir, photo_name(2), timedelta(days=400))
    in_a_draft = made(media_dir, photo_name(3), timedelta(days=20))  # sent again: an old name
    after_photo = made(media_dir, photo_name(4), timedelta(days=8))  # a chief's, mid-resolve
    being_sent = made(media_dir, photo_name(5), timedelta(days=8))
    cancelled = made(media_dir, photo_name(6), timedelta(days=8))
    just_taken = made(media_dir, photo_name(7), timedelta(days=6))
    not_a_photo = made(media_dir, "ab/notes.txt", timedelta(days=400))
    half_written = made(media_dir, "ab/.tmp1234.tmp", timedelta(days=400))
    async with sessions() as session, session.begin():
        await a_case(session, photos=[photo_name(1)])
        await a_case(session, state="closed", photos=[photo_name(2)])
        session.add(a_draft("1:1:1", timedelta(hours=1), photos=[{"path": photo_name(3)}]))
        session.add(a_draft("2:2:2", timedelta(hours=1), photo={"path": photo_name(4)}))
        enqueue(session, 3, "sendPhoto", {"photo": {"path": photo_name(5)}}, now=NOW)

    assert await prune_unused_photos(sessions, media_dir, NOW, WEEK) == 1
    assert not cancelled.exists()
    for kept in (of_a_case, of_a_closed_case, in_a_draft, after_photo, being_sent, just_taken):
        assert kept.exists(), kept
    assert not_a_photo.exists() and half_written.exists()  # not ours to judge
    assert await prune_unused_photos(sessions, media_dir, NOW, WEEK) == 0


async def test_many_unused_photos_go_in_batches(
    sessions: Sessions, media_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(housekeeping, "BATCH", 2)
    paths = [made(media_dir, photo_name(n), timedelta(days=8)) for n in range(1, 6)]
    async with sessions() as session, session.begin():
        await a_case(session, photos=[photo_name(3)])
    assert await prune_unused_photos(sessions, media_dir, NOW, WEEK) == 4
    assert [p.exists() for p in paths] == [False, False, True, False, False]


async def test_abandoned_drafts_go_after_their_time(sessions: Sessions) -> None:
    async with sessions() as session, session.begin():
        session.add(a_draft("old", MONTH + timedelta(minutes=1), description="门口堆了家具"))
        session.add(a_draft("recent", MONTH - timedelta(minutes=1), description="还在写"))
    assert await prune_drafts(sessions, NOW, MONTH) == 1
    assert await remaining(sessions, FsmState.key) == {"recent"}


async def test_drafts_in_redis_expire_and_their_photos_stay_meanwhile(
    sessions: Sessions, media_dir: Path
) -> None:
    """With REDIS_URL the drafts are in Redis, and had no end at all."""
    url = conftest.REDIS_URL
    if not url:
        pytest.skip("no Redis to test against")
    from redis.asyncio import Redis

    redis = Redis.from_url(url)
    chat = uuid.uuid4().int % 10**12  # the database is shared: only these keys are looked at
    data, state, timed = f"fsm:{chat}:{chat}:data", f"fsm:{chat}:{chat}:state", f"fsm:{chat}:1:data"
    in_draft = made(media_dir, photo_name(8), timedelta(days=20))
    try:
        await redis.set(data, json.dumps({"photos": [{"path": photo_name(8)}]}))
        await redis.set(state, "Report:confirm")
        await redis.set(timed, "{}", ex=60)
        assert await prune_drafts(sessions, NOW, MONTH, redis) == 0
        for key in (data, state):
            assert MONTH.total_seconds() - 60 < await redis.ttl(key) <= MONTH.total_seconds()
        assert await redis.ttl(timed) <= 60  # an expiry of its own is left alone
        # A write (the resident goes on) takes the expiry away: the next hour gives it again.
        await redis.set(data, json.dumps({"photos": [{"path": photo_name(8)}]}))
        assert await redis.ttl(data) == -1
        await prune_drafts(sessions, NOW, MONTH, redis)
        assert await redis.ttl(data) > 0

        assert await prune_unused_photos(sessions, media_dir, NOW, WEEK, redis) == 0
        assert in_draft.exists()
        await redis.delete(data)
        assert await prune_unused_photos(sessions, media_dir, NOW, WEEK, redis) == 1
        assert not in_draft.exists()
    finally:
        await redis.delete(data, state, timed)
        await redis.aclose()


# --------------------------------------------------------------------------- rows


async def test_sent_messages_go_after_their_time_but_not_what_is_still_used(
    sessions: Sessions,
) -> None:
    old, recent = MONTH + timedelta(hours=1), MONTH - timedelta(hours=1)
    async with sessions() as session, session.begin():
        open_case = await a_case(session, "accepted")
        closed_case = await a_case(session, "closed")
        gone = {
            (await sent(session, old)).id,
            (await sent(session, old, status=FAILED)).id,
            (await sent(session, old, case=open_case)).id,  # a progress note: not edited
            (await sent(session, old, ref=f"card:{closed_case.id}:chief", case=closed_case)).id,
            (await sent(session, old, ref="summary:abc:1")).id,
        }
        kept = {
            (await sent(session, recent)).id,
            (await sent(session, old, status="pending")).id,
            # Edited at the case's next step, found by its ref.
            (await sent(session, old, ref=f"card:{open_case.id}:chief", case=open_case)).id,
            (await sent(session, old, ref="summary:def:2")).id,
        }
        waiting_edit = enqueue(
            session, 1, "editMessageText", {"text": "x", "message_ref": "summary:def:2"}, now=NOW
        )
        await session.flush()
        kept.add(waiting_edit.id)
    assert await prune_sent_messages(sessions, NOW, MONTH) == len(gone)
    assert await remaining(sessions, OutboxMessage.id) == kept


async def test_processed_update_ids_go_after_their_time_in_batches(
    sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(housekeeping, "BATCH", 2)
    async with sessions() as session, session.begin():
        for update_id in range(1, 6):
            session.add(ProcessedUpdate(update_id=update_id, processed_at=NOW - timedelta(days=8)))
        session.add(ProcessedUpdate(update_id=6, processed_at=NOW - timedelta(days=6)))
    assert await prune_processed_updates(sessions, NOW, WEEK) == 5
    assert await remaining(sessions, ProcessedUpdate.update_id) == {6}


# --------------------------------------------------------------------------- the hourly job


async def test_the_hourly_job_takes_the_districts_periods(
    h: Harness, media_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    h.clock.set(NOW)
    sessions = h.ctx.sessionmaker
    unused = made(media_dir, photo_name(9), timedelta(days=3))
    async with sessions() as session, session.begin():
        session.add(ProcessedUpdate(update_id=10**9, processed_at=NOW - timedelta(days=3)))
        session.add(a_draft("9:9:9", timedelta(days=3)))
        await sent(session, timedelta(days=3))
    assert await housekeep(h.ctx) == 0  # the sample district's defaults: nothing is that old

    shorter = replace(
        h.district.privacy,
        keep_unused_photos_days=2.0,
        keep_abandoned_drafts_days=2.0,
        keep_sent_messages_days=2.0,
        keep_processed_updates_days=2.0,
    )
    monkeypatch.setattr(h.ctx, "district", replace(h.district, privacy=shorter))
    assert await scheduler.housekeeping(h.ctx) == 4  # what the scheduler runs every hour
    assert not unused.exists()
    assert await remaining(sessions, ProcessedUpdate.update_id) == set()
    assert await remaining(sessions, FsmState.key) == set()
    assert await remaining(sessions, OutboxMessage.id) == set()
