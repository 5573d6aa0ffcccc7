"""The bot token never reaches a log: a filter that blanks it wherever it appears.

The token is in every Bot API URL (`…/bot<token>/getUpdates`, `…/file/bot<token>/…`), and
aiohttp puts the URL into its error messages, which aiogram and our handlers log. The filter
rewrites each record's message, traceback and stack before any handler formats it.
"""

from __future__ import annotations

import logging
import re

REDACTED = "<redacted>"
# A Bot API URL's token segment, whatever the token looks like.
_URL_TOKEN = re.compile(r"/bot[^/\s'\"<>]+/")
# Anything shaped like a bot token (a numeric bot id, a colon, the secret) on its own.
_TOKEN = re.compile(r"\b\d{5,}:[A-Za-z0-9_-]{20,}")


def redact(text: str, token: str = "") -> str:
    if token:
        text = text.replace(token, REDACTED)
    text = _URL_TOKEN.sub(f"/bot{REDACTED}/", text)
    return _TOKEN.sub(REDACTED, text)


class TokenRedactor(logging.Filter):
    """Installed on the log handlers at start-up (bot/cli/core.py `setup_logging`)."""

    def __init__(self, token: str = "") -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            record.msg = redact(record.getMessage(), self.token)
            record.args = None
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = redact(record.exc_text, self.token)
            if record.stack_info:
                record.stack_info = redact(record.stack_info, self.token)
        except Exception:  # a record that cannot be formatted is logging's to report, not ours
            return True
        return True


def install(token: str, logger: logging.Logger | None = None) -> TokenRedactor:
    """Put the filter on every handler of `logger` (the root logger by default)."""
    target = logger or logging.getLogger()
    redactor = TokenRedactor(token)
    for handler in target.handlers:
        if not any(isinstance(f, TokenRedactor) for f in handler.filters):
            handler.addFilter(redactor)
    return redactor
