"""Files as Telegram keeps them: bytes by file_id, photos re-encoded into a PhotoSize list."""

from __future__ import annotations

import base64
import hashlib
import io
import mimetypes
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from PIL import Image, ImageOps

MAX_DOWNLOAD = 20 * 1024 * 1024
"""getFile refuses bigger files: bots cannot download them from the public Bot API."""
MAX_UPLOAD = 50 * 1024 * 1024

_THUMB_SIDES = (90, 320, 800)
_PREFIX = {
    "photo": "AgAC",
    "document": "BQAC",
    "voice": "AwAC",
    "video": "BAAC",
    "sticker": "CAAC",
    "animation": "CgAC",
}
_FOLDER = {
    "photo": "photos",
    "document": "documents",
    "voice": "voice",
    "video": "videos",
    "sticker": "stickers",
    "animation": "animations",
}


@dataclass(frozen=True)
class Upload:
    """A file part of a multipart request."""

    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class StoredFile:
    """One file_id's bytes and metadata; `data` is None for a size a test only declared."""

    file_id: str
    file_unique_id: str
    kind: str
    file_path: str
    file_size: int
    data: bytes | None
    file_name: str | None = None
    mime_type: str | None = None
    width: int = 0
    height: int = 0
    photo: list[dict[str, Any]] | None = None
    """For a photo size: the whole PhotoSize list it belongs to, so any size re-sends the set."""

    def photo_size(self) -> dict[str, Any]:
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "width": self.width,
            "height": self.height,
            "file_size": self.file_size,
        }

    def as_media(self, **extra: Any) -> dict[str, Any]:
        """The object for a document, voice, video... message: ids, size and `extra` fields."""
        out: dict[str, Any] = {"file_id": self.file_id, "file_unique_id": self.file_unique_id}
        if self.file_name is not None:
            out["file_name"] = self.file_name
        if self.mime_type is not None:
            out["mime_type"] = self.mime_type
        return out | extra | {"file_size": self.file_size}

    def as_file(self) -> dict[str, Any]:
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": self.file_size,
            "file_path": self.file_path,
        }


def _fit(image: Image.Image, side: int) -> Image.Image:
    if max(image.size) <= side:
        return image
    small = image.copy()
    small.thumbnail((side, side))
    return small


def _jpeg(image: Image.Image, quality: int) -> tuple[bytes, int, int]:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue(), image.width, image.height


def encode_photo(data: bytes, max_side: int) -> list[tuple[bytes, int, int]] | None:
    """Re-encode as a Telegram client does: orientation applied, metadata gone, JPEG sizes.

    Returns the sizes smallest first (always a thumbnail and the full size), or None when
    Pillow cannot decode the bytes.
    """
    try:
        with Image.open(io.BytesIO(data)) as opened:
            opened.draft("RGB", (max_side, max_side))
            image = ImageOps.exif_transpose(opened).convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None
    full_side = min(max(image.size), max_side)
    smalls = [side for side in _THUMB_SIDES if side < full_side] or [full_side]
    # Lower quality for the small sizes, as Telegram does; it also keeps their bytes distinct.
    return [_jpeg(_fit(image, side), 70) for side in smalls] + [_jpeg(_fit(image, full_side), 87)]


def _unique_id(kind: str, data: bytes, declared: int | None) -> str:
    digest = hashlib.sha256(f"{kind}:{declared}:".encode() + data).digest()
    return "AQAD" + base64.urlsafe_b64encode(digest[:12]).decode()


class FileStore:
    """All files users and the bot have sent; the unique id is stable per content."""

    def __init__(self, photo_max_side: int) -> None:
        self.photo_max_side = photo_max_side
        self._by_id: dict[str, StoredFile] = {}
        self._by_path: dict[str, StoredFile] = {}
        self._count = 0

    def get(self, file_id: str) -> StoredFile | None:
        return self._by_id.get(file_id)

    def by_path(self, file_path: str) -> StoredFile | None:
        return self._by_path.get(file_path)

    def add(
        self,
        kind: str,
        data: bytes | None,
        *,
        declared_size: int | None = None,
        file_name: str | None = None,
        mime_type: str | None = None,
        width: int = 0,
        height: int = 0,
    ) -> StoredFile:
        self._count += 1
        unique = _unique_id(kind, data or b"", declared_size)
        suffix = PurePosixPath(file_name or "").suffix or (
            ".jpg" if kind == "photo" else mimetypes.guess_extension(mime_type or "") or ".bin"
        )
        stored = StoredFile(
            file_id=f"{_PREFIX.get(kind, 'BQAC')}{self._count:06d}{unique}",
            file_unique_id=unique,
            kind=kind,
            file_path=f"{_FOLDER.get(kind, 'documents')}/file_{self._count}{suffix}",
            file_size=declared_size if declared_size is not None else len(data or b""),
            data=data,
            file_name=file_name,
            mime_type=mime_type,
            width=width,
            height=height,
        )
        self._by_id[stored.file_id] = stored
        self._by_path[stored.file_path] = stored
        return stored

    def add_photo(self, data: bytes, *, passthrough: bool) -> list[dict[str, Any]] | None:
        """Store a photo as its PhotoSize list.

        Undecodable bytes are kept as one size when `passthrough` (what a user's client may
        deliver, so the bot's own checks can be tested); otherwise None, which the API answers
        as IMAGE_PROCESS_FAILED.
        """
        variants = encode_photo(data, self.photo_max_side)
        if variants is None:
            if not passthrough:
                return None
            variants = [(data, 0, 0)]
        stored = [
            self.add("photo", blob, width=width, height=height) for blob, width, height in variants
        ]
        sizes = [item.photo_size() for item in stored]
        for item in stored:
            item.photo = sizes
        return sizes


def guess_mime(file_name: str | None, content_type: str | None) -> str:
    """Telegram decides a document's MIME type by its name, like a client would."""
    guessed = mimetypes.guess_type(file_name or "")[0]
    if guessed:
        return guessed
    if content_type and content_type != "application/octet-stream":
        return content_type
    return "application/octet-stream"
