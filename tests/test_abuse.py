"""Abuse: flooding gets one polite slow-down, banned people are ignored, user text is literal.

The limits are the real ones (30 updates a minute, 10 reports an hour); the emulator's clock
moves on when a test says so, so the windows pass without waiting.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.domain.cases import MAX_PHOTOS
from bot.i18n import t
from bot.telegram.abuse import MESSAGES_PER_MINUTE, REPORTS_PER_HOUR, MemoryCounter, RedisCounter
from storage.models import Ban, Case, Person
from tests.conftest import REDIS_URL
from tests.harness import Harness, grant, jpeg, noise_jpeg, plain_text
from tests.test_handling_loop import cast, first_lane
from tgemu.emulator import Persona

ADMIN, TROLL, NEWCOMER = 3001, 3002, 3003


def said(who: Persona, key: str, lang: str = "en", **params: object) -> int:
    text = plain_text(lang, key, **params)
    return sum(1 for m in who.inbox() if m.content == text)


async def test_thirty_one_messages_in_a_minute_get_one_slow_down_then_silence(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    chatty = h.emulator.user(1201, first_name="Chatty", language_code="en")
    with caplog.at_level(logging.WARNING, logger="bot.telegram.abuse"):
        for i in range(MESSAGES_PER_MINUTE + 5):
            await chatty.send_text(f"hello {i}")
        await h.emulator.wait_until(
            lambda: (
                said(chatty, "abuse.slow_down") == 1
                and said(chatty, "input.idle_text") == MESSAGES_PER_MINUTE
            ),
            timeout=20,
        )
        # The next minute: heard again, as usual.
        h.clock.advance(timedelta(seconds=61))
        await chatty.send_text("still there?")
        await h.emulator.wait_until(
            lambda: said(chatty, "input.idle_text") == MESSAGES_PER_MINUTE + 1, timeout=10
        )
    assert said(chatty, "abuse.slow_down") == 1
    warnings = [r.getMessage() for r in caplog.records if r.name == "bot.telegram.abuse"]
    assert len(warnings) == 1 and "updates a minute" in warnings[0]


def stored_photos(media_dir: Path) -> int:
    return len(list(media_dir.rglob("*.jpg")))


async def test_each_photo_of_an_album_counts_and_those_over_the_limit_are_never_decoded(
    h: Harness, media_dir: Path
) -> None:
    # An album arrives as one update per photo, each photo a download and a decode: counting
    # the album once would let one person put ten decodes a message through the limit.
    snapper = h.emulator.user(1203, first_name="Snapper", language_code="en")
    for i in range(MESSAGES_PER_MINUTE - 5):
        await snapper.send_text(f"hello {i}")
    await snapper.send_album([noise_jpeg(seed) for seed in range(10)])
    await h.emulator.wait_until(lambda: said(snapper, "abuse.slow_down") == 1, timeout=30)
    # A minute on the person is heard again; their updates are handled in order, so once this
    # one is answered, the album's last five have had their turn.
    h.clock.advance(timedelta(seconds=61))
    await snapper.send_text("Three lamps out along the lane")
    await snapper.expect(contains=plain_text("en", "report.ask_location"), timeout=20)
    assert stored_photos(media_dir) == 5  # the album's first five, and no more
    assert said(snapper, "photo.too_many", limit=MAX_PHOTOS) == 0
    assert said(snapper, "input.idle_text") == MESSAGES_PER_MINUTE - 5


async def test_the_eleventh_report_in_an_hour_waits_and_its_draft_is_kept(h: Harness) -> None:
    busy = h.emulator.user(1202, first_name="Busy", language_code="en")
    _lane, lat, lon = first_lane(h)
    for i in range(REPORTS_PER_HOUR + 1):
        h.clock.advance(timedelta(seconds=61))  # a report a minute: under the message limit
        await busy.send_photo(jpeg((10 * i, 90, 90)), caption=f"Overflowing bins, day {i}")
        await busy.send_location(lat, lon)
        await busy.expect(contains="Photos: 1")
        await busy.press(t("en", "button.confirm"))
        if i < REPORTS_PER_HOUR:
            await busy.expect(contains="CY-")
    await h.emulator.wait_until(lambda: busy.alerts)
    assert busy.alerts[-1].text == t("en", "abuse.too_many_reports")
    assert await h.count(Case) == REPORTS_PER_HOUR
    # An hour on, the same summary's Confirm works: the draft was kept.
    h.clock.advance(timedelta(hours=1))
    await busy.press(t("en", "button.confirm"))
    await busy.expect(contains=f"CY-20261123-00{REPORTS_PER_HOUR + 1}")
    assert await h.count(Case) == REPORTS_PER_HOUR + 1


async def test_counters_count_per_person_and_window() -> None:
    counter = MemoryCounter()
    assert [await counter.hit("a", 60, 0.0) for _ in range(3)] == [1, 2, 3]
    assert await counter.hit("b", 60, 1.0) == 1
    assert await counter.hit("a", 3600, 1.0) == 1  # another window length, another count
    assert await counter.hit("a", 60, 60.0) == 1  # the next minute starts again


async def test_admin_bans_and_unbans_and_every_ban_is_recorded(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    p = await cast(h)
    await grant(h, ADMIN, "admin")
    admin = h.emulator.user(ADMIN, first_name="Admin", language_code="en")
    troll = h.emulator.user(TROLL, first_name="Troll", language_code="en")
    await troll.send_command("/start")
    await troll.expect(contains="Snap it")

    # Others cannot, and are not told the command exists.
    await troll.send_command("/ban", str(ADMIN))
    await troll.expect(contains=plain_text("en", "input.unknown_command"))
    for args, key in (
        (None, "admin.ban_usage"),
        ("abc", "admin.ban_usage"),
        ("-5 x", "admin.ban_usage"),
        (str(ADMIN), "admin.ban_refused.self"),
        ("2001", "admin.ban_refused.staff"),  # the lane chief
    ):
        await admin.send_command("/ban", args)
        await admin.expect(contains=plain_text("en", key, id=args or ""))

    await admin.send_command("/ban", f"{TROLL} spam, 40 fake reports")
    await admin.expect(contains=plain_text("en", "admin.banned", id=TROLL))
    await admin.send_command("/ban", str(TROLL))
    await admin.expect(contains=plain_text("en", "admin.ban_refused.already", id=TROLL))
    await admin.send_command("/ban", str(NEWCOMER))  # before they ever write
    await admin.expect(contains=plain_text("en", "admin.banned", id=NEWCOMER))

    with caplog.at_level(logging.INFO, logger="bot.telegram.middlewares"):
        await troll.send_photo(jpeg(), caption="Fake problem")
        newcomer = h.emulator.user(NEWCOMER, first_name="New", language_code="en")
        await newcomer.send_command("/start")
        await h.emulator.wait_until(
            lambda: sum("banned person" in r.getMessage() for r in caplog.records) >= 2
        )
    assert len(troll.inbox()) == 2 and not newcomer.inbox()  # greeting, unknown command
    assert await h.nothing_stored()

    await admin.send_command("/unban", str(TROLL))
    await admin.expect(contains=plain_text("en", "admin.unbanned", id=TROLL))
    await admin.send_command("/unban", str(TROLL))
    await admin.expect(contains=plain_text("en", "admin.ban_refused.not_banned", id=TROLL))
    await admin.send_command("/unban", "424242")
    await admin.expect(contains=plain_text("en", "admin.ban_refused.unknown", id=424242))
    await troll.send_command("/help")
    await troll.expect(contains="/report")

    async with h.session() as session:
        people = {
            p.telegram_id: p
            for p in (await session.scalars(select(Person))).all()
            if p.telegram_id in (ADMIN, TROLL, NEWCOMER)
        }
        bans = (await session.scalars(select(Ban).order_by(Ban.id))).all()
    assert not people[TROLL].banned and people[NEWCOMER].banned
    assert [(b.person_id, b.banned_by, b.reason) for b in bans] == [
        (people[TROLL].id, people[ADMIN].id, "spam, 40 fake reports"),
        (people[NEWCOMER].id, people[ADMIN].id, None),
    ]
    assert bans[0].lifted_by == people[ADMIN].id and bans[0].lifted_at is not None
    assert bans[1].lifted_at is None
    assert p["chief"].last is not None


async def test_a_description_with_html_shows_literally_to_resident_and_chief(h: Harness) -> None:
    p = await cast(h)
    resident, chief = p["resident"], p["chief"]
    _lane, lat, lon = first_lane(h)
    text = "胡同口堆物堆料 <b>很多</b> & 旧家具 <a href='x'>堵</a> &amp; 1<2"
    await resident.send_photo(jpeg(), caption=text)
    await resident.send_location(lat, lon)
    summary = await resident.expect(contains="照片：1 张")
    assert text in (summary.text or "")
    await resident.press(t("zh", "button.confirm"))
    await resident.expect(contains="CY-")
    [case] = await h.cases()
    assert case.description == text  # stored as written
    card = await chief.expect(contains=f"案件 {case.number}")
    assert text in (card.text or "")
    # Only the template's own formatting: nothing of the description became bold or a link.
    for message in (summary, card):
        for entity in message.entities:
            shown = (message.text or "")[entity["offset"] : entity["offset"] + entity["length"]]
            assert "很多" not in shown and "堵" not in shown, entity
    await resident.send_command("/case", case.number)
    detail = await resident.expect(contains="1<2")
    assert text in (detail.text or "")
    await chief.send_command("/case", case.number)
    assert text in ((await chief.expect(contains="1<2")).text or "")


@pytest.mark.skipif(not REDIS_URL, reason="TEST_REDIS_URL is not set: Redis tests skipped")
async def test_redis_counters_are_shared_by_every_process() -> None:
    from redis.asyncio import Redis

    assert REDIS_URL is not None
    first, second = Redis.from_url(REDIS_URL), Redis.from_url(REDIS_URL)
    key = f"test-{uuid.uuid4().hex}"
    try:
        a, b = RedisCounter(first), RedisCounter(second)  # two bot processes
        assert [await a.hit(key, 60, 120.0), await b.hit(key, 60, 121.0)] == [1, 2]
        assert await b.hit(key, 60, 180.0) == 1  # the next window
        assert 0 < await first.ttl(f"suipai:flood:{key}:60:2") <= 120
    finally:
        await first.aclose()
        await second.aclose()
