"""A resident reports a street problem end to end: the real bot, emulated Telegram, a database."""

from __future__ import annotations

import asyncio
import html
import io
import re
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

from bot.i18n import t
from storage.models import Case, Photo
from tests.harness import Harness, gps_exif, jpeg
from tgemu.emulator import Persona

pytestmark = pytest.mark.asyncio


def lane_point(h: Harness, index: int = 0) -> tuple[str, float, float]:
    lane = sorted(h.district.lanes.values(), key=lambda lane: lane.id)[index]
    lat, lon = lane.representative_point
    return lane.id, lat, lon


def said(lang: str, key: str, **params: object) -> str:
    """A catalogue text as the person reads it: HTML tags gone, entities resolved."""
    return html.unescape(re.sub(r"<[^>]+>", "", t(lang, key, **params)))


def first_line(lang: str, key: str, **params: object) -> str:
    return said(lang, key, **params).splitlines()[0]


async def test_one_photo_report_reaches_a_case_number(h: Harness) -> None:
    alice = h.emulator.user(1001, first_name="王芳", language_code="zh-hans")
    await alice.send_command("/start")
    await alice.expect(contains=first_line("zh", "start.greeting", district=h.district.name_zh))

    await alice.send_photo(jpeg(), caption="雅宝路井盖缺失，很危险")
    await alice.expect(contains=said("zh", "report.ask_location"))
    lane_id, lat, lon = lane_point(h)
    await alice.press(t("zh", "button.send_location"), location=(lat, lon))
    summary = await alice.expect(
        contains=first_line("zh", "report.summary", photos=1, description="", place="")
    )
    assert "雅宝路井盖缺失" in (summary.text or "")

    await alice.press(t("zh", "button.confirm"))
    created = await alice.expect(contains="CY-20261123-0001")
    assert "/case CY-20261123-0001" in (created.text or "")

    [case] = await h.cases()
    assert case.lane_id == lane_id
    assert case.description == "雅宝路井盖缺失，很危险"
    assert (case.lat, case.lon) == pytest.approx((lat, lon))
    # Submitted, then sorted and sent on at once (manhole covers go to 市政).
    assert [e.action for e in await h.events(case.id)] == ["submitted", "dispatched"]
    assert case.state == "dispatched"
    assert case.category_id == "jinggai"
    assert await h.count(Photo) == 1
    # The summary's buttons are gone once it is confirmed.
    await h.emulator.wait_until(lambda: not summary_markup(alice, summary.message_id))


def summary_markup(user: object, message_id: int) -> object:
    for message in user.inbox():
        if message.message_id == message_id:
            return message.reply_markup
    return None


async def test_album_of_three_photos_makes_one_case_with_three_photos(h: Harness) -> None:
    bob = h.emulator.user(1002, first_name="Bob", language_code="en")
    photos = [jpeg((200, 30 * i, 40)) for i in range(3)]
    await bob.send_album(photos, caption="Garbage piled up by the lane entrance")
    await bob.expect(contains=said("en", "report.ask_location"))
    _lane, lat, lon = lane_point(h, 3)
    await bob.send_location(lat, lon)
    summary = await bob.expect(contains="Photos: 3")
    assert "Garbage piled up" in (summary.text or "")
    await bob.press(t("en", "button.confirm"))
    await bob.expect(contains="CY-20261123-0001")
    [case] = await h.cases()
    assert len(case.photos) == 3
    assert len({p.sha256 for p in case.photos}) == 3


async def test_photo_sent_as_file_uses_its_gps_and_is_stored_without_metadata(
    h: Harness, media_dir: Path
) -> None:
    carol = h.emulator.user(1003, first_name="Carol", language_code="en")
    _lane, lat, lon = lane_point(h, 5)
    data = jpeg(exif=gps_exif(lat, lon))
    await carol.send_document(
        data, file_name="IMG_0042.JPG", mime_type="image/jpeg", caption="Street light out"
    )
    await carol.expect(contains=said("en", "report.exif_location_used"))
    await carol.expect(contains="Photos: 1")
    await carol.press(t("en", "button.confirm"))
    await carol.expect(contains="CY-20261123-0001")
    [case] = await h.cases()
    assert case.lat == pytest.approx(lat, abs=1e-5)
    assert case.lon == pytest.approx(lon, abs=1e-5)
    [photo] = case.photos
    stored = Image.open(io.BytesIO((media_dir / photo.path).read_bytes()))
    assert not stored.getexif()
    assert "exif" not in stored.info and "icc_profile" not in stored.info


async def test_deep_link_from_a_street_sign_presets_the_lane(h: Harness) -> None:
    dan = h.emulator.user(1004, first_name="Dan", language_code="zh-hans")
    lane_id, _lat, _lon = lane_point(h, 7)
    lane = h.district.lanes[lane_id]
    await dan.send_command("/start", f"lane_{lane_id}")
    await dan.expect(contains=lane.name_zh)
    await dan.send_photo(jpeg(), caption="墙上有小广告")
    summary = await dan.expect(contains=lane.name_zh)
    assert t("zh", "button.confirm") in str(summary.reply_markup)
    await dan.press(t("zh", "button.confirm"))
    await dan.expect(contains="CY-20261123-0001")
    [case] = await h.cases()
    assert case.lane_id == lane_id
    assert case.street_id == lane.street_id
    assert case.lat is None


async def reported(
    h: Harness, user: Persona, caption: str, index: int = 0, lang: str = "en"
) -> str:
    """Act out a whole report and return its case number."""
    _lane, lat, lon = lane_point(h, index)
    await user.send_photo(jpeg((10 * index, 80, 120)), caption=caption)
    await user.send_location(lat, lon)
    await user.expect(
        contains=first_line(lang, "report.summary", photos=1, description="", place="")
    )
    await user.press(t(lang, "button.confirm"))
    created = await user.expect(contains="CY-")
    found = re.search(r"CY-\d{8}-\d{4}", created.text or "")
    assert found is not None
    return found.group(0)


async def test_my_cases_and_a_case_timeline_are_shown_only_to_those_allowed(h: Harness) -> None:
    erin = h.emulator.user(1005, first_name="Erin", language_code="en")
    number = await reported(h, erin, "Broken pavement, people trip")
    await erin.send_command("/my")
    listing = await erin.expect(contains=said("en", "my.header", n=1))
    assert number in (listing.text or "")
    assert "Broken pavement" in (listing.text or "")

    await erin.send_command("/case", number)
    detail = await erin.expect(contains="Timeline")
    assert f"Case {number}" in (detail.text or "")
    assert t("en", "event.submitted") in (detail.text or "")
    assert t("en", "button.withdraw") in str(detail.reply_markup)

    stranger = h.emulator.user(1099, first_name="Stranger", language_code="en")
    await stranger.send_command("/case", number)
    await stranger.expect(contains=said("en", "case.not_found", number=number))


async def test_resident_adds_a_note_and_withdraws_the_case(h: Harness) -> None:
    fay = h.emulator.user(1006, first_name="Fay", language_code="en")
    number = await reported(h, fay, "Bikes block the pavement")
    await fay.send_command("/case", number)
    await fay.expect(contains="Timeline")
    await fay.press(t("en", "button.add_note"))
    await fay.expect(contains=said("en", "case.ask_note", number=number))
    await fay.send_text("There are about twenty of them now")
    await fay.expect(contains=said("en", "case.note_added", number=number))

    await fay.send_command("/case", number)
    await fay.expect(contains="about twenty")
    await fay.press(t("en", "button.withdraw"))
    await fay.expect(contains=said("en", "case.confirm_withdraw", number=number))
    await fay.press(t("en", "button.withdraw_yes"))
    await fay.expect(contains=said("en", "case.withdrawn", number=number))
    [case] = await h.cases()
    assert case.state == "withdrawn"
    actions = [e.action for e in await h.events(case.id)]
    assert actions[0] == "submitted" and actions[-2:] == ["note", "withdrawn"]


# --- bad input: a clear answer, nothing half-written ----------------------------------------


async def test_corrupted_jpeg_is_refused_and_nothing_is_stored(h: Harness) -> None:
    gus = h.emulator.user(1007, first_name="Gus", language_code="en")
    broken = jpeg()[:300]  # a JPEG cut short
    await gus.send_photo(broken, caption="Pothole")
    await gus.expect(contains=said("en", "photo.rejected.corrupt"))
    assert await h.nothing_stored()


async def test_thirty_megabyte_file_is_refused_before_download(h: Harness) -> None:
    hal = h.emulator.user(1008, first_name="Hal", language_code="zh-hans")
    await hal.send_document(
        b"", file_name="huge.jpg", mime_type="image/jpeg", declared_size=30 * 1024 * 1024
    )
    await hal.expect(contains=said("zh", "photo.rejected.too_large", limit_mb=20))
    assert await h.nothing_stored()
    assert not any(method == "getFile" for method, _params in h.emulator.calls)


async def test_pdf_is_not_a_photo(h: Harness) -> None:
    ivy = h.emulator.user(1009, first_name="Ivy", language_code="en")
    await ivy.send_document(
        b"%PDF-1.7\n1 0 obj <<>> endobj\n%%EOF", file_name="scan.pdf", mime_type="application/pdf"
    )
    await ivy.expect(contains=said("en", "photo.rejected.not_image"))
    assert await h.nothing_stored()


async def test_voice_and_sticker_get_a_clear_answer(h: Harness) -> None:
    jay = h.emulator.user(1010, first_name="Jay", language_code="zh-hans")
    await jay.send_voice()
    await jay.expect(contains=said("zh", "input.unsupported"))
    await jay.send_sticker()
    await jay.expect(contains=said("zh", "input.unsupported"))
    assert await h.nothing_stored()


async def test_description_over_2000_characters_is_refused_then_a_short_one_taken(
    h: Harness,
) -> None:
    kim = h.emulator.user(1011, first_name="Kim", language_code="en")
    await kim.send_command("/report")
    await kim.expect(contains=said("en", "report.ask_photo"))
    await kim.send_text("x" * 2500)
    await kim.expect(contains=said("en", "report.description_too_long", n=2500, limit=2000))
    await kim.send_text("Noise from a construction site every night")
    await kim.expect(contains=said("en", "report.ask_location"))
    assert await h.nothing_stored()


async def test_cancel_midway_leaves_nothing(h: Harness) -> None:
    lee = h.emulator.user(1012, first_name="Lee", language_code="en")
    await lee.send_photo(jpeg(), caption="Illegal structure on the roof")
    await lee.expect(contains=said("en", "report.ask_location"))
    await lee.send_command("/cancel")
    await lee.expect(contains=said("en", "cancel.done"))
    await lee.send_text("hello?")
    await lee.expect(contains=said("en", "input.idle_text"))
    assert await h.count(Case) == 0


async def test_resident_who_refuses_to_share_location_describes_the_place(h: Harness) -> None:
    may = h.emulator.user(1013, first_name="May", language_code="zh-hans")
    await may.send_photo(jpeg(), caption="路灯不亮")
    await may.expect(contains=said("zh", "report.ask_location"))
    await may.press(t("zh", "button.no_location"))
    await may.expect(contains=said("zh", "report.ask_address"))
    await may.send_text("芳草地西街 3 号楼北侧")
    await may.expect(contains="芳草地西街 3 号楼北侧")
    await may.press(t("zh", "button.confirm"))
    await may.expect(contains="CY-20261123-0001")
    [case] = await h.cases()
    assert case.lat is None and case.address == "芳草地西街 3 号楼北侧"


async def test_location_outside_the_district_is_refused(h: Harness) -> None:
    ned = h.emulator.user(1014, first_name="Ned", language_code="en")
    await ned.send_photo(jpeg(), caption="Graffiti")
    await ned.expect(contains=said("en", "report.ask_location"))
    await ned.send_location(31.2304, 121.4737)  # Shanghai
    await ned.expect(
        contains=first_line("en", "report.location_outside", district=h.district.name_en)
    )
    _lane, lat, lon = lane_point(h, 2)
    await ned.send_location(lat, lon)
    await ned.expect(contains="Photos: 1")
    assert await h.count(Case) == 0


async def test_confirm_pressed_twice_makes_exactly_one_case(h: Harness) -> None:
    oz = h.emulator.user(1015, first_name="Oz", language_code="en")
    _lane, lat, lon = lane_point(h, 1)
    await oz.send_photo(jpeg(), caption="Overflowing bins")
    await oz.send_location(lat, lon)
    summary = await oz.expect(contains="Photos: 1")
    assert summary.reply_markup is not None
    data = summary.reply_markup["inline_keyboard"][0][0]["callback_data"]
    await asyncio.gather(
        oz.press_callback(summary.message_id, data), oz.press_callback(summary.message_id, data)
    )
    await oz.expect(contains="CY-20261123-0001")
    await h.emulator.wait_until(lambda: len(oz.callback_answers) >= 2)
    assert await h.count(Case) == 1
    assert any("CY-20261123-0001" in (a.text or "") for a in oz.callback_answers)


async def test_two_residents_confirming_at_once_get_distinct_numbers(h: Harness) -> None:
    residents = [
        h.emulator.user(1100 + i, first_name=f"R{i}", language_code="en") for i in range(2)
    ]
    summaries = []
    for i, r in enumerate(residents):
        _lane, lat, lon = lane_point(h, i)
        await r.send_photo(jpeg((50 * i, 100, 100)), caption=f"Problem number {i}")
        await r.send_location(lat, lon)
        summaries.append(await r.expect(contains="Photos: 1"))
    confirm = t("en", "button.confirm")
    await asyncio.gather(*(r.press(confirm) for r in residents))
    for r in residents:
        await r.expect(contains="CY-20261123-000")
    numbers = sorted(c.number for c in await h.cases())
    assert numbers == ["CY-20261123-0001", "CY-20261123-0002"]


async def test_language_follows_telegram_and_can_be_switched(h: Harness) -> None:
    pat = h.emulator.user(1016, first_name="Pat", language_code="en-GB")
    await pat.send_command("/start")
    await pat.expect(contains=first_line("en", "start.greeting", district=h.district.name_en))
    await pat.send_command("/lang")
    await pat.expect(contains=said("en", "lang.choose"))
    await pat.press("中文")
    await pat.expect(contains=said("zh", "lang.set"))
    await pat.send_command("/help")
    await pat.expect(contains=first_line("zh", "help.text", district=h.district.name_zh))


async def test_photos_are_stored_once_per_content(h: Harness, media_dir: Path) -> None:
    quin = h.emulator.user(1017, first_name="Quin", language_code="en")
    await reported(h, quin, "Parked on the pavement")
    async with h.session() as session:
        [photo] = (await session.scalars(select(Photo))).all()
    assert (media_dir / photo.path).is_file()
    assert photo.size == (media_dir / photo.path).stat().st_size


async def test_an_iphone_heic_sent_as_a_file_and_a_venue(h: Harness, media_dir: Path) -> None:
    import pillow_heif

    if not pillow_heif.libheif_info().get("HEIF"):
        pytest.skip("this libheif build has no HEVC encoder, so no HEIC can be made")
    heif = pillow_heif.from_pillow(Image.open(io.BytesIO(jpeg((90, 140, 200)))))
    buf = io.BytesIO()
    heif.save(buf, quality=80)
    rae = h.emulator.user(1018, first_name="Rae", language_code="en")
    await rae.send_document(
        buf.getvalue(), file_name="IMG_1234.HEIC", mime_type="image/heic", caption="Broken bench"
    )
    await rae.expect(contains=t("en", "report.ask_location").split(".")[0])
    lane_id, lat, lon = lane_point(h, 4)
    await rae.send_venue(lat, lon, "Chaowai SOHO", "6 Chaowai St")
    summary = await rae.expect(contains="Photos: 1")
    assert h.district.lanes[lane_id].name_en in (summary.text or "")
    await rae.press(t("en", "button.confirm"))
    await rae.expect(contains="CY-20261123-0001")
    [case] = await h.cases()
    assert case.address == "Chaowai SOHO, 6 Chaowai St"
    [photo] = case.photos
    stored = Image.open(io.BytesIO((media_dir / photo.path).read_bytes()))
    assert stored.format == "JPEG" and not stored.getexif()


async def test_editing_a_draft_before_confirming(h: Harness) -> None:
    sam = h.emulator.user(1019, first_name="Sam", language_code="en")
    await sam.send_photo(jpeg((10, 90, 10)), caption="Bins full")
    _lane, lat, lon = lane_point(h, 6)
    await sam.send_location(lat, lon)
    summary = await sam.expect(contains="Photos: 1")
    await sam.press(t("en", "button.edit"))
    await sam.expect_edit(message_id=summary.message_id)
    await sam.press(t("en", "button.edit_description"))
    await sam.expect(contains=said("en", "report.ask_new_description"))
    await sam.send_text("Bins overflowing for three days, rubbish on the ground")
    fresh = await sam.expect(contains="Bins overflowing for three days")
    assert "Photos: 1" in (fresh.text or "")
    await sam.press(t("en", "button.edit"))
    await sam.expect_edit(message_id=fresh.message_id)
    await sam.press(t("en", "button.add_photos"))
    await sam.expect(contains=said("en", "report.ask_more_photos", n=1, limit=5))
    await sam.send_photo(jpeg((200, 200, 10)))
    await sam.expect(contains="Photos: 2")
    await sam.press(t("en", "button.confirm"))
    await sam.expect(contains="CY-20261123-0001")
    [case] = await h.cases()
    assert case.description == "Bins overflowing for three days, rubbish on the ground"
    assert len(case.photos) == 2


async def test_a_resident_adds_a_photo_to_an_open_case(h: Harness) -> None:
    tia = h.emulator.user(1020, first_name="Tia", language_code="en")
    number = await reported(h, tia, "Tree branch hanging over the road")
    await tia.send_command("/case", number)
    await tia.expect(contains="Timeline")
    await tia.press(t("en", "button.add_photo"))
    await tia.expect(contains=said("en", "case.ask_photo", number=number))
    await tia.send_voice()
    await tia.expect(contains=said("en", "case.photo_expected"))
    await tia.send_photo(jpeg((70, 160, 70)))
    await tia.expect(contains=said("en", "case.photo_added", number=number))
    [case] = await h.cases()
    assert len(case.photos) == 2
    assert "photo_added" in [e.action for e in await h.events(case.id)]
