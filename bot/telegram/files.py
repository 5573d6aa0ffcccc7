"""Files from Telegram: a photo or document a person sent, fetched into memory within a cap.

Only the fetching is Telegram's: what the bytes must be to be kept is bot/domain/photos.py's.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Final

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest

from bot.domain.photos import PhotoRejected

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

DOWNLOAD_TIMEOUT: Final = 120  # seconds for a whole file; aiogram's 30 s is short for 20 MB


class _CappedBuffer(io.BytesIO):
    """A download destination that refuses to grow past the cap, even if the size was unknown."""

    def __init__(self, cap: int) -> None:
        super().__init__()
        self._cap = cap

    def write(self, buffer: ReadableBuffer, /) -> int:
        size = memoryview(buffer).nbytes
        if self.tell() + size > self._cap:
            raise PhotoRejected("too_large", f"download exceeded {self._cap} bytes")
        return super().write(buffer)


async def download(bot: Bot, file_id: str, *, declared_size: int | None, max_bytes: int) -> bytes:
    """Fetch a Telegram file into memory, refusing oversize files before and while downloading."""
    if declared_size is not None and declared_size > max_bytes:
        raise PhotoRejected("too_large", f"declared {declared_size} bytes > {max_bytes}")
    try:
        file = await bot.get_file(file_id)
    except TelegramBadRequest as exc:
        if "file is too big" in exc.message.lower():
            raise PhotoRejected("too_large", f"getFile: {exc.message}") from exc
        raise
    if file.file_size is not None and file.file_size > max_bytes:
        raise PhotoRejected("too_large", f"getFile size {file.file_size} bytes > {max_bytes}")
    if not file.file_path:
        raise RuntimeError(f"getFile returned no file_path for {file_id!r}")
    buffer = _CappedBuffer(max_bytes)
    await bot.download_file(file.file_path, destination=buffer, timeout=DOWNLOAD_TIMEOUT)
    return buffer.getvalue()
