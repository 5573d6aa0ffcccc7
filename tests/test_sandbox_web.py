"""The sandbox's web API against the real bot and the emulator, without a browser."""

from __future__ import annotations

import argparse
import html
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import ValidationError
from sqlalchemy import func, select

from bot.__main__ import build_parser
from bot.cli import core
from bot.config import SAMPLE_DISTRICT_DIR, Settings, get_settings
from bot.i18n import t
from bot.sandbox.cast import cast_for, enter, load_cast
from bot.sandbox.chatview import ChatFeed, history, reply_keyboard
from bot.sandbox.run import own_data, reset
from bot.sandbox.web import PAGE_HEADER, PAGE_TEXTS, STATIC_DIR, Sandbox, make_app
from storage.models import Role
from tests.harness import Harness, jpeg, running_bot
from tgemu.emulator import TelegramEmulator
from tgemu.http import Params

AS_PAGE = {PAGE_HEADER: "1"}  # what the page's own requests carry


@dataclass
class Web:
    client: TestClient[Any, Any]
    h: Harness
    sandbox: Sandbox

    async def post(self, persona: str, action: str, **body: Any) -> aiohttp.ClientResponse:
        return await self.client.post(
            f"/api/personas/{persona}/{action}", json=body, headers=AS_PAGE
        )


@pytest.fixture
async def web(database_url: str, media_dir: Path) -> AsyncIterator[Web]:
    async with running_bot(database_url, media_dir) as h:
        cast = cast_for(h.district)
        await load_cast(database_url, h.district, cast)
        sandbox = Sandbox(h.emulator, h.district, cast, enter(h.emulator, h.district, cast))
        async with TestClient(TestServer(make_app(sandbox))) as client:
            yield Web(client, h, sandbox)


def shown(lang: str, key: str, **params: object) -> str:
    """The first line of a catalogue text as the chat shows it: HTML tags gone, entities read."""
    first = t(lang, key, **params).splitlines()[0]
    return html.unescape(re.sub(r"<[^>]+>", "", first)).strip()


async def next_item(
    socket: aiohttp.ClientWebSocketResponse, wanted: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """The next pushed item that satisfies `wanted` (others are skipped); fails after 5 s."""
    while True:
        item: dict[str, Any] = await socket.receive_json(timeout=5)
        if wanted(item):
            return item


def bot_says(persona: str, text: str) -> Callable[[dict[str, Any]], bool]:
    def wanted(item: dict[str, Any]) -> bool:
        message = item.get("message") or {}
        return (
            item["type"] == "message"
            and item["persona"] == persona
            and message.get("from") == "bot"
            and text in message.get("text", "")
        )

    return wanted


# --- the page --------------------------------------------------------------------------------


async def test_page_is_served_with_a_policy_that_forbids_anything_from_elsewhere(web: Web) -> None:
    page = await web.client.get("/")
    assert page.status == 200
    assert '<script type="module" src="/static/sandbox.js">' in await page.text()
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    script = await web.client.get("/static/render.js")
    assert script.status == 200 and "renderText" in await script.text()
    # No CDN, font service or tile server: nothing in the page points off this server.
    for path in STATIC_DIR.iterdir():
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"""(src|href)\s*=\s*["']?https?:|url\(|@import""", text), path
        assert "innerHTML" not in text, f"{path.name} must build DOM nodes, not parse HTML"


async def test_page_texts_come_from_the_catalogues_in_both_languages(web: Web) -> None:
    zh = await (await web.client.get("/api/texts?lang=zh")).json()
    en = await (await web.client.get("/api/texts?lang=en")).json()
    assert set(PAGE_TEXTS) <= set(zh) and set(PAGE_TEXTS) <= set(en)
    assert (zh["sandbox.send"], en["sandbox.send"]) == ("发送", "Send")
    assert "{scope}" in zh["sandbox.persona.chief"]
    odd = await (await web.client.get("/api/texts?lang=fr")).json()
    assert odd["lang"] == "zh"


async def test_personas_are_the_cast_with_their_roles_loaded_once(web: Web) -> None:
    personas = await (await web.client.get("/api/personas")).json()
    by_key = {p["key"]: p for p in personas}
    assert list(by_key) == ["resident_zh", "resident_en", "chief", "officer", "supervisor"]
    assert by_key["resident_en"]["language"] == "en"
    assert by_key["supervisor"]["scope"]["name_zh"] == "朝外街道"
    lane = by_key["chief"]["scope"]["id"]
    assert web.h.district.lanes[lane].street_id == "chaowai"
    # Loading again (a restart on the same database) adds nothing.
    await load_cast(str(web.h.ctx.engine.url), web.h.district, web.sandbox.cast)
    async with web.h.session() as session:
        assert await session.scalar(select(func.count()).select_from(Role)) == 3


async def test_district_is_served_as_geometry_with_the_chiefs_lane_marked(web: Web) -> None:
    shape = await (await web.client.get("/api/district")).json()
    assert len(shape["lanes"]) == len(web.h.district.lanes)
    assert [lane["id"] for lane in shape["lanes"] if lane["has_chief"]] == [
        web.sandbox.cast.lane_id
    ]
    kinds = {lane["geometry"]["type"] for lane in shape["lanes"]}
    assert kinds <= {"LineString", "MultiLineString", "Polygon", "MultiPolygon"}
    assert {area["street"] for area in shape["areas"]} == set(web.h.district.street_offices)
    minx, miny, maxx, maxy = shape["bounds"]
    assert minx < maxx and miny < maxy


# --- acting and reading ------------------------------------------------------------------------


async def test_a_command_is_answered_and_both_sides_show_in_order(web: Web) -> None:
    reply = await web.post("resident_zh", "text", text="/start")
    assert reply.status == 200
    persona = web.sandbox.personas["resident_zh"]
    await persona.expect(contains=shown("zh", "start.greeting", district="北京市朝阳区"))
    chat = await (await web.client.get("/api/personas/resident_zh/messages")).json()
    [mine, *theirs] = chat["messages"]
    assert (mine["from"], mine["text"]) == ("user", "/start")
    assert mine["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]
    assert theirs and all(m["from"] == "bot" for m in theirs)
    assert [m["id"] for m in chat["messages"]] == sorted(m["id"] for m in chat["messages"])


async def test_a_whole_report_through_the_api_arrives_live(web: Web) -> None:
    socket = await web.client.ws_connect("/api/live")
    histories = [await socket.receive_json(timeout=5) for _ in web.sandbox.personas]
    assert {h["persona"] for h in histories} == set(web.sandbox.personas)
    assert all(h["type"] == "history" and h["messages"] == [] for h in histories)

    form = aiohttp.FormData()
    form.add_field("photo", jpeg(), filename="pothole.jpg", content_type="image/jpeg")
    form.add_field("caption", "楼道口堆放杂物，影响通行")
    sent = await web.client.post("/api/personas/resident_zh/photo", data=form, headers=AS_PAGE)
    assert sent.status == 200
    mine = await next_item(socket, lambda i: (i.get("message") or {}).get("from") == "user")
    assert mine["message"]["text"] == "楼道口堆放杂物，影响通行"
    photo = mine["message"]["photo"]
    served = await web.client.get(f"/api/files/{photo['file_id']}")
    assert served.status == 200 and served.content_type == "image/jpeg"
    assert (await served.read())[:2] == b"\xff\xd8"

    await next_item(socket, bot_says("resident_zh", t("zh", "report.ask_location")))
    keyboard = await next_item(socket, lambda i: i["type"] == "keyboard")
    location_button = next(
        b for row in keyboard["keyboard"]["rows"] for b in row if b["request_location"]
    )
    lat, lon = web.h.district.lanes[web.sandbox.cast.lane_id].representative_point
    pressed = await web.post(
        "resident_zh", "reply", text=location_button["text"], latitude=lat, longitude=lon
    )
    assert pressed.status == 200
    summary_line = shown("zh", "report.summary", photos=1, description="", place="")
    summary = (await next_item(socket, bot_says("resident_zh", summary_line)))["message"]
    confirm = next(
        b
        for row in summary["inline_keyboard"]
        for b in row
        if b["text"] == t("zh", "button.confirm")
    )
    pressed = await web.post(
        "resident_zh", "callback", message_id=summary["id"], data=confirm["callback_data"]
    )
    assert pressed.status == 200
    # The summary is edited in place (pushed again under its id, without its buttons) and
    # the case number arrives, in whichever order the bot does them.
    is_created = bot_says("resident_zh", "CY-")

    def is_edit(item: dict[str, Any]) -> bool:
        return bool((item.get("message") or {}).get("id") == summary["id"])

    seen = [await next_item(socket, lambda i: is_created(i) or is_edit(i)) for _ in range(2)]
    [created] = [i for i in seen if is_created(i)]
    [edited] = [i for i in seen if is_edit(i)]
    assert re.search(r"CY-\d{8}-\d{4}", created["message"]["text"])
    assert edited["message"]["inline_keyboard"] is None
    await socket.close()


async def test_the_page_cannot_press_what_the_chat_does_not_show(web: Web) -> None:
    await web.post("resident_en", "text", text="/start")
    persona = web.sandbox.personas["resident_en"]
    greeting = await persona.expect()
    cases = [
        (await web.post("nobody", "text", text="hi"), 404),
        (await web.post("resident_en", "text", text="   "), 400),
        (await web.client.post("/api/personas/resident_en/text", data=b"{", headers=AS_PAGE), 400),
        (await web.post("resident_en", "location", latitude=91, longitude=116), 400),
        (await web.post("resident_en", "location", latitude="39.9", longitude=116), 400),
        (await web.post("resident_en", "callback", message_id=999, data="x"), 409),
        (await web.post("resident_en", "callback", message_id=greeting.message_id, data="x"), 409),
        (await web.post("resident_en", "reply", text="no such button"), 409),
        (
            await web.client.post(
                "/api/personas/resident_en/photo", data={"caption": "x"}, headers=AS_PAGE
            ),
            400,
        ),
        (await web.client.get("/api/files/AgACnothing"), 404),
    ]
    for response, status in cases:
        assert response.status == status, await response.text()
        assert "error" in await response.json()


async def test_another_site_cannot_act_or_listen_through_a_visitors_browser(web: Web) -> None:
    """What a page elsewhere can make a browser send: a form or a `text/plain` fetch (no
    preflight), with its own Origin; or, its name pointed at 127.0.0.1, its own Host."""
    own_host = f"{web.client.host}:{web.client.port}"
    as_json = '{"text": "/start", "x": "="}'  # what an enctype=text/plain form posts

    def form() -> aiohttp.FormData:  # what an enctype=multipart/form-data form posts
        photo = aiohttp.FormData()
        photo.add_field("photo", jpeg(), filename="x.jpg", content_type="image/jpeg")
        return photo

    forged: list[tuple[str, Callable[[], Any], dict[str, str]]] = [
        ("text", lambda: as_json, {"Content-Type": "text/plain", "Origin": "http://evil.example"}),
        ("text", lambda: as_json, {"Content-Type": "text/plain"}),  # a browser sending no Origin
        ("text", lambda: as_json, {**AS_PAGE, "Origin": "null"}),  # from a sandboxed frame
        ("photo", form, {"Origin": "http://evil.example"}),
        ("photo", form, {}),
        (
            "text",
            lambda: as_json,
            {**AS_PAGE, "Origin": "http://evil.example", "Host": "evil.example"},
        ),
    ]
    for action, body, headers in forged:
        response = await web.client.post(
            f"/api/personas/resident_zh/{action}", data=body(), headers=headers
        )
        assert response.status == 403, (headers, await response.text())
        assert "error" in await response.json()
    rebound = await web.client.get(
        "/api/personas/resident_zh/messages", headers={"Host": "evil.example"}
    )
    assert rebound.status == 403
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await web.client.ws_connect("/api/live", origin="http://evil.example")
    assert refused.value.status == 403
    # Nothing reached the chat: an accepted message is in it before the bot even polls.
    assert history(web.sandbox.personas["resident_zh"].chat) == []

    # The page itself, from its own origin, may.
    here = f"http://{own_host}"
    mine = {**AS_PAGE, "Origin": here, "Host": own_host}
    sent = await web.client.post(
        "/api/personas/resident_zh/text", json={"text": "/start"}, headers=mine
    )
    assert sent.status == 200, await sent.text()
    socket = await web.client.ws_connect("/api/live", origin=here)
    await socket.close()
    assert [m["text"] for m in history(web.sandbox.personas["resident_zh"].chat)][:1] == ["/start"]


# --- how chats are read --------------------------------------------------------------------------


async def send(emu: TelegramEmulator, chat_id: int, **values: Any) -> int:
    status, body = await emu.call("sendMessage", Params({"chat_id": chat_id, **values}))
    assert status == 200, body
    return int(body["result"]["message_id"])


async def test_the_reply_keyboard_in_force_and_the_feed_of_changes() -> None:
    emu = TelegramEmulator()  # no server needed: the API is called directly
    alice = emu.user(7, "Alice", language_code="en")
    await alice.send_text("hello")
    feed = ChatFeed("alice", alice.chat, emu.answers)
    assert reply_keyboard(alice.chat) is None

    markup = {"keyboard": [["Yes", {"text": "Here", "request_location": True}]]}
    await send(emu, 7, text="Where?", reply_markup=markup | {"one_time_keyboard": True})
    keyboard = reply_keyboard(alice.chat)
    assert keyboard == {
        "rows": [
            [
                {"text": "Yes", "request_location": False, "request_contact": False},
                {"text": "Here", "request_location": True, "request_contact": False},
            ]
        ],
        "hidden": False,
    }
    assert feed.stale()
    assert [i["keyboard"] for i in feed.changes() if i["type"] == "keyboard"] == [keyboard]
    assert not feed.stale() and feed.changes() == []

    await alice.send_text("Yes")
    hidden = reply_keyboard(alice.chat)
    assert hidden is not None and hidden["hidden"]  # one-time: folded away once used

    gone = await send(emu, 7, text="<b>Thanks</b>", parse_mode="HTML")
    await send(emu, 7, text="Done", reply_markup={"remove_keyboard": True})
    assert reply_keyboard(alice.chat) is None
    await emu.call("deleteMessage", Params({"chat_id": 7, "message_id": gone}))

    items = feed.changes()
    messages = {i["message"]["id"]: i["message"] for i in items if i["type"] == "message"}
    assert messages[gone] == {"id": gone, "from": "bot", "deleted": True}
    assert [m["text"] for m in messages.values() if m.get("from") == "user"] == ["Yes"]
    assert [i["keyboard"] for i in items if i["type"] == "keyboard"] == [None]
    thanks = [m for m in history(alice.chat) if m["text"] == "Thanks"]
    assert thanks == []  # deleted messages leave the history
    done = history(alice.chat)[-1]
    assert (done["text"], done["entities"]) == ("Done", [])


# --- start-up ------------------------------------------------------------------------------------


def test_sandbox_command_and_its_port_setting() -> None:
    args = build_parser().parse_args(["sandbox", "--port", "0", "--host", "0.0.0.0"])
    assert (args.port, args.host) == (0, "0.0.0.0")
    assert build_parser().parse_args(["sandbox"]).port is None  # then SANDBOX_PORT decides
    settings = Settings(_env_file=None, district_dir=SAMPLE_DISTRICT_DIR)
    assert settings.sandbox_port == 8080
    with pytest.raises(ValidationError):
        Settings(_env_file=None, sandbox_port=70000)


def test_the_sandbox_has_its_own_data_and_forgets_only_that(tmp_path: Path) -> None:
    district = Settings(
        _env_file=None,
        bot_token="123456789:AAreal",
        database_url="postgresql+asyncpg://suipai@db.example/district",
        media_dir=tmp_path / "district-media",
        redis_url="redis://redis.example/0",
    )
    own = own_data(district, tmp_path / "sandbox")
    assert own.database_url == f"sqlite+aiosqlite:///{tmp_path / 'sandbox' / 'suipai.db'}"
    assert (own.media_dir, own.redis_url, own.bot_token) == (tmp_path / "sandbox/media", None, "")
    assert build_parser().parse_args(["sandbox", "--reset"]).reset

    folder = tmp_path / "played"
    (folder / "media" / "photos").mkdir(parents=True)
    for name in ("suipai.db", "suipai.db-journal", "media/photos/a.jpg", "notes.txt"):
        (folder / name).write_text("x")
    reset(folder)
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]  # not the sandbox's: kept


async def test_run_without_a_token_starts_the_sandbox(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    started: list[tuple[str, int]] = []

    async def serve_forever(settings: Settings, *, host: str, port: int) -> None:
        started.append((host, port))

    monkeypatch.setattr("bot.sandbox.run.serve_forever", serve_forever)
    monkeypatch.setenv("BOT_TOKEN", "")
    monkeypatch.setenv("SANDBOX_PORT", "8099")
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'suipai.db'}")
    monkeypatch.setenv("DISTRICT_DIR", str(SAMPLE_DISTRICT_DIR))
    get_settings.cache_clear()
    try:
        assert await core._run(argparse.Namespace()) == 0
    finally:
        get_settings.cache_clear()
    assert started == [("127.0.0.1", 8099)]
    # The sandbox has its own database: DATABASE_URL's is not even created (or migrated).
    assert not (tmp_path / "suipai.db").exists()
