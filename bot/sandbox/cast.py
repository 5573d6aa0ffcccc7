"""The sandbox's cast: two residents and three people with roles, picked from the district.

Loading is idempotent (`grant` keeps roles a person already has), so the sandbox can be started
again and again on the same database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from bot.domain.access import CHIEF, OFFICER, SUPERVISOR
from bot.domain.district import District
from bot.domain.people import grant
from storage.db import make_engine, make_sessionmaker
from tgemu.emulator import Persona, TelegramEmulator

PREFERRED_STREET = "chaowai"
PREFERRED_DEPARTMENT = "chengguan"


@dataclass(frozen=True)
class Member:
    """One person of the cast: who they are on Telegram and what they may do."""

    key: str  # stable name in URLs and the page ("resident_zh", "chief", ...)
    telegram_id: int
    first_name: str
    language_code: str
    role: str | None = None
    kind: str | None = None  # "lane" | "street" | "department" (the role's scope kind)
    scope: str | None = None


@dataclass(frozen=True)
class Cast:
    members: tuple[Member, ...]
    lane_id: str
    street_id: str
    department_id: str

    def member(self, key: str) -> Member | None:
        return next((m for m in self.members if m.key == key), None)


def cast_for(district: District) -> Cast:
    """朝外's supervisor, a chief of its first lane and a 城管 officer (or the district's
    first street office / department when it has no such ids)."""
    street = (
        PREFERRED_STREET
        if PREFERRED_STREET in district.street_offices
        else min(district.street_offices)
    )
    lanes = sorted(lane.id for lane in district.lanes.values() if lane.street_id == street)
    lane = lanes[0] if lanes else min(district.lanes)
    department = (
        PREFERRED_DEPARTMENT
        if PREFERRED_DEPARTMENT in district.departments
        else min(district.departments)
    )
    members = (
        Member("resident_zh", 1001, "王芳", "zh-hans"),
        Member("resident_en", 1002, "Emily", "en"),
        Member("chief", 2001, "李建国", "zh-hans", CHIEF, "lane", lane),
        Member("officer", 3001, "张伟", "zh-hans", OFFICER, "department", department),
        Member("supervisor", 4001, "陈静", "zh-hans", SUPERVISOR, "street", street),
    )
    return Cast(members, lane, street, department)


async def load_cast(database_url: str, district: District, cast: Cast) -> None:
    """Give the cast their roles in the (migrated) database."""
    engine = make_engine(database_url)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            now = datetime.now(UTC)
            for m in cast.members:
                if m.role is None:
                    continue
                await grant(
                    session,
                    district,
                    telegram_id=m.telegram_id,
                    role=m.role,
                    scope=m.scope,
                    kind=m.kind,
                    name=m.first_name,
                    now=now,
                )
    finally:
        await engine.dispose()


def enter(emulator: TelegramEmulator, district: District, cast: Cast) -> dict[str, Persona]:
    """The cast's Telegram accounts, and the district's group chats, in the emulator.

    People with roles count as having started the bot already (they were onboarded), so the
    bot may write to them first; the department and triage groups exist so that what the bot
    posts there is accepted rather than logged as failed.
    """
    personas: dict[str, Persona] = {}
    for m in cast.members:
        persona = emulator.user(m.telegram_id, m.first_name, language_code=m.language_code)
        persona.chat.started = persona.chat.started or m.role is not None
        personas[m.key] = persona
    groups = [(d.chat_id, d.name_zh) for d in district.departments.values()]
    groups += [(s.triage_chat_id, s.name_zh) for s in district.street_offices.values()]
    for chat_id, title in groups:
        if chat_id is not None and chat_id < 0 and chat_id not in emulator.chats:
            emulator.group(chat_id, title, supergroup=str(chat_id).startswith("-100"))
    return personas
