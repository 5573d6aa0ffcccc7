"""A Telegram Bot API emulator for end-to-end tests, benchmarks and the try-it sandbox.

The real bot talks to it over HTTP (`TELEGRAM_API_URL` = `await emu.start()`), while tests in
the same event loop play the users through `Persona`s and inspect what the bot did. It knows
one bot: any `<digits>:<text>` token is that bot, whose id is the digits.

    emu = TelegramEmulator()
    base_url = await emu.start()
    alice = emu.user(1001, first_name="王芳", language_code="zh-hans")
    await alice.send_command("/start", "lane_L01")
    reply = await alice.expect(contains="欢迎")
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from functools import partial
from typing import Any, Literal

import aiohttp
from aiohttp import web

from tgemu.api import BotApi
from tgemu.clock import Clock
from tgemu.http import Params, read_params
from tgemu.limits import Fault, Violation, Violations
from tgemu.models import (
    ApiCall,
    CallbackAnswer,
    Chat,
    MessageEdit,
    SentMessage,
    User,
)
from tgemu.persona import Group, Persona
from tgemu.text import ApiError
from tgemu.world import Update, WebhookConfig, World

__all__ = [
    "ApiCall",
    "ApiError",
    "CallbackAnswer",
    "Group",
    "MessageEdit",
    "Persona",
    "SentMessage",
    "TelegramEmulator",
    "Update",
    "Violation",
    "Violations",
]

_TOKEN_RE = re.compile(r"\d+:\S+")
_SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
_WEBHOOK_TIMEOUT = aiohttp.ClientTimeout(total=30)
_dumps = partial(json.dumps, ensure_ascii=False)


def _answer(status: int, body: dict[str, Any]) -> web.Response:
    return web.json_response(body, status=status, dumps=_dumps)


class TelegramEmulator(World):
    """The emulated Bot API server plus the test-side controls (users, faults, limits).

    `enforce_limits` makes a send that breaks Telegram's limits answer 429 instead of being
    accepted; either way it is counted in `violations`. `photo_max_side` is the longest side
    of the largest photo size, as a client's compression leaves it.
    """

    def __init__(
        self,
        clock: Clock | None = None,
        *,
        enforce_limits: bool = False,
        per_chat_burst: int = 3,
        bot_username: str = "suipai_bot",
        bot_first_name: str = "随拍即办",
        photo_max_side: int = 1280,
    ) -> None:
        super().__init__(
            clock,
            enforce_limits=enforce_limits,
            per_chat_burst=per_chat_burst,
            bot_username=bot_username,
            bot_first_name=bot_first_name,
            photo_max_side=photo_max_side,
        )
        self.api = BotApi(self)
        self.base_url = ""
        self._faults: list[Fault] = []
        self._unreachable: Literal["refuse", "hang"] | None = None
        self._last_failed = False  # the newest webhook delivery failed: back off
        self.held_requests = 0
        """Requests held by the "hang" mode right now, for tests to wait on."""
        self._personas: dict[int, Persona] = {}
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self._delivery: asyncio.Task[None] | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve the Bot API; returns the base URL for `TelegramAPIServer.from_base`."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{file_path:.+}", self._handle_file)
        # handler_cancellation: a long poll whose client went away must not linger.
        self._runner = web.AppRunner(
            app, handler_cancellation=True, shutdown_timeout=1.0, access_log=None
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        reachable = "127.0.0.1" if host in ("", "0.0.0.0") else host
        self.base_url = f"http://{reachable}:{self._runner.addresses[0][1]}"
        self._http = aiohttp.ClientSession()
        self._delivery = asyncio.create_task(self._deliver_updates())
        return self.base_url

    async def stop(self) -> None:
        """Release pending long polls and hung requests, then close the server."""
        self.closing = True
        self.touch()
        if self._delivery is not None:
            self._delivery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._delivery
        if self._runner is not None:
            await self._runner.cleanup()
        if self._http is not None:
            await self._http.close()

    # --- people and chats --------------------------------------------------------------------

    def user(
        self,
        user_id: int,
        first_name: str | None = None,
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
    ) -> Persona:
        """A Telegram user and their private chat (chat id == user id). The bot cannot write
        to them until they have written to it, as on Telegram. Same id: same persona."""
        if user_id in self._personas:
            return self._personas[user_id]
        if user_id <= 0:
            raise ValueError("user ids are positive")
        user = User(user_id, first_name or f"User{user_id}", last_name, username, language_code)
        chat = self.chats[user_id] = Chat(user_id, "private", user=user)
        persona = self._personas[user_id] = Persona(self, user, chat)
        return persona

    def group(self, chat_id: int, title: str, *, supergroup: bool = False) -> Group:
        """A group the bot is a member of; add users with `add_member`."""
        if chat_id >= 0:
            raise ValueError("group chat ids are negative")
        kind = "supergroup" if supergroup else "group"
        self.chats[chat_id] = Chat(chat_id, kind, title=title, started=True)
        return Group(chat_id, title)

    def add_member(self, group: Group | int, user: Persona | int) -> None:
        chat = self.chats[group.id if isinstance(group, Group) else group]
        chat.members.add(user.id if isinstance(user, Persona) else user)

    def commands_for(
        self, scope: dict[str, Any] | None = None, language_code: str = ""
    ) -> list[dict[str, str]]:
        """The command list the bot set for a scope (default scope if None) and language."""
        key = json.dumps(scope or {"type": "default"}, sort_keys=True)
        return list(self.commands.get((key, language_code), []))

    # --- faults ------------------------------------------------------------------------------

    def fail_next(
        self,
        code: int = 429,
        count: int = 1,
        method: str | None = None,
        retry_after: int = 1,
        *,
        executed: bool = False,
    ) -> None:
        """Answer the next `count` calls of `method` (any but getUpdates if None) with `code`:
        429 carries `retry_after`. With `executed` the call still takes effect (lost reply)."""
        self._faults.append(Fault(code, count, method, retry_after, executed))

    def set_unreachable(
        self, unreachable: bool = True, mode: Literal["refuse", "hang"] = "refuse"
    ) -> None:
        """Make the API unreachable: "refuse" drops each connection at once (clients see a
        disconnect); "hang" holds requests until reachable again (or the client times out)
        and then drops them unanswered. Webhook delivery is unaffected."""
        self._unreachable = mode if unreachable else None
        self.touch()

    def reset_faults(self) -> None:
        self._faults.clear()
        self.set_unreachable(False)

    # --- dispatch ----------------------------------------------------------------------------

    async def call(self, method: str, params: Params) -> tuple[int, dict[str, Any]]:
        """Run one Bot API call as the HTTP front end does: record, inject faults, answer."""
        resolved = self.api.methods.get(method.lower())
        name = resolved[0] if resolved else method
        self.calls.append(ApiCall(name, params.values))
        try:
            if resolved is None:
                raise ApiError(404, "Not Found")
            fault = next((f for f in self._faults if f.matches(name)), None)
            if fault is not None:
                fault.remaining -= 1
                self._faults = [f for f in self._faults if f.remaining > 0]
                if fault.executed:
                    with contextlib.suppress(ApiError):
                        await resolved[1](params)
                raise fault.error()
            return 200, {"ok": True, "result": await resolved[1](params)}
        except ApiError as error:
            return error.code, error.payload()
        finally:
            self.touch()

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        if self._unreachable is not None:
            return await self._drop(request)
        token = request.match_info["token"]
        if not _TOKEN_RE.fullmatch(token):
            return _answer(401, ApiError(401, "Unauthorized").payload())
        self.token, self.bot_id = token, int(token.split(":", 1)[0])
        try:
            values, files = await read_params(
                request.content_type, request.headers, request.content, request.query
            )
        except ApiError as error:
            return _answer(error.code, error.payload())
        except (ValueError, aiohttp.ClientPayloadError) as error:
            return _answer(400, ApiError(400, f"Bad Request: {error}").payload())
        status, body = await self.call(request.match_info["method"], Params(values, files))
        return _answer(status, body)

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if self._unreachable is not None:
            return await self._drop(request)
        if not _TOKEN_RE.fullmatch(request.match_info["token"]):
            return _answer(401, ApiError(401, "Unauthorized").payload())
        stored = self.files.by_path(request.match_info["file_path"])
        if stored is None or stored.data is None:
            return _answer(404, ApiError(404, "Not Found").payload())
        content_type = stored.mime_type or "application/octet-stream"
        return web.Response(body=stored.data, content_type=content_type)

    async def _drop(self, request: web.Request) -> web.StreamResponse:
        if self._unreachable == "hang":
            self.held_requests += 1
            self.touch()
            try:
                await self.wait_for(lambda: self._unreachable != "hang" or self.closing, None)
            finally:
                self.held_requests -= 1
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=503)

    # --- webhook delivery --------------------------------------------------------------------

    async def _deliver_updates(self) -> None:
        """While a webhook is set, POST queued updates to it as Telegram does: up to
        `max_connections` at once, one at a time per chat so that each chat stays in order.
        A failed delivery goes back to the head of the queue and is retried with backoff;
        getWebhookInfo reports it."""
        in_flight: dict[object, asyncio.Task[bool]] = {}
        backoff = 0.05
        while not self.closing:
            if self._last_failed:
                self._last_failed = False
                await self.wait_for(lambda: self.closing, backoff)
                backoff = min(backoff * 2, 2.0)
            await self.wait_for(lambda: self.closing or self._next_deliverable(in_flight), None)
            hook = self.webhook
            update = self._next_deliverable(in_flight)
            if self.closing or hook is None or update is None:
                continue
            self.updates.remove(update)
            key = _chat_key(update)
            task = asyncio.create_task(self._post_update(hook, update))
            in_flight[key] = task
            task.add_done_callback(partial(self._delivered, in_flight, key, update))
            if not self._last_failed:
                backoff = 0.05
        for task in in_flight.values():
            task.cancel()

    def _next_deliverable(self, in_flight: dict[object, asyncio.Task[bool]]) -> Update | None:
        hook = self.webhook
        if hook is None or len(in_flight) >= max(1, hook.max_connections):
            return None
        return next((u for u in self.updates if _chat_key(u) not in in_flight), None)

    def _delivered(
        self,
        in_flight: dict[object, asyncio.Task[bool]],
        key: object,
        update: Update,
        task: asyncio.Task[bool],
    ) -> None:
        del in_flight[key]
        if task.cancelled() or not task.result():
            self.updates.appendleft(update)  # nothing else of this chat went meanwhile
            self._last_failed = True
        self.touch()

    async def _post_update(self, hook: WebhookConfig, update: Update) -> bool:
        assert self._http is not None
        headers = {_SECRET_HEADER: hook.secret_token} if hook.secret_token else {}
        try:
            async with self._http.post(
                hook.url, json=update, headers=headers, timeout=_WEBHOOK_TIMEOUT
            ) as response:
                if response.status // 100 != 2:
                    reason = f"{response.status} {response.reason}"
                    return self._webhook_failed(hook, f"Wrong response from the webhook: {reason}")
                reply = await self._webhook_reply(response)
        except TimeoutError:
            return self._webhook_failed(hook, "Read timeout expired")
        except aiohttp.ClientError as error:
            return self._webhook_failed(hook, f"Connection failed: {error}")
        if reply is not None:
            await self.call(*reply)
        return True

    def _webhook_changed(self, hook: WebhookConfig) -> bool:
        return self.closing or self.webhook is not hook

    def _webhook_failed(self, hook: WebhookConfig, message: str) -> bool:
        hook.last_error_date, hook.last_error_message = self.timestamp(), message
        return False

    async def _webhook_reply(self, response: aiohttp.ClientResponse) -> tuple[str, Params] | None:
        """A method call the bot put in its webhook answer, which Telegram executes."""
        try:
            values, files = await read_params(
                response.content_type, response.headers, response.content, {}
            )
        except (ApiError, ValueError):
            return None
        method = values.pop("method", None)
        return (method, Params(values, files)) if isinstance(method, str) else None


def _chat_key(update: Update) -> object:
    """The chat an update belongs to (its sender for updates without a chat)."""
    for value in update.values():
        if not isinstance(value, dict):
            continue
        message = value.get("message") if "message" in value else value
        chat = message.get("chat") if isinstance(message, dict) else None
        if isinstance(chat, dict) and "id" in chat:
            return chat["id"]
        sender = value.get("from")
        if isinstance(sender, dict) and "id" in sender:
            return sender["id"]
    return update.get("update_id")
