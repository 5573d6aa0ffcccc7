"""Secrets and start-up: the bot token is in no log line or error message; settings are checked.

aiohttp puts the whole URL in its errors, and every Bot API URL holds the token
(`…/file/bot<token>/…`). These tests provoke such an error for real and read what was logged.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import ClientResponseError
from pydantic import ValidationError

from bot.app import make_bot
from bot.cli.core import setup_logging
from bot.config import Settings, describe_error
from bot.redaction import REDACTED, TokenRedactor, install, redact
from tests.harness import TOKEN, Harness, plain_text, settings_for
from tgemu.emulator import TelegramEmulator


@pytest.fixture
def redacted_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """The test's log capture with the start-up filter on it, as `setup_logging` installs it."""
    redactor = TokenRedactor(TOKEN)
    caplog.handler.addFilter(redactor)
    with caplog.at_level(logging.INFO):
        yield caplog
    caplog.handler.removeFilter(redactor)


async def aiohttp_error_with_the_url(tmp_path: Path) -> ClientResponseError:
    """A real aiohttp error from downloading a file that is not there."""
    emulator = TelegramEmulator()
    api = await emulator.start()
    bot = make_bot(settings_for("sqlite+aiosqlite:///x.db", tmp_path, api))
    try:
        with pytest.raises(ClientResponseError) as caught:
            await bot.download_file("documents/nothing.jpg", destination=io.BytesIO())
    finally:
        await bot.session.close()
        await emulator.stop()
    assert TOKEN in str(caught.value)  # the error really carries the token
    return caught.value


async def test_an_aiohttp_error_with_the_token_in_its_url_is_logged_without_it(
    tmp_path: Path,
) -> None:
    error = await aiohttp_error_with_the_url(tmp_path)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("test.secrets")
    logger.addHandler(handler)
    logger.propagate = False
    install(TOKEN, logger)
    try:
        logger.warning("download failed: %s", error)
        try:
            raise RuntimeError(f"wrapped: {error}") from error
        except RuntimeError:
            logger.exception("update 7 failed")
        logger.info("a URL on its own: https://api.telegram.org/bot999999:%s/getMe", "X" * 35)
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    text = stream.getvalue()
    assert TOKEN not in text and TOKEN.split(":")[1] not in text
    assert "X" * 35 not in text
    assert text.count(f"/bot{REDACTED}/") >= 3  # message, traceback, the plain URL
    assert "Traceback" in text and "download failed: 404" in text


async def test_a_failed_photo_download_is_logged_and_answered_without_the_token(
    h: Harness, redacted_logs: pytest.LogCaptureFixture
) -> None:
    rin = h.emulator.user(1401, first_name="Rin", language_code="en")
    # A file Telegram lists but cannot serve: the download fails with a 404.
    missing = h.emulator.files.add(
        "document", None, declared_size=5000, file_name="IMG_9.JPG", mime_type="image/jpeg"
    )
    h.emulator.post_message(rin.user, rin.chat, {"document": missing.as_media()})
    answer = await rin.expect(contains=plain_text("en", "photo.download_failed"))
    assert TOKEN not in (answer.text or "")
    failed = [r for r in redacted_logs.records if "download" in r.getMessage()]
    assert failed, redacted_logs.text
    assert f"/bot{REDACTED}/" in failed[0].getMessage()
    assert TOKEN not in redacted_logs.text


def test_setup_logging_installs_the_filter(caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(_env_file=None, bot_token=TOKEN)
    setup_logging(settings)
    root = logging.getLogger()
    try:
        assert root.handlers
        assert all(any(isinstance(f, TokenRedactor) for f in h.filters) for h in root.handlers)
        logging.getLogger("bot.anything").warning("calling %s/bot%s/getMe", "https://x", TOKEN)
        assert TOKEN not in caplog.text and REDACTED in caplog.text
    finally:
        for handler in root.handlers:
            for f in [f for f in handler.filters if isinstance(f, TokenRedactor)]:
                handler.removeFilter(f)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            f"https://api.telegram.org/bot{TOKEN}/getUpdates",
            f"https://api.telegram.org/bot{REDACTED}/getUpdates",
        ),
        (f"token={TOKEN}", f"token={REDACTED}"),
        ("no secret here: case CY-20261123-0001", "no secret here: case CY-20261123-0001"),
        ("1234567890:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw", REDACTED),  # any token's shape
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text, TOKEN) == expected


def test_settings_never_show_the_token_or_the_webhook_secret() -> None:
    settings = Settings(_env_file=None, bot_token=TOKEN, webhook_secret="s3cret-value")
    for shown in (repr(settings), str(settings)):
        assert TOKEN not in shown and "s3cret-value" not in shown


@pytest.mark.parametrize(
    ("secret", "ok"),
    [
        ("a", True),
        ("A-z_0-9", True),
        ("x" * 256, True),
        ("x" * 257, False),
        ("with space", False),
        ("semi;colon", False),
        ("ünïcode", False),
    ],
)
def test_the_webhook_secret_follows_telegram_s_rule(secret: str, ok: bool) -> None:
    if ok:
        assert Settings(_env_file=None, webhook_secret=secret).webhook_secret == secret
    else:
        with pytest.raises(ValidationError) as caught:
            Settings(_env_file=None, webhook_secret=secret)
        message = describe_error(caught.value)
        assert "WEBHOOK_SECRET" in message and secret not in message


def test_an_empty_webhook_secret_is_none_and_webhook_mode_then_refuses() -> None:
    settings = Settings(_env_file=None, webhook_url="https://bot.example.org/tg", webhook_secret="")
    assert settings.webhook_secret is None
    with pytest.raises(ValueError, match="WEBHOOK_SECRET is missing"):
        settings.require_webhook_secret()
    ready = Settings(
        _env_file=None, webhook_url="https://bot.example.org/tg", webhook_secret="abc_DEF-1"
    )
    assert ready.require_webhook_secret() == "abc_DEF-1"


def test_several_bad_settings_give_one_clear_line_each() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(
            _env_file=None,
            bot_token="not-a-token",
            timezone="Mars/Olympus",
            log_level="LOUD",
            webhook_url="http://example.org/hook",
        )
    lines = describe_error(caught.value).splitlines()
    assert [line.split()[1] for line in lines] == [
        "BOT_TOKEN",
        "TIMEZONE",
        "LOG_LEVEL",
        "WEBHOOK_URL",
    ]
    assert all(line.endswith("Fix it in .env or the environment.") for line in lines)
    assert "not-a-token" not in "\n".join(lines)
