"""The Bot API emulator, driven by a real aiogram Bot over HTTP and by plain aiohttp requests."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import SendMessage
from aiogram.types import (
    BotCommand,
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyParameters,
    Update,
)
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web
from PIL import Image

from bot.clock import FakeClock
from tgemu.emulator import Persona, TelegramEmulator

TOKEN = "123456:TEST-token"
MB = 1024 * 1024


def jpeg(size: tuple[int, int] = (1600, 1200), *, exif: bool = True) -> bytes:
    """A JPEG with camera EXIF (maker and GPS) as a phone would send it."""
    image = Image.new("RGB", size, (200, 60, 30))
    buffer = io.BytesIO()
    if exif:
        tags = Image.Exif()
        tags[0x010F] = "PhoneMaker"
        tags[0x8825] = {1: "N", 2: (39.0, 54.0, 0.0)}
        image.save(buffer, "JPEG", exif=tags.tobytes())
    else:
        image.save(buffer, "JPEG")
    return buffer.getvalue()


def png(size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGBA", size, (0, 128, 255, 200)).save(buffer, "PNG")
    return buffer.getvalue()


def keyboard(*buttons: tuple[str, str]) -> InlineKeyboardMarkup:
    rows = [[InlineKeyboardButton(text=text, callback_data=data)] for text, data in buttons]
    return InlineKeyboardMarkup(inline_keyboard=rows)


def parsed(update: dict[str, Any]) -> Update:
    """The update as aiogram models it: proves its shape is the Bot API's."""
    return Update.model_validate(update)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def emu() -> AsyncIterator[TelegramEmulator]:
    emulator = TelegramEmulator()
    await emulator.start()
    yield emulator
    await emulator.stop()


def make_bot(emulator: TelegramEmulator) -> Bot:
    session = AiohttpSession(api=TelegramAPIServer.from_base(emulator.base_url))
    return Bot(TOKEN, session=session)


@pytest.fixture
async def bot(emu: TelegramEmulator) -> AsyncIterator[Bot]:
    client = make_bot(emu)
    yield client
    await client.session.close()


@pytest.fixture
async def alice(emu: TelegramEmulator) -> Persona:
    persona = emu.user(1001, first_name="王芳", language_code="zh-hans")
    await persona.send_command("/start", "lane_L01")
    return persona


async def raw(emu: TelegramEmulator, path: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as http,
        http.request(kwargs.pop("method", "POST"), emu.base_url + path, **kwargs) as response,
    ):
        return response.status, await response.json()


# --- identity, routing, errors ----------------------------------------------------------------


async def test_get_me_tokens_and_unknown_methods(emu: TelegramEmulator, bot: Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.is_bot, me.username) == (123456, True, "suipai_bot")

    assert await raw(emu, "/botnot-a-token/getMe") == (
        401,
        {"ok": False, "error_code": 401, "description": "Unauthorized"},
    )
    assert await raw(emu, f"/bot{TOKEN}/sendTelepathy") == (
        404,
        {"ok": False, "error_code": 404, "description": "Not Found"},
    )
    status, body = await raw(emu, f"/bot{TOKEN}/GETME", method="GET")
    assert status == 200 and body["result"]["id"] == 123456
    assert [call.method for call in emu.calls] == ["getMe", "sendTelepathy", "getMe"]


async def test_chat_must_exist_until_the_user_writes(emu: TelegramEmulator, bot: Bot) -> None:
    bob = emu.user(2002, first_name="李强")
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(bob.id, "你好")
    await bob.send_text("在吗")
    sent = await bot.send_message(bob.id, "在")
    assert sent.chat.id == bob.id and sent.from_user is not None and sent.from_user.is_bot
    await bob.block()
    with pytest.raises(TelegramForbiddenError, match="blocked by the user"):
        await bot.send_message(bob.id, "还在吗")
    await bob.send_command("/start")  # "Restart" unblocks
    assert (await bot.send_message(bob.id, "欢迎回来")).text == "欢迎回来"
    kinds = [u.event_type for u in await bot.get_updates()]
    assert kinds == ["message", "my_chat_member", "my_chat_member", "message"]


async def test_send_message_shapes_and_validation(alice: Persona, bot: Bot) -> None:
    first = await bot.send_message(
        alice.id,
        "<b>案件</b> CASE-1 &lt;已受理&gt;",
        parse_mode="HTML",
        reply_markup=keyboard(("确认", "ok:1")),
    )
    second = await bot.send_message(alice.id, "第二条")
    assert second.message_id > first.message_id > 1  # the user's /start took id 1
    assert first.text == "案件 CASE-1 <已受理>"
    assert first.entities is not None and first.entities[0].type == "bold"
    assert (first.entities[0].offset, first.entities[0].length) == (0, 2)
    assert first.reply_markup is not None
    assert first.reply_markup.model_dump() == keyboard(("确认", "ok:1")).model_dump()
    assert alice.inbox()[0].raw_text == "<b>案件</b> CASE-1 &lt;已受理&gt;"
    reply = await bot.send_message(alice.id, "收到", reply_parameters=ReplyParameters(message_id=1))
    assert reply.reply_to_message is not None
    assert reply.reply_to_message.text == "/start lane_L01"
    with pytest.raises(TelegramBadRequest, match="message to be replied not found"):
        await bot.send_message(alice.id, "x", reply_parameters=ReplyParameters(message_id=99))

    for text, error in [
        ("  ", "message text is empty"),
        ("长" * 4097, "message is too long"),
        ("a < b", "can't parse entities"),
        ("<b>bold", "can't parse entities"),
        ("<b><i>x</b></i>", "can't parse entities"),
        ("<marquee>x</marquee>", "Unsupported start tag"),
    ]:
        with pytest.raises(TelegramBadRequest, match=error):
            await bot.send_message(alice.id, text, parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(alice.id, "x", reply_markup=keyboard(("long", "x" * 65)))
    assert len(alice.inbox()) == 3


async def test_json_form_and_query_bodies(emu: TelegramEmulator, alice: Persona) -> None:
    markup = {"inline_keyboard": [[{"text": "OK", "callback_data": "ok"}]]}
    status, body = await raw(
        emu,
        f"/bot{TOKEN}/sendMessage",
        json={"chat_id": alice.id, "text": "json", "reply_markup": markup},
    )
    assert status == 200 and body["result"]["reply_markup"] == markup
    form = {
        "chat_id": str(alice.id),
        "text": "form",
        "reply_markup": '{"inline_keyboard": [[{"text": "OK", "callback_data": "ok"}]]}',
    }
    status, body = await raw(emu, f"/bot{TOKEN}/sendmessage", data=form)
    assert status == 200 and body["result"]["reply_markup"] == markup
    status, body = await raw(
        emu, f"/bot{TOKEN}/sendMessage?chat_id={alice.id}&text=query", method="GET"
    )
    assert status == 200 and body["result"]["text"] == "query"
    status, body = await raw(
        emu,
        f"/bot{TOKEN}/sendMessage",
        data={"chat_id": str(alice.id), "text": "x", "reply_markup": "{oops"},
    )
    assert (status, body["description"]) == (
        400,
        "Bad Request: can't parse reply keyboard markup JSON object",
    )
    assert [m.text for m in alice.inbox()] == ["json", "form", "query"]


# --- editing, deleting, buttons ---------------------------------------------------------------


async def test_edits_and_deletes(alice: Persona, bot: Bot) -> None:
    card = await bot.send_message(alice.id, "待受理", reply_markup=keyboard(("接单", "accept")))
    edited = await bot.edit_message_text("已受理", chat_id=alice.id, message_id=card.message_id)
    assert isinstance(edited, Message) and edited.edit_date is not None
    assert edited.reply_markup is None  # an edit without reply_markup drops the keyboard
    edit = await alice.expect_edit(contains="已受理")
    assert (edit.message_id, edit.method) == (card.message_id, "editMessageText")

    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text("已受理", chat_id=alice.id, message_id=card.message_id)
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("x", chat_id=alice.id, message_id=999)
    with pytest.raises(TelegramBadRequest, match="there is no caption"):
        await bot.edit_message_caption(chat_id=alice.id, message_id=card.message_id, caption="c")
    await bot.edit_message_reply_markup(
        chat_id=alice.id, message_id=card.message_id, reply_markup=keyboard(("评价", "rate"))
    )
    assert alice.message(card.message_id).buttons == ["评价"]
    assert [e.method for e in alice.message(card.message_id).edits] == [
        "editMessageText",
        "editMessageReplyMarkup",
    ]

    assert await bot.delete_message(alice.id, card.message_id)
    assert alice.message(card.message_id).deleted
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(alice.id, card.message_id)


async def test_press_inline_button_and_answer(
    emu: TelegramEmulator, alice: Persona, bot: Bot
) -> None:
    await bot.send_message(alice.id, "old", reply_markup=keyboard(("确认", "old")))
    card = await bot.send_message(
        alice.id, "new", reply_markup=keyboard(("确认", "new"), ("取消", "no"))
    )
    update = parsed(await alice.press("确认"))
    query = update.callback_query
    assert query is not None and query.data == "new"  # the newest message with that button
    assert query.message is not None and query.message.message_id == card.message_id

    assert await bot.answer_callback_query(query.id, text="已提交", show_alert=True)
    assert [(a.text, a.show_alert, a.data) for a in alice.alerts] == [("已提交", True, "new")]
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(query.id)

    forged = parsed(await alice.press_callback(card.message_id, "raw:data")).callback_query
    assert forged is not None and forged.data == "raw:data"
    assert parsed(await alice.press(callback_data="no")).callback_query is not None
    with pytest.raises(AssertionError, match="no button"):
        await alice.press("不存在")
    assert len(emu.updates) == 4  # /start and three presses, none confirmed yet


async def test_reply_keyboard_buttons(alice: Persona, bot: Bot) -> None:
    reply_keyboard = ReplyKeyboardMarkup(
        keyboard=[
            [KeyboardButton(text="📍 发送位置", request_location=True)],
            [KeyboardButton(text="跳过")],
        ]
    )
    sent = await bot.send_message(alice.id, "请发送位置", reply_markup=reply_keyboard)
    assert sent.reply_markup is None  # Telegram echoes only inline keyboards
    assert alice.last is not None and alice.last.buttons == ["📍 发送位置", "跳过"]
    located = parsed(await alice.press("📍 发送位置", location=(39.92, 116.44))).message
    assert located is not None and located.location is not None
    assert (located.location.latitude, located.location.longitude) == (39.92, 116.44)
    skipped = parsed(await alice.press("跳过")).message
    assert skipped is not None and skipped.text == "跳过"


# --- polling ----------------------------------------------------------------------------------


async def test_long_poll_returns_as_soon_as_an_update_arrives(
    emu: TelegramEmulator, alice: Persona, bot: Bot
) -> None:
    start = (await bot.get_updates(timeout=0))[-1]
    poll = asyncio.create_task(bot.get_updates(offset=start.update_id + 1, timeout=30))
    await emu.wait_until(lambda: sum(c.method == "getUpdates" for c in emu.calls) == 2)
    assert not poll.done()
    loop = asyncio.get_running_loop()
    sent_at = loop.time()
    await alice.send_text("井盖坏了")
    updates = await asyncio.wait_for(poll, timeout=5)
    assert loop.time() - sent_at < 1.0
    assert [u.message.text for u in updates if u.message] == ["井盖坏了"]
    assert await bot.get_updates(offset=updates[-1].update_id + 1) == []
    assert not emu.updates  # the offset confirmed everything


async def test_concurrent_polls_and_allowed_updates(
    emu: TelegramEmulator, alice: Persona, bot: Bot
) -> None:
    pending = await bot.get_updates()
    older = asyncio.create_task(bot.get_updates(offset=pending[-1].update_id + 1, timeout=30))
    await emu.wait_until(lambda: len(emu.calls) == 2)
    other = make_bot(emu)  # a second instance of the same bot
    try:
        assert await other.get_updates(timeout=0) == []
        with pytest.raises(TelegramConflictError, match="terminated by other getUpdates"):
            await older
        await other.get_updates(allowed_updates=["callback_query"])
        await alice.send_text("filtered out")
        await bot.send_message(alice.id, "按钮", reply_markup=keyboard(("好", "ok")))
        await alice.press("好")
        assert [u.event_type for u in await other.get_updates()] == ["callback_query"]
    finally:
        await other.session.close()


async def test_aiogram_dispatcher_end_to_end(emu: TelegramEmulator, bot: Bot) -> None:
    dispatcher = Dispatcher()

    @dispatcher.message(F.text)
    async def echo(message: Message) -> None:
        await message.answer(f"echo: {message.text}", reply_markup=keyboard(("再来", "again")))

    @dispatcher.callback_query(F.data == "again")
    async def again(query: Any) -> None:
        await query.answer("好的")
        await query.message.edit_text("again!")

    polling = asyncio.create_task(
        dispatcher.start_polling(bot, handle_signals=False, polling_timeout=5)
    )
    try:
        carol = emu.user(3003, first_name="张伟")
        await carol.send_text("路灯不亮")
        reply = await carol.expect(contains="echo: 路灯不亮")
        await carol.press("再来")
        edit = await carol.expect_edit(message_id=reply.message_id)
        assert edit.text == "again!"
        await emu.wait_until(lambda: carol.callback_answers)
        assert carol.callback_answers[0].text == "好的" and not carol.alerts
    finally:
        await dispatcher.stop_polling()
        await polling


# --- photos, albums, documents ----------------------------------------------------------------


async def test_user_photo_is_recompressed_without_exif(alice: Persona, bot: Bot) -> None:
    original = jpeg()
    assert Image.open(io.BytesIO(original)).getexif()
    message = parsed(await alice.send_photo(original, caption="垃圾满了")).message
    assert message is not None and message.photo is not None and message.caption == "垃圾满了"
    sizes = message.photo
    assert len(sizes) >= 2 and sizes[0].width < sizes[-1].width
    assert (sizes[-1].width, sizes[-1].height) == (1280, 960)

    file = await bot.get_file(sizes[-1].file_id)
    assert file.file_path is not None and file.file_size == sizes[-1].file_size
    downloaded = await bot.download_file(file.file_path)
    assert downloaded is not None
    received = Image.open(downloaded)
    assert received.format == "JPEG" and received.size == (1280, 960)
    assert not received.getexif() and "exif" not in received.info

    again = parsed(await alice.send_photo(original)).message
    assert again is not None and again.photo is not None
    assert again.photo[-1].file_unique_id == sizes[-1].file_unique_id
    assert again.photo[-1].file_id != sizes[-1].file_id


async def test_undecodable_photo_bytes_pass_through(alice: Persona, bot: Bot) -> None:
    message = parsed(await alice.send_photo(b"\xff\xd8 truncated jpeg")).message
    assert message is not None and message.photo is not None
    downloaded = await bot.download(message.photo[-1].file_id)
    assert downloaded is not None and downloaded.read() == b"\xff\xd8 truncated jpeg"


async def test_bot_photos_upload_resend_and_validation(alice: Persona, bot: Bot) -> None:
    sent = await bot.send_photo(alice.id, BufferedInputFile(png(), "after.png"), caption="已处理")
    assert sent.photo is not None and sent.caption == "已处理"
    inbox = alice.inbox()[-1]
    assert inbox.photo_bytes is not None and inbox.photo_bytes.startswith(b"\xff\xd8")
    resent = await bot.send_photo(alice.id, sent.photo[-1].file_id)
    assert resent.photo == sent.photo

    with pytest.raises(TelegramBadRequest, match="IMAGE_PROCESS_FAILED"):
        await bot.send_photo(alice.id, BufferedInputFile(b"not an image", "x.jpg"))
    with pytest.raises(TelegramBadRequest, match="wrong file identifier"):
        await bot.send_photo(alice.id, "AgACnope")
    with pytest.raises(TelegramBadRequest, match="message caption is too long"):
        await bot.send_photo(alice.id, sent.photo[-1].file_id, caption="字" * 1025)


async def test_albums_both_ways(emu: TelegramEmulator, alice: Persona, bot: Bot) -> None:
    updates = [
        parsed(u).message
        for u in await alice.send_album([jpeg(), png(), jpeg((800, 600))], caption="三张")
    ]
    assert all(m is not None for m in updates)
    group_ids = {m.media_group_id for m in updates if m}
    assert len(group_ids) == 1 and None not in group_ids
    assert [m.caption for m in updates if m] == ["三张", None, None]

    user_photo = updates[0].photo[-1].file_id if updates[0] and updates[0].photo else ""
    album = await bot.send_media_group(
        alice.id,
        media=[
            InputMediaPhoto(
                media=BufferedInputFile(png(), "a.png"), caption="<b>前</b>", parse_mode="HTML"
            ),
            InputMediaPhoto(media=user_photo),
        ],
    )
    assert len(album) == 2 and album[0].media_group_id == album[1].media_group_id is not None
    assert album[0].caption == "前" and album[1].caption is None
    assert [m.method for m in emu.messages_to(alice.id)] == ["sendMediaGroup", "sendMediaGroup"]
    with pytest.raises(TelegramBadRequest, match="too many messages"):
        await bot.send_media_group(alice.id, media=[InputMediaPhoto(media=user_photo)] * 11)


async def test_documents_keep_bytes_and_declared_sizes(alice: Persona, bot: Bot) -> None:
    original = jpeg()
    doc = parsed(
        await alice.send_document(original, file_name="IMG_0001.JPG", mime_type="image/jpeg")
    ).message
    assert doc is not None and doc.document is not None
    assert (doc.document.file_name, doc.document.mime_type, doc.document.file_size) == (
        "IMG_0001.JPG",
        "image/jpeg",
        len(original),
    )
    downloaded = await bot.download(doc.document.file_id)
    assert downloaded is not None and downloaded.read() == original  # EXIF and all

    big = parsed(
        await alice.send_document(b"", file_name="video.mp4", declared_size=30 * MB)
    ).message
    assert big is not None and big.document is not None and big.document.file_size == 30 * MB
    with pytest.raises(TelegramBadRequest, match="file is too big"):
        await bot.get_file(big.document.file_id)

    report = await bot.send_document(alice.id, BufferedInputFile(b"a,b\n1,2\n", "report.csv"))
    assert report.document is not None and report.document.file_name == "report.csv"
    assert (
        report.document.mime_type == "text/csv"
        and alice.inbox()[-1].document_bytes == b"a,b\n1,2\n"
    )


async def test_locations_venues_and_other_user_media(alice: Persona, bot: Bot) -> None:
    sent = await bot.send_location(alice.id, 39.92, 116.44)
    assert sent.location is not None and sent.location.latitude == 39.92
    venue = await bot.send_venue(alice.id, 39.9, 116.4, "朝阳区城管", "朝阳路 1 号")
    assert (
        venue.venue is not None and venue.venue.title == "朝阳区城管" and venue.location is not None
    )

    updates = [
        await alice.send_location(39.92, 116.44),
        await alice.send_venue(39.9, 116.4, "三里屯", "工体北路"),
        await alice.send_voice(),
        await alice.send_sticker(),
        await alice.send_video(),
        await alice.send_contact(),
        await alice.send_poll("哪个?", ["甲", "乙"]),
        await alice.send_animation(),
        await alice.forward_photo_from_channel(jpeg(), channel_title="朝阳发布"),
    ]
    messages = [parsed(u).message for u in updates]
    assert [m.content_type for m in messages if m] == [
        "location",
        "venue",
        "voice",
        "sticker",
        "video",
        "contact",
        "poll",
        "animation",
        "photo",
    ]
    forwarded = messages[-1]
    assert forwarded is not None and forwarded.forward_origin is not None
    assert forwarded.forward_origin.type == "channel"

    text = parsed(await alice.send_text("原文")).message
    assert text is not None
    edited = parsed(await alice.edit_text(text.message_id, "改过")).edited_message
    assert edited is not None and edited.text == "改过" and edited.edit_date is not None


# --- expectations -----------------------------------------------------------------------------


async def test_expect_sees_earlier_arrivals_and_reports_transcript(
    alice: Persona, bot: Bot
) -> None:
    await bot.send_message(alice.id, "CASE-7 已受理")  # arrives before expect is called
    await bot.send_message(alice.id, "CASE-7 已派单")
    assert (await alice.expect(contains="CASE-7")).text == "CASE-7 已受理"
    assert (await alice.expect(predicate=lambda m: "派单" in m.content)).text == "CASE-7 已派单"
    with pytest.raises(
        AssertionError, match=r"(?s)no bot message containing 'CASE-8'.*CASE-7 已派单"
    ):
        await alice.expect(contains="CASE-8", timeout=0.05)
    await alice.send_text("谢谢")  # an action moves the window past earlier messages
    late = asyncio.create_task(alice.expect(contains="CASE"))
    await bot.send_message(alice.id, "CASE-7 已办结")
    assert (await late).text == "CASE-7 已办结"


# --- limits and faults ------------------------------------------------------------------------


async def test_violations_are_counted_per_rule(clock: FakeClock) -> None:
    emulator = TelegramEmulator(clock=clock, per_chat_burst=3)
    await emulator.start()
    client = make_bot(emulator)
    try:
        alice = emulator.user(1001)
        await alice.send_text("hi")
        for _ in range(4):
            await client.send_message(alice.id, "burst")
        assert emulator.violations.as_dict() == {
            "global_per_second": 0,
            "private_burst": 1,
            "private_sustained": 0,
            "group_per_minute": 0,
        }
        clock.advance(timedelta(seconds=1))
        for _ in range(8):  # 12 within 10 s at 2 per second: sustained > 1/s, twice over
            clock.advance(timedelta(seconds=0.5))
            await client.send_message(alice.id, "steady")
        assert emulator.violations.private_sustained == 2 and emulator.violations.private_burst == 1

        group = emulator.group(-100200, title="朝阳区城管")
        for _ in range(21):
            clock.advance(timedelta(seconds=2))
            await client.send_message(group.id, "通报")
        assert emulator.violations.group_per_minute == 1

        clock.advance(timedelta(minutes=5))
        users = [emulator.user(5000 + n) for n in range(31)]
        for user in users:
            await user.send_text("hi")
        for user in users:
            await client.send_message(user.id, "broadcast")
        assert emulator.violations.global_per_second == 1
        assert emulator.violations.total == 5 and len(emulator.violations.log) == 5
        # editing and answering callbacks are not sends
        message_id = emulator.messages_to(1001)[-1].message_id
        for n in range(5):
            await client.edit_message_text(f"edit {n}", chat_id=1001, message_id=message_id)
        assert emulator.violations.total == 5
    finally:
        await client.session.close()
        await emulator.stop()


async def test_enforced_limits_answer_429(clock: FakeClock) -> None:
    emulator = TelegramEmulator(clock=clock, enforce_limits=True)
    await emulator.start()
    client = make_bot(emulator)
    try:
        alice = emulator.user(1001)
        await alice.send_text("hi")
        for _ in range(3):
            await client.send_message(alice.id, "ok")
        with pytest.raises(TelegramRetryAfter) as refused:
            await client.send_message(alice.id, "too fast")
        assert refused.value.retry_after == 1
        clock.advance(timedelta(seconds=1))
        await client.send_message(alice.id, "later")
        assert [m.text for m in alice.inbox()] == ["ok", "ok", "ok", "later"]
    finally:
        await client.session.close()
        await emulator.stop()


async def test_injected_faults(emu: TelegramEmulator, alice: Persona, bot: Bot) -> None:
    emu.fail_next(429, retry_after=7)
    with pytest.raises(TelegramRetryAfter) as retry:
        await bot.send_message(alice.id, "x")
    assert retry.value.retry_after == 7

    emu.fail_next(500, count=2, method="sendMessage")
    assert (await bot.get_me()).id == 123456  # other methods are unaffected
    for _ in range(2):
        with pytest.raises(TelegramServerError):
            await bot.send_message(alice.id, "x")
    emu.fail_next(502, executed=True)  # Telegram acted, the answer was lost
    with pytest.raises(TelegramServerError):
        await bot.send_message(alice.id, "delivered anyway")
    assert [m.text for m in alice.inbox()] == ["delivered anyway"]
    assert (await bot.send_message(alice.id, "ok")).text == "ok"


async def test_unreachable_refuse_and_hang(emu: TelegramEmulator, alice: Persona, bot: Bot) -> None:
    emu.set_unreachable(True)
    with pytest.raises(TelegramNetworkError):
        await bot.send_message(alice.id, "x")
    emu.set_unreachable(True, mode="hang")
    pending = asyncio.create_task(bot.send_message(alice.id, "x"))
    await emu.wait_until(lambda: emu.held_requests == 1)
    assert not pending.done()
    emu.reset_faults()
    with pytest.raises(TelegramNetworkError):
        await pending
    assert (await bot.send_message(alice.id, "back")).text == "back"
    assert [m.text for m in alice.inbox()] == ["back"]


# --- webhooks ---------------------------------------------------------------------------------


async def test_webhook_delivery_with_secret(
    emu: TelegramEmulator, alice: Persona, bot: Bot
) -> None:
    received: list[tuple[str | None, dict[str, Any]]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(
            (request.headers.get("X-Telegram-Bot-Api-Secret-Token"), await request.json())
        )
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        assert await bot.set_webhook(url, secret_token="s3cret")
        await emu.wait_until(lambda: len(received) == 1)  # the pending /start goes first
        await alice.send_text("webhook!")
        await emu.wait_until(lambda: len(received) == 2)
        assert received[1][0] == "s3cret" and received[1][1]["message"]["text"] == "webhook!"
        info = await bot.get_webhook_info()
        assert info.url == url and info.pending_update_count == 0
        with pytest.raises(TelegramConflictError, match="webhook is active"):
            await bot.get_updates()

        await runner.cleanup()  # the bot goes down: delivery fails and is retried
        await alice.send_text("while down")
        await emu.wait_until(lambda: emu.webhook is not None and emu.webhook.last_error_message)
        assert (await bot.get_webhook_info()).last_error_message
        assert await bot.delete_webhook(drop_pending_updates=True)
        assert await bot.get_updates() == []
    finally:
        await runner.cleanup()


async def test_webhook_reply_is_executed(emu: TelegramEmulator, bot: Bot) -> None:
    dispatcher = Dispatcher()

    @dispatcher.message()
    async def answer_in_reply(message: Message) -> SendMessage:
        return message.answer(f"收到: {message.text}")

    app = web.Application()
    SimpleRequestHandler(dispatcher, bot, handle_in_background=False, secret_token="tok").register(
        app, "/wh"
    )
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        await bot.set_webhook(f"http://127.0.0.1:{runner.addresses[0][1]}/wh", secret_token="tok")
        dave = emu.user(4004, first_name="赵敏")
        await dave.send_text("你好")
        assert (await dave.expect(contains="收到")).text == "收到: 你好"
    finally:
        await runner.cleanup()


# --- small methods ----------------------------------------------------------------------------


async def test_commands_actions_and_harmless_methods(
    emu: TelegramEmulator, alice: Persona, bot: Bot
) -> None:
    commands = [
        BotCommand(command="start", description="开始"),
        BotCommand(command="my_cases", description="我的案件"),
    ]
    assert await bot.set_my_commands(commands, language_code="zh")
    listed = await bot.get_my_commands(language_code="zh")
    assert [c.model_dump() for c in listed] == [c.model_dump() for c in commands]
    assert await bot.get_my_commands() == []
    assert emu.commands_for(language_code="zh")[1] == {
        "command": "my_cases",
        "description": "我的案件",
    }
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Bad-Name", description="x")])
    assert await bot.delete_my_commands(language_code="zh")
    assert await bot.get_my_commands(language_code="zh") == []

    assert await bot.send_chat_action(alice.id, "typing")
    with pytest.raises(TelegramBadRequest, match="wrong parameter action"):
        await bot.send_chat_action(alice.id, "dancing")
    assert await bot.close() and await bot.log_out()


async def test_html_entities_count_utf16_units(alice: Persona, bot: Bot) -> None:
    sent = await bot.send_message(
        alice.id,
        '😀 <b>井盖</b> <a href="https://example.cn/?a=1&amp;b=2">详情</a>',
        parse_mode="HTML",
    )
    assert sent.text == "😀 井盖 详情"
    assert sent.entities is not None
    bold, link = sent.entities
    assert (bold.type, bold.offset, bold.length) == ("bold", 3, 2)  # the emoji is two units
    assert (link.type, link.url) == ("text_link", "https://example.cn/?a=1&b=2")


async def test_group_chats(emu: TelegramEmulator, bot: Bot) -> None:
    group = emu.group(-100200, title="朝阳区城管")
    chief = emu.user(6006, first_name="陈队")
    with pytest.raises(AssertionError, match="not a member"):
        await chief.in_group(group).send_text("报到")
    emu.add_member(group, chief)
    in_group = chief.in_group(group)
    message = parsed(await in_group.send_text("报到")).message
    assert (
        message is not None and message.chat.type == "group" and message.chat.title == "朝阳区城管"
    )
    await bot.send_message(group.id, "今日通报")
    assert (await in_group.expect(contains="通报")).chat_id == group.id
    assert chief.inbox() == []  # the private chat saw nothing
