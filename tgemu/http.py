"""Reading Bot API parameters from a query, a JSON, urlencoded or multipart body alike.

The same reader parses webhook replies, where a bot answers an update with a method call.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import BodyPartReader, MultipartReader, StreamReader, hdrs

from tgemu.files import Upload
from tgemu.text import bad_request

JSON_FIELDS = frozenset(
    {
        "reply_markup",
        "entities",
        "caption_entities",
        "media",
        "commands",
        "scope",
        "allowed_updates",
        "link_preview_options",
        "reply_parameters",
    }
)
"""Parameters that are objects: form bodies carry them JSON-serialised inside a field."""
_JSON_NAMES = {"reply_markup": "reply keyboard markup"}


def _decode(name: str, value: Any) -> Any:
    if name in JSON_FIELDS and isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value  # Params.json() reports it with Telegram's wording
    return value


async def read_params(
    content_type: str, headers: Mapping[str, str], content: StreamReader, query: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, Upload]]:
    """Parameters (body over query string) and uploaded files by multipart field name."""
    values: dict[str, Any] = {key: _decode(key, value) for key, value in query.items()}
    files: dict[str, Upload] = {}
    if content_type == "application/json":
        raw = await content.read()
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError:
                raise bad_request("can't parse JSON body") from None
            if not isinstance(body, dict):
                raise bad_request("JSON body must be an object")
            values.update(body)
    elif content_type == "application/x-www-form-urlencoded":
        raw = await content.read()
        pairs = parse_qsl(raw.decode(), keep_blank_values=True)
        values.update({key: _decode(key, value) for key, value in pairs})
    elif content_type == "multipart/form-data":
        reader = MultipartReader(headers, content)
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or part.name is None:
                continue
            if part.filename is not None:
                data = bytes(await part.read(decode=True))
                files[part.name] = Upload(part.filename, part.headers.get(hdrs.CONTENT_TYPE), data)
            else:
                values[part.name] = _decode(part.name, await part.text())
    return values, files


class Params:
    """A method's parameters with Telegram's lenient typing: numbers may come as strings."""

    def __init__(self, values: dict[str, Any], files: Mapping[str, Upload] | None = None) -> None:
        self.values = values
        self.files = dict(files or {})

    def get(self, name: str) -> Any:
        """The value, with an empty string treated as absent as Telegram does."""
        value = self.values.get(name)
        return None if value == "" else value

    def text(self, name: str) -> str | None:
        value = self.get(name)
        return None if value is None else str(value)

    def integer(self, name: str) -> int | None:
        value = self.get(name)
        if value is None:
            return None
        if isinstance(value, bool):
            raise bad_request(f"invalid {name} specified")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise bad_request(f"invalid {name} specified") from None

    def number(self, name: str) -> float | None:
        value = self.get(name)
        if value is None:
            return None
        try:
            return float(value)
        except (TypeError, ValueError):
            raise bad_request(f"invalid {name} specified") from None

    def flag(self, name: str) -> bool:
        value = self.get(name)
        if isinstance(value, str):
            return value.lower() in ("true", "1")
        return bool(value)

    def json(self, name: str) -> Any:
        value = self.get(name)
        if isinstance(value, str):
            what = _JSON_NAMES.get(name, name.replace("_", " "))
            raise bad_request(f"can't parse {what} JSON object")
        return value

    def require(self, name: str, what: str | None = None) -> Any:
        value = self.get(name)
        if value is None:
            raise bad_request(f"{what} is empty" if what else f'parameter "{name}" is required')
        return value

    def file(self, name: str, value: Any = None) -> Upload | str | None:
        """A file given as an upload (directly or via attach://) or as a file_id/URL string."""
        value = self.get(name) if value is None else value
        if value is None:
            return self.files.get(name)
        if not isinstance(value, str):
            raise bad_request(f"can't parse {name}")
        if value.startswith("attach://"):
            key = value.removeprefix("attach://")
            if key not in self.files:
                raise bad_request(f'file "{key}" must be uploaded in the request')
            return self.files[key]
        return value
