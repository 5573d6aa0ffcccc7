"""Webhook mode: updates arrive by HTTP with a secret, are applied once; /healthz answers."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.app import make_bot, run_webhook
from bot.config import Settings
from storage.db import make_engine, make_sessionmaker
from storage.models import ProcessedUpdate
from tests.harness import noise_jpeg, settings_for
from tests.test_cli import env_for, run_cli
from tgemu.emulator import TelegramEmulator

SECRET = "s3cret-for_tests"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_webhook_mode_refuses_to_start_without_a_secret(tmp_path: Path) -> None:
    env = env_for(
        f"sqlite+aiosqlite:///{tmp_path / 'x.db'}",
        tmp_path,
        WEBHOOK_URL="https://bot.example.org/tg",
    )
    (tmp_path / "media").mkdir()
    code, _out, err = await run_cli("run", "--webhook", env=env)
    assert code == 2
    assert "WEBHOOK_SECRET is missing" in err


def test_a_malformed_webhook_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="WEBHOOK_SECRET"):
        Settings(_env_file=None, webhook_url="https://bot.example.org/tg").require_webhook_secret()
    with pytest.raises(ValueError, match="Telegram's rule"):
        Settings(_env_file=None, webhook_secret="has spaces and ünïcode")


async def test_updates_by_webhook_are_applied_once_and_health_is_reported(
    database_url: str, media_dir: Path
) -> None:
    emulator = TelegramEmulator()
    api = await emulator.start()
    port = free_port()
    hook = f"http://127.0.0.1:{port}/tg/hook"
    settings: Settings = settings_for(
        database_url, media_dir, api, webhook_url=hook, webhook_secret=SECRET, web_port=port
    )
    bot = make_bot(settings)
    server = asyncio.create_task(run_webhook(settings, bot))
    try:
        await emulator.wait_until(
            lambda: emulator.webhook is not None and emulator.webhook.url == hook, timeout=30
        )
        resident = emulator.user(3003, first_name="Wu", language_code="en")
        await resident.send_command("/start")
        await resident.expect(contains="Snap it, get it handled", timeout=20)

        async with aiohttp.ClientSession() as http:
            # Without the secret header: refused, nothing handled.
            update = {"update_id": 990001, "message": _message(3003, "/help")}
            async with http.post(hook, json=update) as answer:
                assert answer.status == 401
            # The same update delivered twice with the secret: handled once.
            headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
            for _ in range(2):
                async with http.post(hook, json=update, headers=headers) as answer:
                    assert answer.status == 200
            await resident.expect(contains="How to report a problem", timeout=10)
            helps = [m for m in resident.inbox() if "How to report a problem" in (m.text or "")]
            assert len(helps) == 1

            async with http.get(f"http://127.0.0.1:{port}/healthz") as answer:
                assert answer.status == 200
                health = await answer.json()
        assert health["ok"] is True and health["database"] == "ok"
        assert health["outbox_pending"] >= 0 and health["outbox_lag_s"] >= 0
    finally:
        server.cancel()
        await asyncio.gather(server, return_exceptions=True)
        await emulator.stop()


def _message(user_id: int, text: str) -> dict[str, object]:
    user = {"id": user_id, "is_bot": False, "first_name": "Wu", "language_code": "en"}
    return {
        "message_id": 77,
        "date": 1795398000,
        "chat": {"id": user_id, "type": "private", "first_name": "Wu"},
        "from": user,
        "text": text,
        "entities": [{"type": "bot_command", "offset": 0, "length": len(text)}],
    }


@asynccontextmanager
async def webhook_bot(
    database_url: str, media_dir: Path, **extra: Any
) -> AsyncIterator[tuple[TelegramEmulator, str]]:
    """The bot in webhook mode against the emulator, with `extra` settings; yields the
    emulator and the hook's URL once the webhook is set."""
    emulator = TelegramEmulator()
    api = await emulator.start()
    port = free_port()
    hook = f"http://127.0.0.1:{port}/tg/hook"
    settings = settings_for(
        database_url,
        media_dir,
        api,
        webhook_url=hook,
        webhook_secret=SECRET,
        web_port=port,
        **extra,
    )
    server = asyncio.create_task(run_webhook(settings, make_bot(settings)))
    try:
        await emulator.wait_until(lambda: emulator.webhook is not None, timeout=30)
        yield emulator, hook
    finally:
        server.cancel()
        await asyncio.gather(server, return_exceptions=True)
        await emulator.stop()


def hold_downloads(emulator: TelegramEmulator) -> list[asyncio.Event]:
    """Every getFile waits until the test sets its event: the list holds one per call."""
    name, get_file = emulator.api.methods["getfile"]
    held: list[asyncio.Event] = []

    async def slow(params: Any) -> Any:
        release = asyncio.Event()
        held.append(release)
        emulator.touch()  # wake the test's wait_until: the call is not over yet
        await release.wait()
        return await get_file(params)

    emulator.api.methods["getfile"] = (name, slow)
    return held


async def applied_updates(database_url: str) -> int:
    engine = make_engine(database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            return int(await session.scalar(select(func.count()).select_from(ProcessedUpdate)) or 0)
    finally:
        await engine.dispose()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_an_update_in_hand_past_the_answer_deadline_is_not_answered_200(
    database_url: str, media_dir: Path
) -> None:
    """A slow download keeps the update in hand past WEBHOOK_ANSWER_S: Telegram is answered 503
    (a 200 would drop an update that is not applied yet), delivers it again, and once the
    handling is over the update is applied once and acknowledged."""
    async with webhook_bot(database_url, media_dir, webhook_answer_s=0.5) as (emulator, _hook):
        webhook = emulator.webhook
        assert webhook is not None
        held = hold_downloads(emulator)
        resident = emulator.user(3101, first_name="Qian", language_code="en")
        await resident.send_photo(noise_jpeg(1), caption="A broken bench by the school gate")
        await emulator.wait_until(lambda: held, timeout=30)
        await emulator.wait_until(lambda: "503" in (webhook.last_error_message or ""), timeout=20)
        assert await applied_updates(database_url) == 0
        held[0].set()
        await resident.expect(contains="Where is it?", timeout=30)
        # Updates of a chat are delivered in turn: an answer to the next one means the photo's
        # update was acknowledged.
        await resident.send_command("/help")
        await resident.expect(contains="How to report a problem", timeout=30)
    assert len(held) == 1  # every delivery waited for the same handling
    assert sum("Where is it?" in (m.text or "") for m in resident.inbox()) == 1
    assert await applied_updates(database_url) == 2


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_forged_posts_are_refused_while_every_turn_is_taken(
    database_url: str, media_dir: Path
) -> None:
    """The only turn is held by a resident's update; posts without the secret are still
    refused at once, not queued behind it."""
    async with webhook_bot(database_url, media_dir, update_concurrency=1) as (emulator, hook):
        held = hold_downloads(emulator)
        resident = emulator.user(3102, first_name="Sun", language_code="en")
        await resident.send_photo(noise_jpeg(2), caption="Rubbish piled up behind the market")
        await emulator.wait_until(lambda: held, timeout=30)
        forged = {"update_id": 990101, "message": _message(3103, "/help")}
        async with aiohttp.ClientSession() as http, asyncio.timeout(10):
            for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "not-the-secret"}):
                async with http.post(hook, json=forged, headers=headers) as answer:
                    assert answer.status == 401
        held[0].set()
        await resident.expect(contains="Where is it?", timeout=30)
