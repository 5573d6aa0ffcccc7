"""Reading a POST requests call into a checked report: service, place, words, answers.

Location, in the spec's order of preference: `lat`+`long` (must be in the district), else
`address_id` (a lane id, as on the street signs and in `address_id` of GET requests), else
`address_string`, matched against the district's lane names (the longest name found in it
wins) and then its street offices' names; an address that names neither is still accepted,
as a typed address is in the chat, and goes to triage.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.domain.district import Category, District
from bot.domain.routing.locate import LaneMatch, Locator, NoLane, OutsideDistrict
from bot.domain.text import MAX_ADDRESS
from bot.open311.errors import bad_request
from bot.open311.params import coordinate
from bot.open311.services import attributes_of

MAX_DESCRIPTION = 4000  # the spec's limit
MAX_MEDIA_URL = 1000
MAX_DEVICE_ID = 200
_ATTRIBUTE = re.compile(r"attribute\[([A-Za-z0-9_]{1,64})\](?:\[\])?")


@dataclass(frozen=True)
class Place:
    lat: float | None = None
    lon: float | None = None
    address: str | None = None  # as the client typed it: for the assignees, never shown back
    lane_id: str | None = None
    street_id: str | None = None


@dataclass(frozen=True)
class Submission:
    """What a client reported, checked; nothing about the person who reported it."""

    category: Category
    description: str
    place: Place
    media_url: str | None = None
    answers: dict[str, str] = field(default_factory=dict)
    device_id: str | None = None


def read_submission(params: Mapping[str, str], district: District, locator: Locator) -> Submission:
    """The checked report, or an Open311Error (400) saying what is wrong.

    Personal fields (email, first_name, last_name, phone, account_id) are accepted and
    dropped here; device_id is only used to recognise a retry (see submit.py).
    """
    values = {k: v.strip() for k, v in params.items() if v.strip()}
    code = values.get("service_code")
    if code is None:
        raise bad_request("service_code_missing")
    category = district.categories.get(code)
    if category is None:
        raise bad_request("unknown_service_code", service_code=code[:64])
    description = values.get("description", "")
    if len(description) > MAX_DESCRIPTION:
        raise bad_request("description_too_long", limit=MAX_DESCRIPTION, n=len(description))
    media_url = values.get("media_url")
    if media_url is not None and not _is_url(media_url):
        raise bad_request("bad_media_url", limit=MAX_MEDIA_URL)
    if not description and media_url is None:
        raise bad_request("description_missing")
    device_id = values.get("device_id")
    if device_id is not None and len(device_id) > MAX_DEVICE_ID:
        raise bad_request("device_id_too_long", limit=MAX_DEVICE_ID)
    return Submission(
        category=category,
        description=description,
        place=_place(values, district, locator),
        media_url=media_url,
        answers=_answers(params, category),
        device_id=device_id,
    )


def _is_url(value: str) -> bool:
    return (
        len(value) <= MAX_MEDIA_URL
        and value.lower().startswith(("http://", "https://"))
        and not any(c.isspace() for c in value)
    )


def _place(values: Mapping[str, str], district: District, locator: Locator) -> Place:
    lat_text, lon_text = values.get("lat"), values.get("long")
    address = values.get("address_string")
    if address is not None and len(address) > MAX_ADDRESS:
        raise bad_request("address_too_long", limit=MAX_ADDRESS)
    if (lat_text is None) != (lon_text is None):
        raise bad_request("lat_long_pair")
    if lat_text is not None and lon_text is not None:
        lat, lon = coordinate("lat", lat_text, 90.0), coordinate("long", lon_text, 180.0)
        found = locator.locate(lat, lon)
        if isinstance(found, OutsideDistrict):
            raise bad_request(
                "outside", district=lambda lang: district.name(district, lang), lat=lat, long=lon
            )
        if isinstance(found, LaneMatch):
            return Place(lat, lon, address, found.lane_id, found.street_id)
        assert isinstance(found, NoLane)
        return Place(lat, lon, address, None, found.street_id)
    address_id = values.get("address_id")
    if address_id is not None:
        lane = district.lanes.get(address_id)
        if lane is None:
            raise bad_request("unknown_address_id", address_id=address_id[:64])
        return Place(address=address, lane_id=lane.id, street_id=lane.street_id)
    if address is None:
        raise bad_request("location_missing")
    return _named_place(district, address)


def _named_place(district: District, address: str) -> Place:
    """The lane (or else the street office) whose name the address contains, if any."""
    text = address.lower()
    best: tuple[int, str, str] | None = None
    for lane in district.lanes.values():
        for name in (lane.name_zh, lane.name_en):
            if len(name) >= 2 and name.lower() in text and (best is None or len(name) > best[0]):
                best = (len(name), lane.id, lane.street_id)
    if best is not None:
        return Place(address=address, lane_id=best[1], street_id=best[2])
    for office in district.street_offices.values():
        if any(len(n) >= 2 and n.lower() in text for n in (office.name_zh, office.name_en)):
            return Place(address=address, street_id=office.id)
    return Place(address=address)


def _answers(params: Mapping[str, str], category: Category) -> dict[str, str]:
    asked = {a.code: a for a in attributes_of(category.id)}
    answers: dict[str, str] = {}
    for key, raw in params.items():
        match = _ATTRIBUTE.fullmatch(key)
        if match is None:
            continue
        code, value = match.group(1), raw.strip()
        attribute = asked.get(code)
        if attribute is None:
            raise bad_request("unknown_attribute", code=code, service_code=category.id)
        if value not in attribute.values:
            raise bad_request("bad_attribute_value", code=code, values=", ".join(attribute.values))
        answers[code] = value
    for attribute in asked.values():
        if attribute.required and attribute.code not in answers:
            raise bad_request("attribute_missing", code=attribute.code)
    return answers
