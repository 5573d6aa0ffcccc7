"""Privacy: who reported is nobody else's business, photos carry nothing but pixels, /forget.

A resident's name, username, phone and Telegram id never reach a lane chief, an officer, a
supervisor, a department's group, the digest or the CSV export: a case number and the report's
content are enough to act on. Photos are stripped of every metadata field before they are
stored or sent on. A resident may ask to be forgotten: the cases stay, unlinked from them.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

from PIL import Image
from sqlalchemy import select

from bot.domain.district import Privacy, check_district, load_district
from bot.domain.labels import labels_csv
from bot.figures.digest import build_digest
from bot.figures.export import export_csv
from bot.i18n import t
from storage.models import Case, CaseEvent, CategoryLabel, OutboxMessage, Person, Photo
from tests.harness import Harness, gps_exif, jpeg, plain_text
from tests.test_handling_loop import PILED_UP, cast, first_lane, has_button, resolve, state_of
from tgemu.emulator import Persona
from tgemu.models import SentMessage

RESIDENT_ID = 7654321
NAME, SURNAME, USERNAME, PHONE = "王芳", "Zhangsecret", "wangfang_secret", "13912345678"
SERIAL, MAKER = "SN-99887766", "PhoneMaker"
SECRETS = (NAME, SURNAME, USERNAME, PHONE, str(RESIDENT_ID))


def camera_jpeg(lat: float, lon: float, color: tuple[int, int, int] = (200, 60, 40)) -> bytes:
    """A phone photo: GPS, maker, model and the camera's serial number in its EXIF."""
    exif = gps_exif(lat, lon)
    exif.get_ifd(0x8769)[0xA431] = SERIAL  # BodySerialNumber
    return jpeg(color, exif=exif)


def assert_bare(data: bytes) -> None:
    """A JPEG with no metadata at all: no EXIF (so no GPS, maker, model, serial), no ICC."""
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG"
    assert not image.getexif()
    assert not set(image.info) & {"exif", "icc_profile", "xmp", "comment"}
    assert MAKER.encode() not in data and SERIAL.encode() not in data


def everything_seen(messages: list[SentMessage]) -> str:
    """All text a reader saw: messages, captions, buttons and every edit."""
    parts: list[str] = []
    for m in messages:
        parts += [m.content, str(m.reply_markup or "")]
        parts += [e.content + str(e.reply_markup or "") for e in m.edits]
    return "\n".join(parts)


async def messages_for(h: Harness, chat_id: int) -> int:
    async with h.session() as session:
        rows = await session.scalars(
            select(OutboxMessage.id).where(OutboxMessage.chat_id == chat_id)
        )
        return len(rows.all())


async def named_resident(h: Harness) -> Persona:
    resident = h.emulator.user(
        RESIDENT_ID,
        first_name=NAME,
        last_name=SURNAME,
        username=USERNAME,
        language_code="zh-hans",
    )
    await resident.send_command("/start")
    await resident.expect(contains="随拍即办")
    await resident.send_contact(PHONE)  # people do; the bot neither keeps nor passes it on
    await resident.expect(contains=plain_text("zh", "input.unsupported"))
    return resident


async def report_with_camera_photo(
    h: Harness, resident: Persona, text: str, lane: int = 0, color: tuple[int, int, int] = (9, 9, 9)
) -> Case:
    _lane, lat, lon = first_lane(h, lane)
    await resident.send_document(
        camera_jpeg(lat, lon, color), file_name="IMG_2001.JPG", mime_type="image/jpeg", caption=text
    )
    await resident.expect(contains=plain_text("zh", "report.exif_location_used"))
    await resident.expect(contains="照片：1 张")
    await resident.press(t("zh", "button.confirm"))
    await resident.expect(contains="CY-")
    [case] = [c for c in await h.cases() if c.description == text]
    return case


async def test_a_full_loop_shows_the_resident_to_nobody_who_handles_it(
    h: Harness, media_dir: Path
) -> None:
    p = await cast(h)
    chief, officer, supervisor = p["chief"], p["officer"], p["supervisor"]
    resident = await named_resident(h)
    case = await report_with_camera_photo(h, resident, PILED_UP)
    card = await chief.expect(contains=f"案件 {case.number}")
    await chief.press(t("zh", "card.button.accept"))
    await resident.expect(contains=plain_text("zh", "progress.accepted", number=case.number))
    await chief.press_callback(card.message_id, f"whi:{case.id}:chengguan")
    await officer.expect(contains=f"Case {case.number}")
    await officer.press(t("en", "card.button.duty"))
    await resident.expect(
        contains=plain_text("zh", "progress.reported_for_duty", number=case.number)
    )
    # The chief's after-photo comes from a phone too: the resident gets it bare.
    await has_button(h, chief, t("zh", "card.button.resolve"))
    await chief.press(t("zh", "card.button.resolve"))
    await chief.expect(contains=plain_text("zh", "card.ask_resolve", number=case.number))
    _lane, lat, lon = first_lane(h)
    await chief.send_document(
        camera_jpeg(lat, lon, (20, 160, 60)),
        file_name="IMG_3001.JPG",
        mime_type="image/jpeg",
        caption="已清理",
    )
    after = await resident.expect(predicate=lambda m: m.method == "sendPhoto")
    assert after.photo_bytes is not None
    assert_bare(after.photo_bytes)
    await resident.expect(contains="已清理")
    await resident.press("⭐")  # not good enough: reopened, the chief and supervisor are told
    await supervisor.expect(contains=f"Case {case.number} was reopened")
    await resolve(h, chief, case, "重新清理")
    await resident.expect(contains="重新清理")
    await resident.press("⭐⭐⭐⭐⭐")
    await resident.expect(contains="感谢")
    await resident.send_text("谢谢，这次干净了")  # the comment is on the timeline handlers see
    await resident.expect(contains=t("zh", "rate.comment_thanks"))
    for who in (chief, officer, supervisor):
        await who.send_command("/case", case.number)
        await who.expect(contains=case.number)
    assert await state_of(h, case) == "closed"

    handlers_saw = [m for who in (chief, officer, supervisor) for m in who.inbox()]
    for chat_id in (
        h.district.departments["chengguan"].chat_id,
        h.district.street_offices[case.street_id].triage_chat_id,
    ):
        handlers_saw += h.emulator.messages_to(chat_id)
    seen = everything_seen(handlers_saw)
    assert case.number in seen and PILED_UP in seen
    for secret in SECRETS:
        assert secret not in seen, secret
    photos = [m.photo_bytes for m in handlers_saw if m.photo_bytes]
    assert photos, "the chief got the resident's photo"
    for data in photos:
        assert_bare(data)
    async with h.session() as session:
        stored = (await session.scalars(select(Photo))).all()
        assert {p.kind for p in stored} == {"before", "after"}
        for photo in stored:
            assert_bare((media_dir / photo.path).read_bytes())
        # The export and the digest name no resident either.
        csv = await export_csv(
            session,
            h.district,
            start=case.created_at.astimezone(h.ctx.district.tz).date(),
            end=case.created_at.astimezone(h.ctx.district.tz).date(),
            street_id=None,
            tz=h.ctx.district.tz,
        )
        digest = await build_digest(
            session,
            h.district,
            case.street_id,
            day=h.clock.now().astimezone(h.ctx.district.tz).date(),
            now=h.clock.now(),
            lang="zh",
        )
    text = csv.decode("utf-8-sig")
    assert case.number in text
    for secret in SECRETS:
        assert secret not in text and secret not in digest.text, secret


async def test_forget_unlinks_the_resident_from_their_cases_which_stay(h: Harness) -> None:
    p = await cast(h)
    chief = p["chief"]
    resident = await named_resident(h)
    kept_open = await report_with_camera_photo(h, resident, PILED_UP)
    card = await chief.expect(contains=f"案件 {kept_open.number}")
    withdrawn = await report_with_camera_photo(
        h, resident, "墙上贴满了小广告，电话 13912345678", lane=3, color=(30, 30, 220)
    )
    await resident.send_command("/case", withdrawn.number)
    await resident.expect(predicate=lambda m: t("zh", "button.withdraw") in str(m.reply_markup))
    await resident.press(t("zh", "button.withdraw"))
    await resident.expect(
        contains=plain_text("zh", "case.confirm_withdraw", number=withdrawn.number)
    )
    await resident.press(t("zh", "button.withdraw_yes"))
    await resident.expect(contains=plain_text("zh", "case.withdrawn", number=withdrawn.number))

    await resident.send_command("/forget")
    question = await resident.expect(contains=plain_text("zh", "forget.confirm", cases=2, open=1))
    assert t("zh", "forget.button_yes") in str(question.reply_markup)
    async with h.session() as session:
        me = await session.scalar(select(Person).where(Person.telegram_id == RESIDENT_ID))
        assert me is not None and me.name and me.username == USERNAME
        assert me.forgotten_at is None  # asking is not doing: a button confirms
    await resident.press(t("zh", "forget.button_yes"))
    await resident.expect(contains=plain_text("zh", "forget.done", cases=2))

    async with h.session() as session:
        me = await session.scalar(select(Person).where(Person.telegram_id == RESIDENT_ID))
        assert me is not None and me.forgotten_at is not None
        assert (me.name, me.username) == (None, None)
        rows = (await session.scalars(select(Case).order_by(Case.id))).all()
        assert [(c.number, c.description) for c in rows] == [
            (kept_open.number, kept_open.description),
            (withdrawn.number, withdrawn.description),
        ]
        assert all(c.reporter_id is None and c.idempotency_key is None for c in rows)
        assert [c.state for c in rows] == ["dispatched", "withdrawn"]
        mine = await session.scalars(select(CaseEvent).where(CaseEvent.actor_id == me.id))
        assert mine.all() == []
        kept = (
            await session.scalars(select(OutboxMessage).where(OutboxMessage.chat_id == RESIDENT_ID))
        ).all()
        assert all(row.case_id is None for row in kept)
        assert not any(kept_open.number in str(row.params) for row in kept)
        person_id = me.id

    # Telegram still sends the name with every message: it is not stored again.
    await resident.send_command("/my")
    await resident.expect(contains=t("zh", "my.none"))
    await resident.send_command("/case", kept_open.number)
    await resident.expect(contains=plain_text("zh", "case.not_found", number=kept_open.number))
    async with h.session() as session:
        me = await session.get(Person, person_id)
        assert me is not None and (me.name, me.username) == (None, None)

    # The district's work goes on; the resident is no longer told of it (what they would be
    # told is written in the same transaction as the step, so it would be there by now).
    before = await messages_for(h, RESIDENT_ID)
    await chief.press_callback(card.message_id, f"card:accept:{kept_open.id}")
    await chief.expect_edit(message_id=card.message_id, contains="办理中")
    await resolve(h, chief, kept_open, "已清理")
    assert await state_of(h, kept_open) == "resolved"
    assert await messages_for(h, RESIDENT_ID) == before

    # Staff act for the district: they cannot forget themselves from the chat.
    await chief.send_command("/forget")
    await chief.expect(contains=t("zh", "forget.staff"))


async def test_forget_removes_the_residents_words_kept_as_classifier_labels(h: Harness) -> None:
    """A triage label copies the case's description: /forget left those copies behind."""
    await cast(h)
    resident = await named_resident(h)
    case = await report_with_camera_photo(h, resident, "楼下堆物，我家电话 13912345678")
    others = h.emulator.user(7654322, first_name="邻居", language_code="zh-hans")
    await others.send_command("/start")
    await others.expect(contains="随拍即办")
    other_case = await report_with_camera_photo(h, others, "别人的描述", lane=3, color=(1, 2, 3))
    async with h.session() as session, session.begin():
        supervisor = await session.scalar(
            select(Person).where(Person.telegram_id != RESIDENT_ID, Person.roles.any())
        )
        assert supervisor is not None
        for labelled in (case, other_case):  # as the triage button does (cases.categorise)
            session.add(
                CategoryLabel(
                    case_id=labelled.id,
                    text=labelled.description,
                    category_id="duiwuduiliao",
                    source="triage",
                    labelled_by=supervisor.id,
                    created_at=h.clock.now(),
                )
            )
    async with h.session() as session:
        before, rows = await labels_csv(session)
    assert rows == 2 and PHONE in before

    await resident.send_command("/forget")
    await resident.expect(contains=plain_text("zh", "forget.confirm", cases=1, open=1))
    await resident.press(t("zh", "forget.button_yes"))
    await resident.expect(contains=plain_text("zh", "forget.done", cases=1))

    async with h.session() as session:
        after, rows = await labels_csv(session)
        kept = (await session.scalars(select(CategoryLabel))).all()
        [still] = (await session.scalars(select(Case).where(Case.id == case.id))).all()
    assert rows == 1 and PHONE not in after and "别人的描述" in after
    assert [label.case_id for label in kept] == [other_case.id]
    assert still.description == case.description  # the case itself stays, as before


def test_the_privacy_settings_are_the_districts_and_checked(tmp_path: Path) -> None:
    from bot.config import SAMPLE_DISTRICT_DIR

    sample = load_district(SAMPLE_DISTRICT_DIR).privacy
    assert sample == Privacy()  # the sample states the defaults
    assert (sample.open311_location_precision_m, sample.keep_unused_photos_days) == (100, 7)
    folder = tmp_path / "district"
    shutil.copytree(SAMPLE_DISTRICT_DIR, folder)
    toml = folder / "district.toml"
    head, _, _ = toml.read_text(encoding="utf-8").partition("[privacy]")

    toml.write_text(head, encoding="utf-8")
    assert load_district(folder).privacy == Privacy()  # left out: the defaults
    toml.write_text(
        head + "[privacy]\nopen311_location_precision_m = 250\nkeep_sent_messages_days = 90\n",
        encoding="utf-8",
    )
    assert load_district(folder).privacy == Privacy(
        open311_location_precision_m=250.0, keep_sent_messages_days=90.0
    )
    toml.write_text(
        head
        + "[privacy]\nkeep_processed_updates_days = 0.5\nkeep_unused_photo_days = 1\n"
        + "open311_location_precision_m = -5\nkeep_abandoned_drafts_days = 'a month'\n",
        encoding="utf-8",
    )
    problems = [f"{p.where}: {p.message}" for p in check_district(folder)]
    assert len(problems) == 4, problems
    assert any("keep_processed_updates_days 0.5 is smaller than 1" in p for p in problems)
    assert any("unknown key 'keep_unused_photo_days'" in p for p in problems)
    assert any("open311_location_precision_m must be positive" in p for p in problems)
    assert any("keep_abandoned_drafts_days must be a number" in p for p in problems)
