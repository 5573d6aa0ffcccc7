"""Turning a Telegram photo or file into a stored, stripped photo (or a reason it was refused)."""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramNetworkError
from aiogram.types import Message
from aiohttp import ClientError

from bot.context import AppContext
from bot.domain import photos
from bot.domain.cases import PhotoInput
from bot.telegram.files import download
from bot.telegram.outgoing import Recipient

log = logging.getLogger(__name__)


class IntakeRefused(Exception):
    """The photo was not taken; `key` is the catalogue text telling the person why."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


async def take_photo(bot: Bot, ctx: AppContext, message: Message) -> tuple[PhotoInput, Any]:
    """Download, check, strip and store the message's photo; returns it and its EXIF GPS."""
    if message.photo:
        size = message.photo[-1]
        file_id, unique_id, declared = size.file_id, size.file_unique_id, size.file_size
    elif message.document:
        doc = message.document
        file_id, unique_id, declared = doc.file_id, doc.file_unique_id, doc.file_size
    else:
        raise IntakeRefused("photo.rejected.not_image")
    origin = message.forward_origin
    if origin is not None and origin.type == "channel":
        # Not the resident's own sighting: a channel's post may be old or from elsewhere.
        log.info("photo from %s refused: forwarded from a channel", message.chat.id)
        raise IntakeRefused("photo.rejected.forwarded")
    settings = ctx.settings
    try:
        data = await download(
            bot, file_id, declared_size=declared, max_bytes=settings.max_photo_bytes
        )
        done = await photos.process_in_turn(
            data,
            ctx.media_dir,
            decoders=settings.photo_decoders,
            max_bytes=settings.max_photo_bytes,
            max_pixels=settings.max_photo_pixels,
            max_non_jpeg_pixels=settings.max_photo_pixels_non_jpeg,
        )
    except photos.PhotoRejected as exc:
        log.info("photo from %s refused (%s): %s", message.chat.id, exc.reason, exc)
        raise IntakeRefused(f"photo.rejected.{exc.reason}") from exc
    except (TelegramNetworkError, TelegramAPIError, ClientError) as exc:
        log.warning("photo download from %s failed: %s", message.chat.id, exc)
        raise IntakeRefused("photo.download_failed") from exc
    taken = PhotoInput(
        path=done.path,
        sha256=done.sha256,
        phash=done.phash,
        size=done.size,
        width=done.width,
        height=done.height,
        file_id=file_id if message.photo else None,
        file_unique_id=unique_id,
    )
    return taken, done.gps


async def receive_photo(
    bot: Bot, ctx: AppContext, message: Message, me: Recipient
) -> tuple[PhotoInput, Any] | None:
    """The message's photo, stored; or None once the person has been told why it was refused."""
    try:
        return await take_photo(bot, ctx, message)
    except IntakeRefused as exc:
        me.say(exc.key, limit_mb=ctx.settings.max_photo_bytes // (1024 * 1024))
        return None


def photo_to_data(photo: PhotoInput) -> dict[str, Any]:
    return asdict(photo)


def photo_from_data(data: dict[str, Any]) -> PhotoInput:
    return PhotoInput(**data)
