"""The sandbox's web page and its API: play the cast's Telegram accounts from a browser.

Everything a persona does goes through the emulator's `Persona` methods, exactly as the tests
act; what the bot sends is read from the emulator's records and pushed over a WebSocket.

    GET  /                                  the page (static/index.html)
    GET  /api/texts?lang=zh|en              the page's own texts (sandbox.* catalogue keys)
    GET  /api/personas                      the cast
    GET  /api/personas/{key}/messages       a persona's chat: messages and reply keyboard
    POST /api/personas/{key}/text           {"text": "..."}: a message or /command
    POST /api/personas/{key}/photo          multipart: photo (file), caption (optional)
    POST /api/personas/{key}/location       {"latitude": .., "longitude": ..}
    POST /api/personas/{key}/callback       {"message_id": .., "data": "..."}: inline button
    POST /api/personas/{key}/reply          {"text": "...", latitude/longitude if it asks}
    GET  /api/files/{file_id}               bytes of a photo or file in any chat
    GET  /api/district                      lanes and street office areas as GeoJSON geometry
    GET  /api/live                          WebSocket: histories, then every change

Only this page may act (`_this_page_only`): every POST carries the X-Sandbox-Page header and
no other site's Origin, and the live socket no other site's Origin; any request naming a host
other than an IP address, localhost or the --host name is refused (DNS rebinding).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import math
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, hdrs, web
from shapely.geometry import mapping

from bot.domain.district import District
from bot.i18n import LANGUAGES, normalise_language, t
from bot.sandbox.cast import Cast
from bot.sandbox.chatview import ChatFeed, history, inline_button, reply_button, reply_keyboard
from tgemu.emulator import Persona, TelegramEmulator

STATIC_DIR = Path(__file__).resolve().parent / "static"
MAX_PHOTO_UPLOAD = 20 * 1024 * 1024
MAX_TEXT = 4096

# The page's own words; the bot's words come from the bot.
PAGE_TEXTS = (
    "sandbox.title",
    "sandbox.intro",
    "sandbox.persona.resident_zh",
    "sandbox.persona.resident_en",
    "sandbox.persona.chief",
    "sandbox.persona.officer",
    "sandbox.persona.supervisor",
    "sandbox.send",
    "sandbox.photo",
    "sandbox.location",
    "sandbox.placeholder",
    "sandbox.map_title",
    "sandbox.map_hint",
    "sandbox.close",
    "sandbox.edited",
    "sandbox.empty",
    "sandbox.keyboard",
    "sandbox.offline",
    "sandbox.other_language",
    "sandbox.ok",
    "sandbox.failed",
    "sandbox.unsupported_button",
)

# Nothing from elsewhere: scripts, styles and images come from this server only.
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_dumps = partial(json.dumps, ensure_ascii=False)
# A page elsewhere cannot send this header: the browser asks first (CORS preflight) and this
# server never says yes. So a POST carrying it comes from this page, or from no browser at all.
PAGE_HEADER = "X-Sandbox-Page"


@dataclass
class Sandbox:
    """What the page plays with: the emulator, the district and the cast's personas."""

    emulator: TelegramEmulator
    district: District
    cast: Cast
    personas: dict[str, Persona]


SANDBOX_KEY: web.AppKey[Sandbox] = web.AppKey("sandbox", Sandbox)


class _Sockets:
    """The open live sockets, closed when the server stops so the page learns it at once."""

    def __init__(self) -> None:
        self.open: set[web.WebSocketResponse] = set()


_SOCKETS_KEY: web.AppKey[_Sockets] = web.AppKey("sockets", _Sockets)
_HOSTS_KEY: web.AppKey[frozenset[str]] = web.AppKey("hosts", frozenset)


class Refused(Exception):
    """A request the page should not have made; answered as JSON {"error": reason}."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _json(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, dumps=_dumps)


def _sandbox(request: web.Request) -> Sandbox:
    return request.app[SANDBOX_KEY]


def _persona(request: web.Request) -> Persona:
    persona = _sandbox(request).personas.get(request.match_info["key"])
    if persona is None:
        raise Refused(404, "no such persona")
    return persona


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise Refused(400, "expected a JSON object") from None
    if not isinstance(body, dict):
        raise Refused(400, "expected a JSON object")
    return body


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Refused(400, "text must be a non-empty string")
    if len(value) > MAX_TEXT:
        raise Refused(400, f"text is longer than {MAX_TEXT} characters")
    return value.strip()


def _coordinate(value: Any, limit: float) -> float:
    # bool is an int to Python, but `true` is no latitude.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Refused(400, "latitude and longitude must be numbers")
    if not (math.isfinite(value) and -limit <= value <= limit):
        raise Refused(400, "latitude must be within ±90 and longitude within ±180")
    return float(value)


def _point(body: dict[str, Any]) -> tuple[float, float]:
    return _coordinate(body.get("latitude"), 90), _coordinate(body.get("longitude"), 180)


def _accepted(update: dict[str, Any]) -> web.Response:
    return _json({"ok": True, "update_id": update["update_id"]})


# --- reading -----------------------------------------------------------------------------------


async def index(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC_DIR / "index.html")


async def texts(request: web.Request) -> web.Response:
    lang = normalise_language(request.query.get("lang"))
    return _json({"lang": lang, "languages": LANGUAGES} | {k: t(lang, k) for k in PAGE_TEXTS})


async def personas(request: web.Request) -> web.Response:
    sandbox = _sandbox(request)
    district = sandbox.district
    scopes: dict[str | None, Any] = {
        "lane": district.lanes,
        "street": district.street_offices,
        "department": district.departments,
    }
    out = []
    for m in sandbox.cast.members:
        scope = scopes.get(m.kind, {}).get(m.scope)
        out.append(
            {
                "key": m.key,
                "name": m.first_name,
                "telegram_id": m.telegram_id,
                "role": m.role or "resident",
                "language": "zh" if m.language_code.startswith("zh") else "en",
                "scope": None
                if scope is None
                else {"id": m.scope, "name_zh": scope.name_zh, "name_en": scope.name_en},
            }
        )
    return _json(out)


async def messages(request: web.Request) -> web.Response:
    chat = _persona(request).chat
    return _json({"messages": history(chat), "keyboard": reply_keyboard(chat)})


async def district_shape(request: web.Request) -> web.Response:
    sandbox = _sandbox(request)
    district = sandbox.district
    lanes = [
        {
            "id": lane.id,
            "name_zh": lane.name_zh,
            "name_en": lane.name_en,
            "street": lane.street_id,
            "has_chief": lane.id == sandbox.cast.lane_id,
            "geometry": mapping(lane.geometry),
        }
        for lane in sorted(district.lanes.values(), key=lambda lane: lane.id)
    ]
    areas = []
    for street, area in sorted(district.street_areas.items()):
        office = district.street_offices.get(street)
        label = area.representative_point()
        areas.append(
            {
                "street": street,
                "name_zh": office.name_zh if office else street,
                "name_en": office.name_en if office else street,
                "label": [label.x, label.y],
                "geometry": mapping(area),
            }
        )
    if not areas:  # a district without a boundary file: its derived outline, unnamed
        areas = [{"street": None, "geometry": mapping(district.boundary)}]
    minx, miny, maxx, maxy = district.boundary.bounds
    return _json({"lanes": lanes, "areas": areas, "bounds": [minx, miny, maxx, maxy]})


async def file(request: web.Request) -> web.StreamResponse:
    stored = _sandbox(request).emulator.files.get(request.match_info["file_id"])
    if stored is None or stored.data is None:
        raise Refused(404, "no such file")
    kind = stored.mime_type or ("image/jpeg" if stored.kind == "photo" else "")
    return web.Response(
        body=stored.data,
        content_type=kind or "application/octet-stream",
        headers={"Cache-Control": "private, max-age=86400, immutable"},
    )


# --- acting ------------------------------------------------------------------------------------


async def send_text(request: web.Request) -> web.Response:
    persona = _persona(request)
    text = _text((await _body(request)).get("text"))
    return _accepted(await persona.send_text(text))


async def send_photo(request: web.Request) -> web.Response:
    persona = _persona(request)
    try:
        form = await request.post()
    except ValueError:
        raise Refused(400, "expected a multipart form") from None
    photo = form.get("photo")
    if not isinstance(photo, web.FileField):
        raise Refused(400, "the form has no photo file")
    data = photo.file.read(MAX_PHOTO_UPLOAD + 1)
    if not data:
        raise Refused(400, "the photo is empty")
    if len(data) > MAX_PHOTO_UPLOAD:
        raise Refused(413, "the photo is larger than 20 MB")
    caption = form.get("caption")
    caption_text = caption.strip() if isinstance(caption, str) else ""
    if len(caption_text) > 1024:
        raise Refused(400, "the caption is longer than 1024 characters")
    return _accepted(await persona.send_photo(data, caption_text or None))


async def send_location(request: web.Request) -> web.Response:
    persona = _persona(request)
    lat, lon = _point(await _body(request))
    return _accepted(await persona.send_location(lat, lon))


async def press_inline(request: web.Request) -> web.Response:
    persona = _persona(request)
    body = await _body(request)
    message_id, data = body.get("message_id"), body.get("data")
    if not isinstance(message_id, int) or not isinstance(data, str):
        raise Refused(400, "message_id (number) and data (string) are required")
    message = persona.chat.bot_messages.get(message_id)
    # Only buttons the message shows now, as on Telegram: a stale page cannot press old ones.
    if message is None or not inline_button(message, data):
        raise Refused(409, "that message has no such button (any more)")
    return _accepted(await persona.press_callback(message_id, data))


async def press_reply(request: web.Request) -> web.Response:
    persona = _persona(request)
    body = await _body(request)
    button = reply_button(persona.chat, _text(body.get("text")))
    if button is None:
        raise Refused(409, "the keyboard has no such button (any more)")
    if button["request_location"]:
        return _accepted(await persona.send_location(*_point(body)))
    if button["request_contact"]:
        return _accepted(await persona.send_contact())
    return _accepted(await persona.send_text(button["text"]))


# --- live updates ------------------------------------------------------------------------------


async def live(request: web.Request) -> web.StreamResponse:
    """Every persona's history at once, then each change as it happens.

    One socket for the whole cast, so the page can mark unread chats; each item names its
    persona. Woken by the emulator's own change notification, never by polling.
    """
    sandbox = _sandbox(request)
    socket = web.WebSocketResponse(heartbeat=30.0)
    await socket.prepare(request)
    request.app[_SOCKETS_KEY].open.add(socket)
    feeds = [
        ChatFeed(key, persona.chat, sandbox.emulator.answers)
        for key, persona in sandbox.personas.items()
    ]
    pusher = asyncio.create_task(_push(socket, sandbox.emulator, feeds))
    try:
        async for message in socket:  # the page sends nothing; this waits for it to leave
            if message.type == WSMsgType.ERROR:
                break
    finally:
        request.app[_SOCKETS_KEY].open.discard(socket)
        pusher.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await pusher
    return socket


async def _push(
    socket: web.WebSocketResponse, emulator: TelegramEmulator, feeds: list[ChatFeed]
) -> None:
    for feed in feeds:
        await socket.send_json(feed.snapshot(), dumps=_dumps)
    while not socket.closed:
        await emulator.wait_for(lambda: emulator.closing or any(f.stale() for f in feeds), None)
        if emulator.closing:
            return
        for feed in feeds:
            for item in feed.changes():
                await socket.send_json(item, dumps=_dumps)


async def _close_sockets(app: web.Application) -> None:
    for socket in list(app[_SOCKETS_KEY].open):
        await socket.close(code=1001, message=b"sandbox stopping")


# --- assembly ----------------------------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except Refused as refused:
        response = _json({"error": refused.reason}, refused.status)
    response.headers.setdefault("Content-Security-Policy", _CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if request.path == "/" or request.path.startswith("/static/"):
        # A developer editing the page sees the change on reload.
        response.headers.setdefault("Cache-Control", "no-cache")
    return response


def _known_host(request: web.Request) -> bool:
    """Addressed by IP, as localhost or by the name it was started on: a page whose own name
    was pointed at this machine (DNS rebinding) would be same-origin, and names itself."""
    try:
        name = (request.url.raw_host or "").lower()
    except ValueError:
        return False
    if name == "localhost" or name.endswith(".localhost") or name in request.app[_HOSTS_KEY]:
        return True
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


def _same_origin(request: web.Request) -> bool:
    """No Origin (not a browser, or one that sends none to the same site) or this server's."""
    origin = request.headers.get(hdrs.ORIGIN)
    return origin is None or origin.partition("://")[2].lower() == request.host.lower()


@web.middleware
async def _this_page_only(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse what another site's page could make a visitor's browser send here.

    Browsers send a form or a `text/plain` fetch to any address, this one included.
    """
    if not _known_host(request):
        raise Refused(403, "open the sandbox by IP address or as localhost")
    acting = request.method not in (hdrs.METH_GET, hdrs.METH_HEAD, hdrs.METH_OPTIONS)
    if not request.path.startswith("/api/") or not (acting or request.path == "/api/live"):
        return await handler(request)
    if not _same_origin(request):
        raise Refused(403, "requests from another site are refused")
    if acting and request.headers.get(PAGE_HEADER) != "1":
        raise Refused(403, f"only the sandbox page may act (the {PAGE_HEADER} header)")
    return await handler(request)


def make_app(sandbox: Sandbox, *, hosts: Iterable[str] = ()) -> web.Application:
    """The page and its API; `hosts`: names it is served under besides IPs and localhost."""
    app = web.Application(
        client_max_size=MAX_PHOTO_UPLOAD + 64 * 1024, middlewares=[_headers, _this_page_only]
    )
    app[SANDBOX_KEY] = sandbox
    app[_HOSTS_KEY] = frozenset(h.lower() for h in hosts)
    app[_SOCKETS_KEY] = _Sockets()
    app.on_shutdown.append(_close_sockets)
    app.router.add_get("/", index)
    app.router.add_static("/static/", STATIC_DIR)
    app.router.add_get("/api/texts", texts)
    app.router.add_get("/api/personas", personas)
    app.router.add_get("/api/personas/{key}/messages", messages)
    app.router.add_post("/api/personas/{key}/text", send_text)
    app.router.add_post("/api/personas/{key}/photo", send_photo)
    app.router.add_post("/api/personas/{key}/location", send_location)
    app.router.add_post("/api/personas/{key}/callback", press_inline)
    app.router.add_post("/api/personas/{key}/reply", press_reply)
    app.router.add_get("/api/files/{file_id}", file)
    app.router.add_get("/api/district", district_shape)
    app.router.add_get("/api/live", live)
    return app
