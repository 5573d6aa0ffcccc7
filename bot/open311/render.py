"""Open311 bodies in JSON or XML, chosen by the URL's `.json` / `.xml` suffix as the spec does.

A body is plain data: a list (the spec's collections: services, service_requests, errors) or
a dict (discovery, service_definition). In XML a list's items are named after their list
(`services` holds `service` elements, `values` holds `value` …), booleans are `true`/`false`,
and fields that are None are left out, as they are in JSON.

XML 1.0 cannot hold most control characters, not even escaped: `shown` writes those of a value
echoed back (in an error) as `\x01`, in both formats alike, and the XML writer replaces any that
are left with U+FFFD, so that every answer parses.
"""

from __future__ import annotations

import json
import re
from typing import TypeAlias
from xml.etree import ElementTree as ET

from aiohttp import web

Value: TypeAlias = "str | int | float | bool | list[Value] | dict[str, Value] | None"

FORMATS = ("json", "xml")
CONTENT_TYPES = {"json": "application/json", "xml": "text/xml"}
ITEM_NAMES = {
    "services": "service",
    "service_requests": "request",
    "errors": "error",
    "endpoints": "endpoint",
    "formats": "format",
    "attributes": "attribute",
    "values": "value",
}
# What XML 1.0 allows: tab, newline, carriage return and the rest of Unicode above U+001F,
# without surrogates and the non-characters U+FFFE and U+FFFF.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_UNSEEN = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def shown(value: str) -> str:
    """A value to echo back: control characters (and what XML cannot hold) as `\\x01`."""
    return _UNSEEN.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), value)


def respond(fmt: str, root: str, body: Value, *, status: int = 200) -> web.Response:
    """The response for `body`; `root` names the XML document element."""
    text = xml_text(root, body) if fmt == "xml" else json.dumps(_pruned(body), ensure_ascii=False)
    return web.Response(text=text, status=status, content_type=CONTENT_TYPES[fmt], charset="utf-8")


def format_of(path: str) -> str:
    """The format a path asks for; JSON when it names neither (e.g. an unknown path)."""
    return "xml" if path.lower().endswith(".xml") else "json"


def xml_text(root: str, body: Value) -> str:
    element = ET.Element(root)
    _fill(element, root, body)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(element, encoding="unicode")


def _fill(element: ET.Element, name: str, value: Value) -> None:
    if isinstance(value, list):
        item_name = ITEM_NAMES.get(name, "item")
        for item in value:
            if item is not None:
                _fill(ET.SubElement(element, item_name), item_name, item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if item is not None:
                _fill(ET.SubElement(element, key), key, item)
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    elif value is not None:
        element.text = _NOT_XML.sub("\ufffd", str(value))


def _pruned(value: Value) -> Value:
    """The body without its None fields."""
    if isinstance(value, list):
        return [_pruned(v) for v in value if v is not None]
    if isinstance(value, dict):
        return {k: _pruned(v) for k, v in value.items() if v is not None}
    return value
