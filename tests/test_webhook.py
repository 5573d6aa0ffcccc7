"""Webhook mode: updates arrive by HTTP with a secret, are applied once; /healthz answers."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import aiohttp
import pytest

from bot.app import make_bot, run_webhook
from bot.config import Settings
from bot.sandbox.emulator import TelegramEmulator
from tests.harness import settings_for
from tests.test_cli import env_for, run_cli

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
