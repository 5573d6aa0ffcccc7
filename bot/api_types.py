"""Keep aiogram's per-method response models alive for the life of the process.

aiogram parses every Bot API answer with `Response[<the method's result type>]`, a pydantic
generic model it asks for on each call. pydantic caches parametrised models only weakly, so
every garbage collection drops them and the next call builds the model again: about 10 ms of
CPU each time, several times a second under load (9 % of the event loop's busy time in the
intake benchmark, bench/RESULTS.md). Holding a reference to the ones the bot uses keeps
pydantic's cache warm.
"""

from __future__ import annotations

from typing import Any

from aiogram.methods import (
    AnswerCallbackQuery,
    DeleteMessage,
    DeleteWebhook,
    EditMessageCaption,
    EditMessageReplyMarkup,
    EditMessageText,
    GetFile,
    GetMe,
    GetUpdates,
    SendDocument,
    SendLocation,
    SendMediaGroup,
    SendMessage,
    SendPhoto,
    SendVenue,
    SetMyCommands,
    SetWebhook,
    TelegramMethod,
)
from aiogram.methods.base import Response

METHODS: tuple[type[TelegramMethod[Any]], ...] = (
    AnswerCallbackQuery,
    DeleteMessage,
    DeleteWebhook,
    EditMessageCaption,
    EditMessageReplyMarkup,
    EditMessageText,
    GetFile,
    GetMe,
    GetUpdates,
    SendDocument,
    SendLocation,
    SendMediaGroup,
    SendMessage,
    SendPhoto,
    SendVenue,
    SetMyCommands,
    SetWebhook,
)
_held: dict[Any, type[Any]] = {}


def hold_response_models() -> None:
    """Build (once per process) and hold `Response[T]` for each method the bot calls."""
    for method in METHODS:
        returning = method.__returning__
        if returning not in _held:
            _held[returning] = Response[returning]  # type: ignore[valid-type]
