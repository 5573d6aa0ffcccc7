"""Bad input: each gets a clear answer and a log line; nothing crashes and nothing is half-stored.

(A truncated JPEG sent as a photo, a 30 MB file, a PDF, voice and stickers are in
tests/test_report_flow.py.) Decisions shown here: a file is judged by its content, never by
its name or declared type; a photo forwarded from a channel is refused (it is not the
resident's own sighting, and it may be old or from elsewhere); an edit to a sent message is
not applied; text is stored as written, and rendered so that it cannot rearrange the bot's
words; text of invisible characters only is empty.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from bot.domain.text import FSI, PDI
from bot.i18n import t
from storage.models import Case
from tests.harness import Harness, jpeg, plain_text
from tests.test_handling_loop import cast, first_lane
from tgemu.emulator import Persona

ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff\u200e\u200f"
RLO, PDF = "\u202e", "\u202c"


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Everything the bot logs at INFO and above; afterwards, nothing may have failed."""
    with caplog.at_level(logging.INFO, logger="bot"):
        yield caplog
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert failures == [], [r.getMessage() for r in failures]


def logged(caplog: pytest.LogCaptureFixture, logger: str, text: str) -> bool:
    return any(r.name == logger and text in r.getMessage() for r in caplog.records)


def stored_files(media_dir: Path) -> list[Path]:
    return list(media_dir.rglob("*.jpg"))


async def nothing_left(h: Harness, media_dir: Path) -> bool:
    return await h.nothing_stored() and not stored_files(media_dir)


def said(lang: str, key: str, **params: object) -> str:
    return plain_text(lang, key, **params)


def no_crash(who: Persona, lang: str = "en") -> bool:
    return not any(said(lang, "error.internal") in m.content for m in who.inbox())


def png(size: tuple[int, int], mode: str = "1") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size).save(buf, "PNG")
    return buf.getvalue()


async def test_files_are_judged_by_content_not_by_name(
    h: Harness, media_dir: Path, logs: pytest.LogCaptureFixture
) -> None:
    kai = h.emulator.user(1301, first_name="Kai", language_code="en")
    intake = "bot.telegram.handlers.intake"
    # 8000 × 8000 pixels in a few kilobytes: decoding it would take 64 MB or more.
    bomb = png((8000, 8000))
    assert len(bomb) < 100_000
    await kai.send_document(bomb, file_name="street.png", mime_type="image/png")
    await kai.expect(contains=said("en", "photo.rejected.too_many_pixels"))
    assert logged(logs, intake, "refused (too_many_pixels)")

    await kai.send_document(jpeg()[:400], file_name="IMG_1.JPG", mime_type="image/jpeg")
    await kai.expect(contains=said("en", "photo.rejected.corrupt"))
    assert logged(logs, intake, "refused (corrupt)")

    program = b"MZ\x90\x00\x03\x00\x00\x00" + bytes(200)  # a Windows program called .jpg
    await kai.send_document(program, file_name="photo.jpg", mime_type="image/jpeg")
    await kai.expect(contains=said("en", "photo.rejected.not_image"))
    assert logged(logs, intake, "refused (not_image)")

    await kai.send_document(b"", file_name="empty.jpg", mime_type="image/jpeg")
    await kai.expect(contains=said("en", "photo.rejected.empty"))
    assert logged(logs, intake, "refused (empty)")
    assert await nothing_left(h, media_dir)
    assert no_crash(kai)

    # The other way round: a real photo whose name says PDF is a photo.
    await kai.send_document(png((64, 48), "RGB"), file_name="scan.pdf", mime_type="application/pdf")
    await kai.expect(contains=said("en", "report.ask_description", n=1, limit=5))
    assert len(stored_files(media_dir)) == 1


async def test_a_caption_of_1024_characters_is_the_description_whole(
    h: Harness, logs: pytest.LogCaptureFixture
) -> None:
    p = await cast(h)
    lin = h.emulator.user(1302, first_name="Lin", language_code="zh-hans")
    caption = ("胡同口堆物堆料，旧家具堵住了通道。" * 70)[:1024]
    assert len(caption) == 1024  # Telegram's longest caption
    _lane, lat, lon = first_lane(h)
    await lin.send_photo(jpeg(), caption=caption)
    await lin.send_location(lat, lon)
    summary = await lin.expect(contains="照片：1 张")
    assert caption in (summary.text or "")
    assert logged(logs, "bot.telegram.handlers.resident", "caption of 1024 characters")
    await lin.press(t("zh", "button.confirm"))
    await lin.expect(contains="CY-")
    [case] = await h.cases()
    assert case.description == caption
    card = await p["chief"].expect(contains=f"案件 {case.number}")
    assert caption in (card.text or "")


async def test_stickers_videos_voice_contacts_polls_mid_report_leave_the_draft_as_it_was(
    h: Harness, logs: pytest.LogCaptureFixture
) -> None:
    mo = h.emulator.user(1303, first_name="Mo", language_code="en")
    await mo.send_photo(jpeg(), caption="Broken bench in the square")
    await mo.expect(contains=said("en", "report.ask_location"))
    unsupported = said("en", "input.unsupported")
    for send, kind in (
        (mo.send_video, "video"),
        (mo.send_contact, "contact"),
        (mo.send_poll, "poll"),
        (mo.send_sticker, "sticker"),
        (mo.send_voice, "voice"),
    ):
        await send()
        await mo.expect(contains=unsupported)
        assert logged(logs, "bot.telegram.handlers.fallback", f"unsupported {kind}"), kind
    await mo.send_animation()  # a GIF comes as a file too: judged as one
    await mo.expect(contains=said("en", "photo.rejected.not_image"))
    assert await h.count(Case) == 0
    _lane, lat, lon = first_lane(h, 2)
    await mo.send_location(lat, lon)
    summary = await mo.expect(contains="Photos: 1")
    assert "Broken bench in the square" in (summary.text or "")
    assert no_crash(mo)


async def test_locations_at_zero_zero_or_far_away_are_refused_and_asked_again(
    h: Harness, logs: pytest.LogCaptureFixture
) -> None:
    noa = h.emulator.user(1304, first_name="Noa", language_code="en")
    await noa.send_photo(jpeg(), caption="Street light out")
    await noa.expect(contains=said("en", "report.ask_location"))
    await noa.send_location(0.0, 0.0)
    await noa.expect(contains=said("en", "report.location_null"))
    assert logged(logs, "bot.telegram.handlers.resident", "location (0, 0) refused")
    await noa.send_venue(-33.8568, 151.2153, "Opera House", "Sydney")
    district = h.district.name_en
    await noa.expect(contains=said("en", "report.location_outside", district=district)[:40])
    assert logged(logs, "bot.telegram.handlers.resident", "outside the district refused")
    assert await h.count(Case) == 0
    _lane, lat, lon = first_lane(h)
    await noa.send_location(lat, lon)
    summary = await noa.expect(contains="Photos: 1")
    assert "0.00000" not in (summary.text or "")


async def test_invisible_and_right_to_left_characters(
    h: Harness, logs: pytest.LogCaptureFixture
) -> None:
    p = await cast(h)
    ori = h.emulator.user(1305, first_name="Ori", language_code="en")
    await ori.send_command("/report")
    await ori.expect(contains=said("en", "report.ask_photo"))
    await ori.send_text(ZERO_WIDTH + " " + ZERO_WIDTH)
    await ori.expect(contains=said("en", "report.description_empty"))
    assert logged(logs, "bot.telegram.handlers.resident", "empty description refused")
    # A caption of invisible characters is no description either: it is asked for.
    await ori.send_photo(jpeg(), caption=ZERO_WIDTH)
    await ori.expect(contains=said("en", "report.ask_description", n=1, limit=5))

    # A right-to-left override would print the rest of the bot's sentence backwards.
    text = f"胡同口堆物堆料 {RLO}hsibbur{PDF} near שער הגן, blocks the way"
    await ori.send_text(text)
    await ori.expect(contains=said("en", "report.ask_location"))
    assert logged(logs, "bot.telegram.handlers.resident", f"description of {len(text)} characters")
    _lane, lat, lon = first_lane(h)
    await ori.send_location(lat, lon)
    summary = await ori.expect(contains="Photos: 1")
    await ori.press(t("en", "button.confirm"))
    await ori.expect(contains="CY-")
    [case] = await h.cases()
    assert case.description == text  # stored exactly as written
    card = await p["chief"].expect(contains=f"案件 {case.number}")
    for shown in (summary.text or "", card.text or ""):
        assert RLO not in shown and PDF not in shown
        isolated = FSI + text.replace(RLO, "").replace(PDF, "") + PDI
        assert isolated in shown  # the description cannot reorder what follows it
        assert shown.count(FSI) == shown.count(PDI)


async def test_an_edited_message_is_not_applied_and_the_resident_is_told(
    h: Harness, logs: pytest.LogCaptureFixture
) -> None:
    pia = h.emulator.user(1306, first_name="Pia", language_code="en")
    await pia.send_command("/report")
    await pia.expect(contains=said("en", "report.ask_photo"))
    sent = await pia.send_text("Manhole cover missing on the corner")
    await pia.expect(contains=said("en", "report.ask_location"))
    message_id = sent["message"]["message_id"]
    await pia.edit_text(message_id, "Manhole cover missing, someone fell in")
    await pia.expect(contains=said("en", "input.edited"))
    assert logged(
        logs, "bot.telegram.handlers.fallback", f"edited message {message_id} from person"
    )
    _lane, lat, lon = first_lane(h)
    await pia.send_location(lat, lon)
    summary = await pia.expect(contains="Manhole cover missing")
    assert "on the corner" in (summary.text or "") and "fell in" not in (summary.text or "")


async def test_a_photo_forwarded_from_a_channel_is_refused_with_the_reason(
    h: Harness, media_dir: Path, logs: pytest.LogCaptureFixture
) -> None:
    qi = h.emulator.user(1307, first_name="琪", language_code="zh-hans")
    await qi.forward_photo_from_channel(jpeg(), caption="朝阳发布：某路段积水")
    await qi.expect(contains=said("zh", "photo.rejected.forwarded"))
    assert logged(logs, "bot.telegram.handlers.intake", "forwarded from a channel")
    assert await nothing_left(h, media_dir)
    # In the middle of a report: the draft keeps its own photo only.
    await qi.send_photo(jpeg((30, 30, 200)), caption="路面积水很深")
    await qi.expect(contains=said("zh", "report.ask_location"))
    await qi.forward_photo_from_channel(jpeg((200, 200, 30)))
    await qi.expect(contains=said("zh", "photo.rejected.forwarded"))
    _lane, lat, lon = first_lane(h)
    await qi.send_location(lat, lon)
    await qi.expect(contains="照片：1 张")
    assert no_crash(qi, "zh")
