"""Open311 bodies in JSON or XML, chosen by the URL's `.json` / `.xml` suffix as the spec does.

A body is plain data: a list (the spec's collections: services, service_requests, errors) or
a dict (discovery, service_definition). In XML a list's items are named after their list
(`services` holds `service` elements, `values` holds `value` …), booleans are `true`/`false`,
and fields that are None are left out, as they are in JSON.
"""

from __future__ import annotations

import json
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
        element.text = str(value)


def _pruned(value: Value) -> Value:
    """The body without its None fields."""
    if isinstance(value, list):
        return [_pruned(v) for v in value if v is not None]
    if isinstance(value, dict):
        return {k: _pruned(v) for k, v in value.items() if v is not None}
    return value
