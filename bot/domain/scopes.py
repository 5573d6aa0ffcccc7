"""Whose figures a person may see: the district, or the street offices they supervise."""

from __future__ import annotations

from bot.domain import access
from bot.domain.district import District
from storage.models import Person

DISTRICT: None = None  # the scope of the whole district


def street_scopes(
    person: Person, permission: access.Permission, district: District
) -> list[str | None]:
    """The scopes in which `person` holds the scope-wide `permission` (digest, export).

    `[None]` (the district) for whoever may do it everywhere (an admin), else the street
    offices of the district they may do it in, in the district's order; `[]` for nobody.
    """
    if access.allowed(person, permission):
        return [DISTRICT]
    held = {r.scope for r in person.roles if r.scope is not None}
    return [
        street
        for street in district.street_offices
        if street in held and access.allowed(person, permission, scope=street)
    ]


def scope_name(district: District, scope: str | None, lang: str) -> str:
    """A scope as its reader calls it: the street office's name, or the district's."""
    office = district.street_offices.get(scope) if scope is not None else None
    return district.name(office if office is not None else district, lang)
