"""Generated files (exports, digest charts) are removed after a week; case photos never."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import update

from bot.housekeeping import prune_generated
from storage.db import make_engine, make_sessionmaker
from storage.models import OutboxMessage
from storage.outbox import SENT, enqueue

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def made(media_dir: Path, rel: str, age: timedelta) -> Path:
    path = media_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    when = (NOW - age).timestamp()
    os.utime(path, (when, when))
    return path


async def test_old_generated_files_go_unless_a_pending_message_still_sends_them(
    database_url: str, media_dir: Path
) -> None:
    old_export = made(media_dir, "exports/20261110-old.csv", timedelta(days=8))
    new_export = made(media_dir, "exports/20261122-new.csv", timedelta(days=1))
    old_chart_waiting = made(media_dir, "digests/aaaa.png", timedelta(days=9))
    old_chart_sent = made(media_dir, "digests/bbbb.png", timedelta(days=9))
    old_photo = made(media_dir, "ab/abcdef.jpg", timedelta(days=400))

    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    try:
        async with sessions() as session, session.begin():
            # Telegram has been refusing this one for days: its chart must still be there.
            enqueue(session, 1, "sendPhoto", {"photo": {"path": "digests/aaaa.png"}}, now=NOW)
            sent = enqueue(
                session, 2, "sendPhoto", {"photo": {"path": "digests/bbbb.png"}}, now=NOW
            )
            await session.flush()
            await session.execute(
                update(OutboxMessage).where(OutboxMessage.id == sent.id).values(status=SENT)
            )
        async with sessions() as session:
            assert await prune_generated(session, media_dir, NOW) == 2
            assert await prune_generated(session, media_dir, NOW) == 0
    finally:
        await engine.dispose()

    assert not old_export.exists() and not old_chart_sent.exists()
    assert new_export.exists() and old_chart_waiting.exists()
    assert old_photo.exists()  # evidence of a case: never pruned


async def test_nothing_generated_yet_is_fine(database_url: str, media_dir: Path) -> None:
    engine = make_engine(database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            assert await prune_generated(session, media_dir, NOW) == 0
    finally:
        await engine.dispose()
