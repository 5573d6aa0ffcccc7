"""People in the chat: an admin adds and removes roles, everyone may ask /whoami, all audited."""

from __future__ import annotations

from sqlalchemy import select

from bot.domain.people import revoke, role_changes
from storage.models import Person, Role, RoleChange
from storage.people import person_by_telegram_id
from tests.harness import Harness, grant, plain_text
from tgemu.emulator import Persona

ADMIN, CHIEF, SUPERVISOR, NEWCOMER = 4201, 5001, 4001, 5002


async def admin(h: Harness) -> Persona:
    await grant(h, ADMIN, "admin")
    person = h.emulator.user(ADMIN, first_name="Admin", language_code="en")
    await person.send_command("/start")
    await person.expect(contains="Snap it")
    return person


async def person(h: Harness, telegram_id: int) -> Person:
    async with h.session() as session:
        found = await person_by_telegram_id(session, telegram_id)
        assert found is not None
        return found


async def changes(h: Harness, telegram_id: int) -> list[tuple[str, str, str | None, int | None]]:
    async with h.session() as session:
        target = await person_by_telegram_id(session, telegram_id)
        assert target is not None
        return [
            (c.change, c.role, c.scope, c.changed_by)
            for c in await role_changes(session, target.id)
        ]


async def test_an_admin_adds_and_removes_a_chief(h: Harness) -> None:
    boss = await admin(h)
    chief = h.emulator.user(CHIEF, first_name="李街巷长", language_code="zh-hans")
    await chief.send_command("/whoami")
    await chief.expect(contains=plain_text("zh", "whoami.resident", id=CHIEF).splitlines()[1])

    await boss.send_command("/people", f"add {CHIEF} chief CW-001")
    await boss.expect(contains=f"{CHIEF} is now lane chief of Chaoyangmenwai Street (CW-001)")
    await chief.expect(contains="您现在是街巷长 · 朝阳门外大街 (CW-001)")
    await boss.send_command("/people", f"add {CHIEF} chief CW-001")
    await boss.expect(contains=f"{CHIEF} already is lane chief")

    await chief.send_command("/whoami")
    mine = await chief.expect(contains=f"您的 Telegram 号：{CHIEF}")
    assert "您的角色：街巷长 · 朝阳门外大街 (CW-001)" in (mine.text or "")

    await boss.send_command("/people")
    listing = await boss.expect(contains="People with a role (2)")
    assert f"{CHIEF} · 李街巷长 · lane chief of" in (listing.text or "")
    assert f"{ADMIN} · Admin · admin of the district" in (listing.text or "")

    await boss.send_command("/people", f"remove {CHIEF} chief")
    await boss.expect(contains=f"Removed 1 role(s) from {CHIEF}")
    await chief.expect(contains=plain_text("zh", "people.removed_you"))
    await boss.send_command("/people", f"remove {CHIEF}")
    await boss.expect(contains=f"{CHIEF} has no such role")

    by = (await person(h, ADMIN)).id
    assert await changes(h, CHIEF) == [
        ("granted", "chief", "CW-001", by),
        ("removed", "chief", "CW-001", by),
    ]
    async with h.session() as session:
        vias = set(await session.scalars(select(RoleChange.via).where(RoleChange.changed_by == by)))
        left = await session.scalars(select(Role).where(Role.role == "chief"))
        assert vias == {"chat"} and list(left) == []


async def test_wrong_adds_are_explained_and_change_nothing(h: Harness) -> None:
    boss = await admin(h)
    attempts = [
        (f"add {NEWCOMER} supervisor", "The role supervisor needs a place"),
        (f"add {NEWCOMER} chief NOPE", "The district has no “NOPE”"),
        (f"add {NEWCOMER} king", "There is no role “king”"),
        (f"add {NEWCOMER} admin chaowai", "An admin serves the whole district"),
        ("add 12ab chief CW-001", "“12ab” is not a Telegram id"),
        ("promote 1", "Usage:"),
        (f"remove {ADMIN}", plain_text("en", "people.keep_yourself")),
    ]
    for args, answer in attempts:
        await boss.send_command("/people", args)
        await boss.expect(contains=answer)
    async with h.session() as session:
        assert list(await session.scalars(select(RoleChange))) != []  # the admin's own grant
        assert await person_by_telegram_id(session, NEWCOMER) is None
    assert await changes(h, ADMIN) == [("granted", "admin", None, None)]


async def test_only_admins_manage_people(h: Harness) -> None:
    await grant(h, SUPERVISOR, "supervisor", "chaowai", "street")
    supervisor = h.emulator.user(SUPERVISOR, first_name="陈静", language_code="zh-hans")
    resident = h.emulator.user(1001, first_name="王芳", language_code="zh-hans")
    for someone in (supervisor, resident):
        await someone.send_command("/people", f"add {someone.id} admin")
        await someone.expect(contains=plain_text("zh", "people.not_allowed"))
        await someone.send_command("/people")
        await someone.expect(contains=plain_text("zh", "people.not_allowed"))
    async with h.session() as session:
        admins = await session.scalars(select(Role).where(Role.role == "admin"))
        assert list(admins) == []
    await supervisor.send_command("/whoami")
    await supervisor.expect(contains="您的角色：街道督导 · 朝外街道 (chaowai)")


async def test_the_shell_records_its_changes_too(h: Harness) -> None:
    await grant(h, CHIEF, "chief", "CW-002", "lane")
    async with h.session() as session, session.begin():
        assert (
            await revoke(session, telegram_id=CHIEF, role=None, scope=None, now=h.clock.now()) == 1
        )
    async with h.session() as session:
        target = await person_by_telegram_id(session, CHIEF)
        assert target is not None
        rows = await role_changes(session, target.id)
    assert [(r.change, r.changed_by, r.created_at) for r in rows] == [
        ("granted", None, h.clock.now()),
        ("removed", None, h.clock.now()),
    ]
    assert all(r.via.startswith("cli") for r in rows)
