"""The service list: one Open311 service per district category, and their extra questions.

Extra attributes are chosen here, in code, per category id (the district file has no place
for them yet). Today there is one: `blocks_traffic` ("是否影响通行", yes/no, optional), asked
for the kinds of problem that can block a road or a pavement. Answered "yes", the case is
raised to priority 1 (first in the chief's /tasks) and the card says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.domain.district import Category, District
from bot.i18n import plain
from bot.open311.render import Value


@dataclass(frozen=True)
class Attribute:
    """A question a service asks beyond the standard fields (a spec `attribute`)."""

    code: str
    datatype: str  # the spec's: string, number, datetime, text, singlevaluelist, multivaluelist
    required: bool
    values: tuple[str, ...]  # the keys of a value list; their names are catalogue texts
    order: int


BLOCKS_TRAFFIC = Attribute(
    code="blocks_traffic",
    datatype="singlevaluelist",
    required=False,
    values=("yes", "no"),
    order=1,
)

# Category id → its extra questions. Ids the district does not have are ignored.
ATTRIBUTES: dict[str, tuple[Attribute, ...]] = {
    category_id: (BLOCKS_TRAFFIC,)
    for category_id in (
        "luantingche",  # 乱停车
        "zhandaojingying",  # 乱占道经营
        "daoluposun",  # 道路破损
        "duiwuduiliao",  # 堆物堆料
        "jinggai",  # 井盖
        "paishui",  # 排水与积水
        "lvhua",  # 树木与绿化 (a fallen tree)
        "gongxiangdanche",  # 共享单车乱停放
    )
}

_CJK = re.compile(r"[\u3400-\u9fff]")


def attributes_of(category_id: str) -> tuple[Attribute, ...]:
    return ATTRIBUTES.get(category_id, ())


def service(district: District, category: Category, lang: str) -> dict[str, Value]:
    """One entry of GET services."""
    return {
        "service_code": category.id,
        "service_name": district.name(category, lang),
        "description": service_description(district, category, lang),
        "metadata": bool(attributes_of(category.id)),
        "type": "realtime",
        "keywords": ", ".join(keywords(category, lang)),
        "group": category.group,
    }


def service_description(district: District, category: Category, lang: str) -> str:
    department = district.departments.get(category.department_id or "")
    assignee = (
        district.name(department, lang)
        if department is not None
        else plain(lang, "open311.service.lane_chief")
    )
    return plain(
        lang,
        "open311.service.description",
        name=district.name(category, lang),
        assignee=assignee,
        respond=f"{category.response_hours:g}",
        resolve=f"{category.resolve_hours:g}",
    )


def keywords(category: Category, lang: str) -> list[str]:
    """The category's keywords in the reader's language (all of them if it has none)."""
    words = [w.replace(",", " ").strip() for w in category.keywords]
    chinese = [w for w in words if _CJK.search(w)]
    english = [w for w in words if not _CJK.search(w)]
    mine = english if lang == "en" else chinese
    return [w for w in (mine or words) if w]


def definition(category: Category, lang: str) -> dict[str, Value]:
    """GET services/{code}: the service's attributes (an empty list when it asks nothing)."""
    return {
        "service_code": category.id,
        "attributes": [_attribute(a, lang) for a in attributes_of(category.id)],
    }


def _attribute(attribute: Attribute, lang: str) -> dict[str, Value]:
    prefix = f"open311.attribute.{attribute.code}"
    return {
        "variable": True,
        "code": attribute.code,
        "datatype": attribute.datatype,
        "required": attribute.required,
        "datatype_description": plain(lang, f"{prefix}.datatype_description"),
        "order": attribute.order,
        "description": plain(lang, f"{prefix}.description"),
        "values": [
            {"key": key, "name": plain(lang, f"open311.value.{key}")} for key in attribute.values
        ],
    }
