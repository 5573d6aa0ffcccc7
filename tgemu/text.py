"""Telegram's rules for what a bot sends: errors, lengths, HTML entities and keyboards.

Kept apart from the server so the rules can be read (and checked) on their own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64
MAX_CALLBACK_ANSWER = 200


class ApiError(Exception):
    """A Bot API failure; the server answers it as Telegram's error object."""

    def __init__(self, code: int, description: str, *, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.code,
            "description": self.description,
        }
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def bad_request(detail: str) -> ApiError:
    return ApiError(400, f"Bad Request: {detail}")


def utf16_len(text: str) -> int:
    """Telegram measures entity offsets and lengths in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


# --- HTML parse mode -------------------------------------------------------------------------

_TAG_ENTITY = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_NAME_RE = re.compile(r"[a-zA-Z][a-zA-Z0-9-]*")
_ATTR_RE = re.compile(r"""([a-zA-Z-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""")
_CHAR_REF_RE = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z]{2,8});")
_NAMED_REFS = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


@dataclass
class _OpenTag:
    name: str
    offset: int
    attrs: dict[str, str] = field(default_factory=dict)


def _entities_error(detail: str) -> ApiError:
    return bad_request(f"can't parse entities: {detail}")


def _decode_ref(ref: str) -> str | None:
    if not ref.startswith("#"):
        return _NAMED_REFS.get(ref.lower())
    code = int(ref[2:], 16) if ref[1] in "xX" else int(ref[1:])
    return chr(code) if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else None


def _unescape(value: str) -> str:
    return _CHAR_REF_RE.sub(lambda ref: _decode_ref(ref.group(1)) or ref.group(), value)


def _tag_end(source: str, start: int) -> int:
    """Index of the `>` closing the tag at `start`, skipping quoted attribute values; -1 if none."""
    quote = ""
    for i in range(start + 1, len(source)):
        ch = source[i]
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == ">":
            return i
    return -1


def _close_tag(tag: _OpenTag, end: int, stack: list[_OpenTag], out: list[dict[str, Any]]) -> None:
    if tag.name == "code" and stack and stack[-1].name == "pre":
        language = tag.attrs.get("class", "")
        if language.startswith("language-"):
            stack[-1].attrs["language"] = language.removeprefix("language-")
            return
    if end <= tag.offset:
        return
    entity: dict[str, Any] = {"type": _TAG_ENTITY[tag.name], "offset": tag.offset}
    entity["length"] = end - tag.offset
    if tag.name == "a":
        if "href" not in tag.attrs:
            return
        entity["url"] = tag.attrs["href"]
    elif tag.name == "pre" and "language" in tag.attrs:
        entity["language"] = tag.attrs["language"]
    elif tag.name == "tg-emoji":
        entity["custom_emoji_id"] = tag.attrs.get("emoji-id", "")
    out.append(entity)


def parse_html(source: str) -> tuple[str, list[dict[str, Any]]]:
    """Turn Telegram HTML into plain text plus entities, refusing bad markup as Telegram does.

    Like Telegram's parser, a bare `&` is kept literally, but every `<` must open a supported
    tag or close the innermost open one.
    """
    chunks: list[str] = []
    pos = 0
    stack: list[_OpenTag] = []
    entities: list[dict[str, Any]] = []
    i = 0
    while i < len(source):
        ch = source[i]
        if ch == "&" and (ref := _CHAR_REF_RE.match(source, i)):
            decoded = _decode_ref(ref.group(1))
            if decoded is not None:
                chunks.append(decoded)
                pos += utf16_len(decoded)
                i = ref.end()
                continue
        if ch != "<":
            chunks.append(ch)
            pos += utf16_len(ch)
            i += 1
            continue
        at = len(source[:i].encode())
        end = _tag_end(source, i)
        if source.startswith("</", i):
            if end < 0:
                raise _entities_error(f"Unclosed end tag at byte offset {at}")
            name = source[i + 2 : end].strip().lower()
            if not stack:
                raise _entities_error(f"Unexpected end tag at byte offset {at}")
            tag = stack.pop()
            if name and name != tag.name:
                raise _entities_error(
                    f'Unmatched end tag at byte offset {at}, expected "</{tag.name}>", '
                    f'found "</{name}>"'
                )
            _close_tag(tag, pos, stack, entities)
            i = end + 1
            continue
        match = _NAME_RE.match(source, i + 1)
        name = match.group().lower() if match else ""
        if match is None or name not in _TAG_ENTITY:
            raise _entities_error(f'Unsupported start tag "{name}" at byte offset {at}')
        if end < 0:
            raise _entities_error(f"Unclosed start tag at byte offset {at}")
        attrs = {
            a.group(1).lower(): _unescape(next(g for g in a.groups()[1:] if g is not None))
            for a in _ATTR_RE.finditer(source[match.end() : end])
        }
        if name == "span" and attrs.get("class") != "tg-spoiler":
            raise _entities_error(f'Tag "span" must have class "tg-spoiler" at byte offset {at}')
        stack.append(_OpenTag(name, pos, attrs))
        i = end + 1
    if stack:
        raise _entities_error(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(chunks), entities


def _trim(text: str, entities: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Telegram strips leading and trailing whitespace from texts, shifting entities along."""
    lead = utf16_len(text[: len(text) - len(text.lstrip())])
    trimmed = text.strip()
    total = utf16_len(trimmed)
    kept: list[dict[str, Any]] = []
    for entity in entities:
        start = max(int(entity["offset"]) - lead, 0)
        end = min(int(entity["offset"]) + int(entity["length"]) - lead, total)
        if end > start:
            kept.append({**entity, "offset": start, "length": end - start})
    return trimmed, kept


def format_text(
    raw: str, parse_mode: str | None, entities: list[dict[str, Any]] | None
) -> tuple[str, list[dict[str, Any]]]:
    """The text and entities a client would show for what the bot sent.

    Markdown modes are passed through unparsed: the project formats with HTML.
    """
    mode = (parse_mode or "").lower()
    if mode == "html":
        return _trim(*parse_html(raw))
    if mode in ("", "markdown", "markdownv2"):
        return _trim(raw, list(entities or []))
    raise bad_request(f"unsupported parse_mode {parse_mode!r}")


# --- keyboards -------------------------------------------------------------------------------

_INLINE_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
_BUTTON_URL_RE = re.compile(r"^(https?|tg)://\S+$")


def _rows(markup: dict[str, Any], key: str, kind: str) -> list[list[Any]]:
    rows = markup.get(key)
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request(f'field "{key}" of the {kind} should be an Array of Arrays')
    return rows


def _check_inline_button(button: Any) -> None:
    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
        raise bad_request(
            'can\'t parse inline keyboard button: Field "text" must be of type String'
        )
    if not any(action in button for action in _INLINE_ACTIONS):
        raise bad_request(
            "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
        )
    if "callback_data" in button:
        data = button["callback_data"]
        if not isinstance(data, str) or not 1 <= len(data.encode()) <= MAX_CALLBACK_DATA:
            raise bad_request("BUTTON_DATA_INVALID")
    if "url" in button and not _BUTTON_URL_RE.match(str(button["url"])):
        raise bad_request("BUTTON_URL_INVALID")


def check_reply_markup(markup: Any) -> dict[str, Any] | None:
    """Validate a reply_markup as Telegram does for the parts a bot can get wrong."""
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        for row in _rows(markup, "inline_keyboard", "InlineKeyboardMarkup"):
            for button in row:
                _check_inline_button(button)
    elif "keyboard" in markup:
        for row in _rows(markup, "keyboard", "ReplyKeyboardMarkup"):
            for button in row:
                if not isinstance(button, str) and not (
                    isinstance(button, dict) and isinstance(button.get("text"), str)
                ):
                    raise bad_request(
                        'can\'t parse keyboard button: Field "text" must be of type String'
                    )
    elif not (markup.get("remove_keyboard") or markup.get("force_reply")):
        raise bad_request("can't parse reply keyboard markup JSON object")
    return markup


def is_inline(markup: dict[str, Any] | None) -> bool:
    return markup is not None and "inline_keyboard" in markup


def inline_buttons(markup: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not is_inline(markup):
        return []
    assert markup is not None
    return [button for row in markup["inline_keyboard"] for button in row]


def reply_buttons(markup: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Reply-keyboard buttons, legacy plain-string buttons turned into objects."""
    if markup is None or "keyboard" not in markup:
        return []
    return [
        button if isinstance(button, dict) else {"text": str(button)}
        for row in markup["keyboard"]
        for button in row
    ]
