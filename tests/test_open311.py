"""Open311 GeoReport v2: every call and refusal in JSON and XML, against the real bot.

JSON answers are validated against the GeoReport v2 schemas in tests/schemas/georeport-v2;
each XML answer must carry the spec's element names and say exactly what the JSON one says.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import aiohttp
import jsonschema
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.domain import cases
from bot.domain.district import haversine_m
from bot.domain.lifecycle import State
from bot.i18n import LOCALES_DIR, plain
from bot.open311 import make_app
from bot.open311.keys import add_client, allow_exact_location, authenticate, revoke
from bot.open311.render import xml_text
from bot.open311.serve import mount
from bot.open311.view import Grid
from storage.models import Base, Case, CaseEvent, Open311Client
from tests.harness import Harness, grant, plain_text

SCHEMAS = Path(__file__).resolve().parent / "schemas" / "georeport-v2"
BASE = "/open311/v2"
CHIEF = 3101
OFFICER = 3102
FORMATS = ("json", "xml")
# Every element name an answer may have, from the spec.
SPEC_ELEMENTS = {
    "discovery": {"changeset", "contact", "key_service", "endpoints"},
    "endpoint": {"specification", "url", "changeset", "type", "formats"},
    "service": {
        "service_code",
        "service_name",
        "description",
        "metadata",
        "type",
        "keywords",
        "group",
    },
    "service_definition": {"service_code", "attributes"},
    "attribute": {
        "variable",
        "code",
        "datatype",
        "required",
        "datatype_description",
        "order",
        "description",
        "values",
    },
    "value": {"key", "name"},
    "request": {
        "service_request_id",
        "status",
        "status_notes",
        "service_name",
        "service_code",
        "description",
        "agency_responsible",
        "service_notice",
        "requested_datetime",
        "updated_datetime",
        "expected_datetime",
        "address",
        "address_id",
        "zipcode",
        "lat",
        "long",
        "media_url",
        "token",
        "account_id",
    },
    "error": {"code", "description"},
}
LISTS = {
    "services": "service",
    "service_requests": "request",
    "errors": "error",
    "endpoints": "endpoint",
    "formats": "format",
    "attributes": "attribute",
    "values": "value",
}
W3C = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+08:00$")


@cache
def schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMAS / f"{name}.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(loaded)
    return loaded


def valid(data: Any, name: str) -> Any:
    jsonschema.Draft202012Validator(schema(name)).validate(data)
    return data


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
async def api(h: Harness) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    root = web.Application()
    mount(root, make_app(h.ctx))
    async with TestClient(TestServer(root)) as client:
        yield client


@pytest.fixture
async def keys(h: Harness) -> dict[str, str]:
    async with h.session() as session, session.begin():
        _, write = await add_client(session, "12345 hotline", can_write=True, now=h.clock.now())
        _, read = await add_client(session, "dashboard", can_write=False, now=h.clock.now())
    return {"write": write, "read": read}


Api = TestClient[web.Request, web.Application]


# --------------------------------------------------------------------------- helpers


def lane_point(h: Harness, index: int = 0) -> tuple[str, float, float]:
    lane = sorted(h.district.lanes.values(), key=lambda lane: lane.id)[index]
    return lane.id, *lane.representative_point


async def call(
    api: Api, method: str, path: str, fmt: str, status: int, **kwargs: Any
) -> tuple[Any, str]:
    """(parsed body, raw text): JSON data, or the XML root element."""
    response = await api.request(method, f"{BASE}/{path}.{fmt}", **kwargs)
    text = await response.text()
    assert response.status == status, text
    assert response.charset == "utf-8"
    if fmt == "json":
        assert response.content_type == "application/json"
        return json.loads(text), text
    assert response.content_type == "text/xml"
    assert text.startswith('<?xml version="1.0" encoding="utf-8"?>')
    return ET.fromstring(text.encode()), text


def xml_data(element: ET.Element) -> Any:
    """An XML answer as data, checking every element name against the spec's."""
    if element.tag in LISTS:
        assert all(child.tag == LISTS[element.tag] for child in element), element.tag
        return [xml_data(child) for child in element]
    if len(element):
        names = [child.tag for child in element]
        assert len(set(names)) == len(names), names
        assert set(names) <= SPEC_ELEMENTS[element.tag], (element.tag, names)
        return {child.tag: xml_data(child) for child in element}
    return element.text or ""


def as_text(data: Any) -> Any:
    """JSON data with every value written as XML writes it."""
    if isinstance(data, list):
        return [as_text(item) for item in data]
    if isinstance(data, dict):
        return {key: as_text(value) for key, value in data.items()}
    if isinstance(data, bool):
        return "true" if data else "false"
    return str(data)


async def both(
    api: Api, path: str, schema_name: str, root: str, status: int = 200, **kwargs: Any
) -> Any:
    """GET in JSON (validated) and XML (same content, spec's names); the JSON data."""
    data, _ = await call(api, "GET", path, "json", status, **kwargs)
    valid(data, schema_name)
    element, _ = await call(api, "GET", path, "xml", status, **kwargs)
    assert element.tag == root
    assert xml_data(element) == as_text(data)
    return data


async def refused(
    api: Api, method: str, path: str, status: int, contains: str = "", **kwargs: Any
) -> str:
    """The call is refused with `status` in both formats, as the spec's errors; its text."""
    texts = []
    for fmt in FORMATS:
        body, _ = await call(api, method, path, fmt, status, **kwargs)
        if fmt == "json":
            [error] = valid(body, "errors")
            assert error["code"] == status
            texts.append(error["description"])
        else:
            assert body.tag == "errors"
            [error] = xml_data(body)
            assert error["code"] == str(status)
            texts.append(error["description"])
    assert texts[0] == texts[1]
    assert contains in texts[0], texts[0]
    return str(texts[0])


def report(h: Harness, key: str, **fields: Any) -> dict[str, Any]:
    """A form for POST requests: a pile of things on lane 0 unless told otherwise."""
    _lane, lat, lon = lane_point(h)
    form: dict[str, Any] = {
        "api_key": key,
        "service_code": "duiwuduiliao",
        "lat": str(lat),
        "long": str(lon),
        "description": "胡同口堆了旧家具",
    }
    form |= fields
    return {k: v for k, v in form.items() if v is not None}


async def post(
    api: Api, form: dict[str, Any], fmt: str = "json", status: int = 201, **kwargs: Any
) -> dict[str, Any]:
    body, _ = await call(api, "POST", "requests", fmt, status, data=form, **kwargs)
    if fmt == "json":
        [created] = valid(body, "request_created")
        return dict(created)
    assert body.tag == "service_requests"
    [created] = xml_data(body)
    valid([created], "request_created")
    return dict(created)


async def case_of(h: Harness, number: str) -> Case:
    async with h.session() as session:
        case = await session.scalar(select(Case).where(Case.number == number))
        assert case is not None
        return case


# --------------------------------------------------------------------------- discovery, services


async def test_discovery_names_this_endpoint_in_both_formats(h: Harness, api: Api) -> None:
    data = await both(api, "discovery", "discovery", "discovery")
    [endpoint] = data["endpoints"]
    assert endpoint["url"].endswith(BASE)
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert set(endpoint["formats"]) == {"application/json", "text/xml"}
    assert W3C.match(data["changeset"])
    assert h.district.name_zh in data["contact"]


async def test_services_one_per_category_in_the_readers_language(h: Harness, api: Api) -> None:
    zh = await both(api, "services", "services", "services")
    categories = h.district.categories
    assert [s["service_code"] for s in zh] == list(categories)
    by_code = {s["service_code"]: s for s in zh}
    assert by_code["jinggai"]["service_name"] == "井盖"
    assert by_code["jinggai"]["metadata"] is True
    assert by_code["xiaoguanggao"]["metadata"] is False
    assert {s["type"] for s in zh} == {"realtime"}
    assert by_code["jinggai"]["group"] == categories["jinggai"].group
    assert "井盖" in by_code["jinggai"]["keywords"]
    assert by_code["jinggai"]["description"].startswith("井盖：由")

    en = await both(api, "services", "services", "services", params={"locale": "en"})
    by_code = {s["service_code"]: s for s in en}
    assert by_code["jinggai"]["service_name"] == categories["jinggai"].name_en
    assert "manhole" in by_code["jinggai"]["keywords"]
    assert not re.search(r"[\u4e00-\u9fff]", by_code["jinggai"]["keywords"])
    header = await both(
        api, "services", "services", "services", headers={"Accept-Language": "en-GB,zh;q=0.5"}
    )
    assert header == en
    other = await both(api, "services", "services", "services", headers={"Accept-Language": "fr"})
    assert other == zh  # neither of ours: Chinese


async def test_service_definitions_and_an_unknown_code(api: Api) -> None:
    data = await both(api, "services/jinggai", "service_definition", "service_definition")
    [attribute] = data["attributes"]
    assert attribute["code"] == "blocks_traffic"
    assert attribute["datatype"] == "singlevaluelist"
    assert attribute["description"] == "是否影响通行"
    assert [v["key"] for v in attribute["values"]] == ["yes", "no"]
    en = await both(
        api, "services/jinggai", "service_definition", "service_definition", params={"locale": "en"}
    )
    assert [v["name"] for v in en["attributes"][0]["values"]] == ["Yes", "No"]
    plainly = await both(api, "services/xiaoguanggao", "service_definition", "service_definition")
    assert plainly == {"service_code": "xiaoguanggao", "attributes": []}
    await refused(api, "GET", "services/nope", 404, "nope")


async def test_unknown_paths_and_formats_are_the_specs_404(api: Api) -> None:
    await refused(api, "GET", "nothing", 404)
    response = await api.get(f"{BASE}/services.csv")
    assert response.status == 404
    [error] = valid(await response.json(), "errors")
    assert error["code"] == 404


# --------------------------------------------------------------------------- POST requests


async def test_posting_needs_a_key_that_may_write(
    h: Harness, api: Api, keys: dict[str, str]
) -> None:
    without = report(h, "")
    await refused(api, "POST", "requests", 403, "api_key", data=without)
    await refused(api, "POST", "requests", 403, "无效", data=report(h, "abc.def"))
    text = await refused(api, "POST", "requests", 403, data=report(h, keys["read"]))
    assert text == plain("zh", "open311.error.api_key_read_only")
    wrong_secret = keys["write"].split(".")[0] + ".not-the-secret"
    await refused(api, "POST", "requests", 403, data=report(h, wrong_secret))
    assert await h.count(Case) == 0


async def test_a_revoked_key_stops_working(h: Harness, api: Api, keys: dict[str, str]) -> None:
    async with h.session() as session, session.begin():
        await revoke(session, keys["write"].split(".")[0], h.clock.now())
    await refused(api, "POST", "requests", 403, data=report(h, keys["write"]))


async def test_keys_are_stored_salted_and_hashed(h: Harness, keys: dict[str, str]) -> None:
    async with h.session() as session:
        rows = (await session.scalars(select(Open311Client))).all()
        assert await authenticate(session, keys["write"]) is not None
        assert await authenticate(session, keys["write"] + "x") is None
    assert len(rows) == 2 and len({r.key_salt for r in rows}) == 2
    for row, key in zip(rows, (keys["write"], keys["read"]), strict=True):
        key_id, secret = key.split(".")
        assert row.key_id == key_id
        assert row.key_hash.startswith("scrypt$")
        assert secret not in row.key_hash and secret not in row.key_salt


@pytest.mark.parametrize(
    ("fields", "contains"),
    [
        ({"service_code": None}, "service_code"),
        ({"service_code": "nope"}, "nope"),
        ({"lat": None, "long": None}, "lat"),
        ({"long": None}, "long"),
        ({"lat": "north", "long": "116.4"}, "north"),
        ({"lat": "31.2304", "long": "121.4737"}, "北京市朝阳区"),
        ({"lat": None, "long": None, "address_id": "NOPE-1"}, "NOPE-1"),
        ({"description": "x" * 4001}, "4000"),
        ({"description": "", "media_url": None}, "description"),
        ({"media_url": "ftp://example.org/a.jpg"}, "media_url"),
        ({"attribute[blocks_traffic]": "maybe"}, "yes, no"),
        ({"attribute[colour]": "red"}, "colour"),
        ({"service_code": "xiaoguanggao", "attribute[blocks_traffic]": "yes"}, "xiaoguanggao"),
        ({"address_string": "街" * 301}, "300"),
    ],
)
async def test_bad_reports_are_refused_with_a_clear_400(
    h: Harness, api: Api, keys: dict[str, str], fields: dict[str, Any], contains: str
) -> None:
    await refused(api, "POST", "requests", 400, contains, data=report(h, keys["write"], **fields))
    assert await h.count(Case) == 0


async def test_outside_the_district_says_so_in_english_too(
    h: Harness, api: Api, keys: dict[str, str]
) -> None:
    form = report(h, keys["write"], lat="31.2304", long="121.4737")
    text = await refused(api, "POST", "requests", 400, data=form, params={"locale": "en"})
    assert "outside Chaoyang District, Beijing" in text


async def test_a_report_becomes_a_case_routed_like_one_from_the_chat(
    h: Harness, api: Api, keys: dict[str, str]
) -> None:
    lane_id, lat, lon = lane_point(h)
    await grant(h, CHIEF, "chief", lane_id, "lane")
    chief = h.emulator.user(CHIEF, first_name="李街巷长", language_code="zh-hans")
    await chief.send_command("/start")
    await chief.expect(contains="随拍即办")

    form = report(h, keys["write"], **{"attribute[blocks_traffic]": "yes"})
    created = await post(api, form)
    number = created["service_request_id"]
    assert re.fullmatch(r"CY-20261123-\d{4}", number)
    assert created["service_notice"] == plain("zh", "open311.status.dispatched")

    card = await chief.expect(contains=f"案件 {number}")
    assert "胡同口堆了旧家具" in (card.text or "")
    assert "影响通行" in (card.text or "")
    case = await case_of(h, number)
    assert (case.state, case.category_id, case.lane_id) == ("dispatched", "duiwuduiliao", lane_id)
    assert (case.source, case.reporter_id, case.priority) == ("open311", None, 1)
    assert (case.lat, case.lon) == pytest.approx((lat, lon))
    events = await h.events(case.id)
    assert [e.action for e in events] == ["submitted", "dispatched"]
    assert events[0].data is not None and events[0].data["source"] == "open311"
    assert events[1].data is not None
    assert events[1].data["classification"]["method"] == "open311"

    # Read back in both formats, by id, by token and in the list.
    [one] = await both(api, f"requests/{number}", "service_requests", "service_requests")
    assert one["service_request_id"] == number
    assert (one["status"], one["service_code"], one["service_name"]) == (
        "open",
        "duiwuduiliao",
        "堆物堆料",
    )
    lane = h.district.lanes[lane_id]
    assert one["agency_responsible"] == f"{lane.name_zh}街巷长"
    assert one["address_id"] == lane_id
    assert lane.name_zh in one["address"]
    assert one["requested_datetime"] == "2026-11-23T09:00:00+08:00"
    assert W3C.match(one["expected_datetime"]) and W3C.match(one["updated_datetime"])
    assert (one["lat"], one["long"]) == pytest.approx(Grid(100).snap(lat, lon), abs=1e-6)
    tokens = await both(api, f"tokens/{created['token']}", "tokens", "service_requests")
    assert tokens == [{"service_request_id": number, "token": created["token"]}]
    listed = await both(api, "requests", "service_requests", "service_requests")
    assert [r["service_request_id"] for r in listed] == [number]


async def test_a_department_category_reaches_the_departments_officer_in_english(
    h: Harness, api: Api, keys: dict[str, str]
) -> None:
    await grant(h, OFFICER, "officer", "shizheng", "department")
    officer = h.emulator.user(OFFICER, first_name="Officer Wu", language_code="en")
    await officer.send_command("/start")
    await officer.expect(contains="Snap it, get it handled")
    form = report(h, keys["write"], service_code="jinggai", description="Manhole cover missing")
    created = await post(api, form, fmt="xml", params={"locale": "en"})
    number = created["service_request_id"]
    assert created["service_notice"] == plain("en", "open311.status.dispatched")
    await officer.expect(contains=number)
    [one] = await both(
        api, f"requests/{number}", "service_requests", "service_requests", params={"locale": "en"}
    )
    assert one["agency_responsible"] == h.district.departments["shizheng"].name_en
    assert one["status_notes"] == plain("en", "open311.status.dispatched")


async def test_address_only_reports_find_their_lane_by_name_or_id(
    h: Harness, api: Api, keys: dict[str, str]
) -> None:
    lane_id, _lat, _lon = lane_point(h, 2)
    lane = h.district.lanes[lane_id]
    by_name = report(
        h, keys["write"], lat=None, long=None, address_string=f"{lane.name_zh}12号门口"
    )
    case = await case_of(h, (await post(api, by_name))["service_request_id"])
    assert (case.lane_id, case.street_id, case.lat) == (lane_id, lane.street_id, None)
    assert case.address == f"{lane.name_zh}12号门口"

    other_id, _lat, _lon = lane_point(h, 3)
    by_id = report(h, keys["write"], lat=None, long=None, address_id=other_id, description="另一处")
    case = await case_of(h, (await post(api, by_id))["service_request_id"])
    assert case.lane_id == other_id

    nowhere = report(
        h, keys["write"], lat=None, long=None, address_string="某个地方", description="三"
    )
    case = await case_of(h, (await post(api, nowhere))["service_request_id"])
    assert (case.lane_id, case.state) == (None, "triage")


async def test_a_retry_with_the_same_device_id_gets_the_same_case(
    h: Harness, api: Api, keys: dict[str, str]
) -> None:
    form = report(h, keys["write"], device_id="phone-42")
    first = await post(api, form)
    again = await post(api, form, status=200)
    assert again == first
    xml_again = await post(api, form, fmt="xml", status=200)
    assert xml_again["service_request_id"] == first["service_request_id"]
    assert await h.count(Case) == 1
    # Something else from the same device is a new report (here: joined as a repeat).
    other = await post(api, report(h, keys["write"], device_id="phone-42", description="又堆了"))
    assert other["service_request_id"] != first["service_request_id"]
    assert await h.count(Case) == 2


async def test_a_repeat_joins_the_open_case_and_is_closed_as_a_duplicate(
    h: Harness, api: Api, keys: dict[str, str]
) -> None:
    lane_id, _lat, _lon = lane_point(h)
    await grant(h, CHIEF, "chief", lane_id, "lane")
    chief = h.emulator.user(CHIEF, first_name="李街巷长", language_code="zh-hans")
    await chief.send_command("/start")
    await chief.expect(contains="随拍即办")
    first = (await post(api, report(h, keys["write"])))["service_request_id"]
    await chief.expect(contains=f"案件 {first}")
    repeat = await post(api, report(h, keys["write"], description="还是那堆家具"))
    assert repeat["service_notice"] == plain("zh", "open311.status.duplicate_of", original=first)
    await chief.expect(contains=plain_text("zh", "card.plus_one", number=first, reports=2))
    listed = await both(api, "requests", "service_requests", "service_requests")
    by_id = {r["service_request_id"]: r for r in listed}
    assert by_id[repeat["service_request_id"]]["status"] == "closed"
    assert first in by_id[repeat["service_request_id"]]["status_notes"]
    opened = await both(
        api, "requests", "service_requests", "service_requests", params={"status": "open"}
    )
    assert [r["service_request_id"] for r in opened] == [first]
    closed = await both(
        api, "requests", "service_requests", "service_requests", params={"status": "closed"}
    )
    assert [r["service_request_id"] for r in closed] == [repeat["service_request_id"]]
    each = await both(
        api, "requests", "service_requests", "service_requests", params={"status": "open,closed"}
    )
    assert len(each) == 2


async def test_a_long_description_is_taken_and_shortened_for_the_card(
    h: Harness, api: Api, keys: dict[str, str]
) -> None:
    words = "堆" * 4000
    created = await post(
        api, report(h, keys["write"], description=words, media_url="https://img.example/1.jpg")
    )
    assert (
        plain("zh", "open311.notice.shortened", limit=cases.MAX_DESCRIPTION)
        in created["service_notice"]
    )
    case = await case_of(h, created["service_request_id"])
    assert len(case.description) == cases.MAX_DESCRIPTION
    assert case.description.endswith(
        plain("zh", "open311.case.media", url="https://img.example/1.jpg")
    )


async def test_no_personal_data_is_kept_or_returned(
    h: Harness, api: Api, keys: dict[str, str]
) -> None:
    personal = {
        "email": "wang.fang@example.org",
        "first_name": "芳芳",
        "last_name": "欧阳",
        "phone": "13800138000",
        "account_id": "acct-7788",
        "device_id": "device-5566",
    }
    typed = "朝外大街甲10号楼3单元401"
    form = report(
        h, keys["write"], address_string=typed, description="门口堆物，联系13911112222", **personal
    )
    number = (await post(api, form))["service_request_id"]
    texts = []
    for fmt in FORMATS:
        _, text = await call(api, "GET", "requests", fmt, 200)
        texts.append(text)
        _, text = await call(api, "GET", f"requests/{number}", fmt, 200)
        texts.append(text)
    for text in texts:
        for value in [*personal.values(), typed, "13911112222", "门口堆物"]:
            assert value not in text
    # Nothing personal anywhere in the database either (the device id only inside a hash).
    async with h.session() as session:
        for table in Base.metadata.sorted_tables:
            for row in (await session.execute(select(table))).all():
                dumped = str(tuple(row))
                for key in ("email", "first_name", "last_name", "phone", "account_id", "device_id"):
                    assert personal[key] not in dumped, (table.name, key)


# --------------------------------------------------------------------------- GET requests


async def test_requests_by_id_code_and_date_within_90_days(
    h: Harness, api: Api, keys: dict[str, str]
) -> None:
    now = h.clock.now()
    h.clock.set(now - timedelta(days=100))
    old = (await post(api, report(h, keys["write"], service_code="jinggai")))["service_request_id"]
    h.clock.set(now)
    new = (await post(api, report(h, keys["write"], description="新的一堆")))["service_request_id"]
    lamp_lane = lane_point(h, 4)
    lamp = await post(
        api,
        report(
            h, keys["write"], service_code="ludeng", lat=str(lamp_lane[1]), long=str(lamp_lane[2])
        ),
    )
    ids = lambda data: [r["service_request_id"] for r in data]  # noqa: E731

    recent = await both(api, "requests", "service_requests", "service_requests")
    assert ids(recent) == [lamp["service_request_id"], new]  # newest first; the old one is past
    by_code = await both(
        api,
        "requests",
        "service_requests",
        "service_requests",
        params={"service_code": "ludeng,nope"},
    )
    assert ids(by_code) == [lamp["service_request_id"]]
    window = {"start_date": "2026-08-01T00:00:00+08:00", "end_date": "2026-09-01T00:00:00Z"}
    past = await both(api, "requests", "service_requests", "service_requests", params=window)
    assert ids(past) == [old]
    start_only = await both(
        api, "requests", "service_requests", "service_requests", params={"start_date": "2026-08-01"}
    )
    assert ids(start_only) == [old]
    # A list of ids overrides every other filter, dates included.
    listed = await both(
        api,
        "requests",
        "service_requests",
        "service_requests",
        params={"service_request_id": f"{old}, {new.lower()}", "status": "closed"},
    )
    assert sorted(ids(listed)) == sorted([old, new])
    [single] = await both(api, f"requests/{old}", "service_requests", "service_requests")
    assert single["service_code"] == "jinggai"


@pytest.mark.parametrize(
    ("params", "contains"),
    [
        (
            {"start_date": "2026-01-01T00:00:00+08:00", "end_date": "2026-06-01T00:00:00+08:00"},
            "90",
        ),
        (
            {"start_date": "2026-06-01T00:00:00+08:00", "end_date": "2026-05-01T00:00:00+08:00"},
            "end_date",
        ),
        ({"start_date": "yesterday"}, "yesterday"),
        ({"status": "pending"}, "pending"),
        ({"service_request_id": ",".join(["X"] * 1001)}, "1000"),
    ],
)
async def test_bad_queries_are_refused_with_a_clear_400(
    api: Api, params: dict[str, str], contains: str
) -> None:
    await refused(api, "GET", "requests", 400, contains, params=params)


@pytest.mark.parametrize(
    "params",
    [
        {"start_date": "9999-12-30"},
        {"end_date": "9999-12-31T23:59:59-23:59"},
        {"end_date": "0001-01-02"},
        {"start_date": "1969-12-31T23:59:59Z"},
        {"start_date": "2100-01-01T00:00:00+00:00"},
    ],
)
async def test_dates_out_of_range_are_a_clear_400_not_a_500(
    api: Api, params: dict[str, str]
) -> None:
    [value] = params.values()
    text = await refused(api, "GET", "requests", 400, value, params=params)
    assert "1970-01-01" in text and "2099-12-31" in text


async def test_the_first_and_last_dates_taken_answer(api: Api) -> None:
    for params in ({"start_date": "1970-01-01T00:00:00Z"}, {"end_date": "2099-12-31"}):
        assert (
            await both(api, "requests", "service_requests", "service_requests", params=params) == []
        )


@pytest.mark.parametrize(
    ("path", "params", "echoed"),
    [
        ("requests", {"start_date": "2026\x01-11\x1b[31m"}, "2026\\x01-11\\x1b[31m"),
        ("requests", {"status": "open\x00\x7f"}, "open\\x00\\x7f"),
        ("requests/CY-\x08\x0c", {}, "CY-\\x08\\x0c"),
        ("services/a\x0bb", {}, "a\\x0bb"),
    ],
)
async def test_control_characters_echoed_back_are_shown_and_the_xml_parses(
    api: Api, path: str, params: dict[str, str], echoed: str
) -> None:
    """XML 1.0 cannot hold them at all: each is written as its escape, the same in JSON."""
    status = 404 if path != "requests" else 400
    text = await refused(api, "GET", path, status, echoed, params=params)
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in text)


def test_what_xml_cannot_hold_never_reaches_an_answer() -> None:
    text = xml_text("errors", [{"code": 400, "description": "a\x01b\ufffec\ud800d\te"}])
    [error] = ET.fromstring(text.encode())
    assert error.findtext("description") == "a\ufffdb\ufffdc\ufffdd\te"


async def test_an_api_key_in_the_url_is_refused_everywhere(
    h: Harness, api: Api, keys: dict[str, str]
) -> None:
    """URLs end up in access logs, proxies and histories: a key goes in the body or a header."""
    form = report(h, keys["write"])
    del form["api_key"]
    leaked = {"api_key": keys["write"]}
    text = await refused(api, "POST", "requests", 400, "X-API-Key", data=form, params=leaked)
    assert keys["write"] not in text
    await refused(api, "GET", "requests", 400, "X-API-Key", params=leaked)
    await refused(api, "GET", "services", 400, "X-API-Key", params=leaked)
    assert await h.count(Case) == 0
    # In the POST body, or in the header: taken.
    await post(api, report(h, keys["write"]))
    await post(
        api,
        report(h, keys["write"], api_key=None, description="又一处"),
        headers={"X-API-Key": keys["write"]},
    )
    assert await h.count(Case) == 2


async def test_keyless_readers_get_each_point_on_the_districts_grid(
    h: Harness, api: Api, keys: dict[str, str]
) -> None:
    """The keyless list published the resident's point to 6 decimals (about 10 cm)."""
    assert h.district.privacy.open311_location_precision_m == 100
    _lane, lat, lon = lane_point(h)
    exact = (lat + 0.000123, lon - 0.000234)  # off any grid node, still on the lane
    number = (await post(api, report(h, keys["write"], lat=str(exact[0]), long=str(exact[1]))))[
        "service_request_id"
    ]
    [listed] = await both(api, "requests", "service_requests", "service_requests")
    [one] = await both(api, f"requests/{number}", "service_requests", "service_requests")
    for shown_point in ((listed["lat"], listed["long"]), (one["lat"], one["long"])):
        assert shown_point != pytest.approx(exact, abs=1e-6)
        assert haversine_m(*shown_point, *exact) <= 100 / 2**0.5 + 1
        assert Grid(100).snap(*shown_point) == pytest.approx(shown_point, abs=1e-6)
    # A point a few metres away lands on the same node: nothing finer can be worked out.
    assert Grid(100).snap(exact[0] + 0.00002, exact[1]) == pytest.approx(
        Grid(100).snap(*exact), abs=1e-9
    )
    # A key without the permission reads the grid too; a wrong key is refused, not ignored.
    [read] = await both(
        api,
        f"requests/{number}",
        "service_requests",
        "service_requests",
        headers={"X-API-Key": keys["read"]},
    )
    assert (read["lat"], read["long"]) == (one["lat"], one["long"])
    await refused(api, "GET", "requests", 403, headers={"X-API-Key": keys["read"] + "x"})

    async with h.session() as session, session.begin():
        await allow_exact_location(session, keys["read"].split(".")[0], True)
    for path in ("requests", f"requests/{number}"):
        [precise] = await both(
            api, path, "service_requests", "service_requests", headers={"X-API-Key": keys["read"]}
        )
        assert (precise["lat"], precise["long"]) == pytest.approx(exact, abs=1e-6)


async def test_the_grid_is_the_districts_setting(
    h: Harness, api: Api, keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import replace

    coarse = replace(h.district.privacy, open311_location_precision_m=1000.0)
    monkeypatch.setattr(h.ctx, "district", replace(h.district, privacy=coarse))
    _lane, lat, lon = lane_point(h)
    await post(api, report(h, keys["write"]))
    [one] = await both(api, "requests", "service_requests", "service_requests")
    assert (one["lat"], one["long"]) == pytest.approx(Grid(1000).snap(lat, lon), abs=1e-6)
    assert (one["lat"], one["long"]) != pytest.approx(Grid(100).snap(lat, lon), abs=1e-6)


async def test_unknown_request_and_token_are_404(api: Api) -> None:
    await refused(api, "GET", "requests/CY-20261123-9999", 404, "CY-20261123-9999")
    await refused(api, "GET", "tokens/" + "0" * 32, 404)
    await refused(api, "GET", "tokens/not-a-token", 404, "not-a-token")


async def test_at_most_1000_requests_newest_first(
    h: Harness, api: Api, keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bot.open311.queries.MAX_ROWS", 3)
    numbers = []
    for i in range(4):
        lane = lane_point(h, i)
        form = report(h, keys["write"], lat=str(lane[1]), long=str(lane[2]), description=f"第{i}处")
        numbers.append((await post(api, form))["service_request_id"])
        h.clock.advance(timedelta(minutes=1))
    data = await both(api, "requests", "service_requests", "service_requests")
    assert [r["service_request_id"] for r in data] == numbers[:0:-1]


async def test_states_read_as_open_or_closed_with_notes_in_words(
    h: Harness, api: Api, keys: dict[str, str]
) -> None:
    number = (await post(api, report(h, keys["write"])))["service_request_id"]
    expected = {
        "accepted": ("open", "open311.status.accepted"),
        "whistled": ("open", "open311.status.whistled"),
        "resolved": ("closed", "open311.status.resolved"),
        "closed": ("closed", "open311.status.closed"),
        "rejected": ("closed", "open311.status.rejected"),
        "withdrawn": ("closed", "open311.status.withdrawn"),
        "triage": ("open", "open311.status.triage"),
    }
    for state, (status, key) in expected.items():
        async with h.session() as session, session.begin():
            case = await session.scalar(select(Case).where(Case.number == number))
            assert case is not None
            case.state = state
        [one] = await both(api, f"requests/{number}", "service_requests", "service_requests")
        assert (one["status"], one["status_notes"]) == (status, plain("zh", key)), state
        assert ("service_notice" in one) == (status == "open")


# --------------------------------------------------------------------------- the georeport client


async def test_the_georeport_client_from_pypi_reads_the_api(
    h: Harness, keys: dict[str, str]
) -> None:
    """The `georeport` package (it only reads) against the API on a real port of 127.0.0.1."""
    from georeport import GeoReport

    root = web.Application()
    mount(root, make_app(h.ctx))
    runner = web.AppRunner(root, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}{BASE}"
        async with aiohttp.ClientSession() as http:
            response = await http.post(f"{base}/requests.json", data=report(h, keys["write"]))
            assert response.status == 201
            [created] = await response.json()
        number = created["service_request_id"]
        for fmt in FORMATS:
            client = GeoReport(base, output_format=fmt)
            services = await asyncio.to_thread(client.get_service_list)
            assert [s["service_code"] for s in services] == list(h.district.categories)
            definition = await asyncio.to_thread(client.get_service_definition, "jinggai")
            assert definition["service_code"] == "jinggai"
            found = await asyncio.to_thread(client.get_service_requests, status="open")
            found = [found] if isinstance(found, dict) else found
            assert [r["service_request_id"] for r in found] == [number]
            one = await asyncio.to_thread(client.get_service_request, number)
            assert (one["service_request_id"], one["status"]) == (number, "open")
    finally:
        await runner.cleanup()


# --------------------------------------------------------------------------- catalogue


def test_every_open311_text_is_in_both_catalogues() -> None:
    from babel.messages.pofile import read_po

    package = Path(__file__).resolve().parent.parent / "bot" / "open311"
    source = "".join(p.read_text(encoding="utf-8") for p in package.glob("*.py"))
    keys = set(re.findall(r'"(open311\.[a-z_.]+[a-z_])"', source))
    keys |= {
        f"open311.error.{k}"
        for k in re.findall(r'(?:bad_request|forbidden|not_found)\(\s*"(\w+)"', source)
    }
    keys |= {f"open311.status.{s}" for s in State}
    keys |= {"open311.attribute.blocks_traffic.description", "open311.value.yes"}
    keys.discard("open311.error.")
    for locale in ("zh_CN", "en"):
        with (LOCALES_DIR / locale / "LC_MESSAGES" / "messages.po").open("rb") as fh:
            known = {m.id for m in read_po(fh) if m.id}
        assert sorted(keys - known) == [], locale
    assert len(keys) > 40


async def test_the_clients_table_matches_its_migration(database_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from storage.db import make_engine

    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(
                    MigrationContext.configure(c, opts={"compare_type": True}), Base.metadata
                )
            )
    finally:
        await engine.dispose()
    assert [d for d in diff if "open311" in str(d)] == []


async def test_an_open311_case_is_kept_on_its_submitted_event(
    h: Harness, api: Api, keys: dict[str, str]
) -> None:
    number = (await post(api, report(h, keys["write"])))["service_request_id"]
    async with h.session() as session:
        client = await session.scalar(select(Open311Client).where(Open311Client.can_write))
        event = await session.scalar(
            select(CaseEvent)
            .join(Case, Case.id == CaseEvent.case_id)
            .where(Case.number == number, CaseEvent.action == "submitted")
        )
    assert client is not None and event is not None and event.data is not None
    assert event.data["open311_client"] == client.id
