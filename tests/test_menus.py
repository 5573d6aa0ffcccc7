"""Each person's command menu shows what their roles let them do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.app import make_bot, set_commands
from bot.domain.access import ADMIN, CHIEF, OFFICER, SUPERVISOR, VOLUNTEER
from bot.domain.people import revoke
from bot.telegram.menus import EVERYONE, commands_for
from tests.harness import Harness, grant
from tests.test_cli import env_for, run_cli

CHIEF_ID = 5301


def names(menu: list[dict[str, str]]) -> list[str]:
    return [item["command"] for item in menu]


@pytest.mark.parametrize(
    ("roles", "extra"),
    [
        (set(), ()),
        ({VOLUNTEER}, ()),
        ({CHIEF}, ("tasks",)),
        ({OFFICER}, ("tasks",)),
        ({SUPERVISOR}, ("tasks", "stats", "digest", "export")),
        ({ADMIN}, ("tasks", "stats", "digest", "export", "people")),
        ({CHIEF, SUPERVISOR}, ("tasks", "stats", "digest", "export")),
    ],
)
def test_a_role_adds_the_commands_it_may_use(roles: set[str], extra: tuple[str, ...]) -> None:
    assert commands_for(roles) == EVERYONE + extra


async def test_a_chief_gets_a_menu_of_their_own_and_loses_it_with_the_role(h: Harness) -> None:
    emulator = h.emulator
    # Everyone's menu, in both languages, has no supervisor's or chief's commands.
    bot = make_bot(h.ctx.settings)
    try:
        await set_commands(bot)
    finally:
        await bot.session.close()
    assert names(emulator.commands_for()) == list(EVERYONE)
    assert names(emulator.commands_for(language_code="en")) == list(EVERYONE)

    chief = emulator.user(CHIEF_ID, first_name="Li", language_code="en")
    await chief.send_command("/start")
    await chief.expect(contains="Snap it")
    await grant(h, CHIEF_ID, "chief", "CW-001", "lane")
    h.ctx.sender.wake()
    own = {"type": "chat", "chat_id": chief.chat_id}
    await emulator.wait_until(lambda: emulator.commands_for(own, "en"), 10)
    assert names(emulator.commands_for(own, "en")) == [*EVERYONE, "tasks"]
    zh = emulator.commands_for(own)
    assert names(zh) == [*EVERYONE, "tasks"]
    assert {"command": "tasks", "description": "我的待办"} in zh  # the Chinese menu is in Chinese

    async with h.session() as session, session.begin():
        assert (
            await revoke(session, telegram_id=CHIEF_ID, role="chief", scope=None, now=h.clock.now())
            == 1
        )
    h.ctx.sender.wake()
    await emulator.wait_until(
        lambda: not emulator.commands_for(own, "en") and not emulator.commands_for(own), 10
    )


async def test_a_role_given_before_the_first_start_reaches_the_menu_at_start(h: Harness) -> None:
    emulator = h.emulator
    await grant(h, CHIEF_ID, "supervisor", "chaowai", "street")
    h.ctx.sender.wake()
    supervisor = emulator.user(CHIEF_ID, first_name="Wang", language_code="en")
    await supervisor.send_command("/start")
    await supervisor.expect(contains="Snap it")
    own = {"type": "chat", "chat_id": supervisor.chat_id}
    await emulator.wait_until(lambda: emulator.commands_for(own, "en"), 10)
    assert names(emulator.commands_for(own, "en")) == [
        *EVERYONE,
        "tasks",
        "stats",
        "digest",
        "export",
    ]


async def test_a_role_changed_from_the_shell_changes_the_menu(
    h: Harness, database_url: str, tmp_path: Path
) -> None:
    """`python -m bot people add|remove` in a process of its own queues the menu with the change
    (the domain only calls the hook that process registered)."""
    emulator = h.emulator
    chief = emulator.user(CHIEF_ID, first_name="Li", language_code="en")
    await chief.send_command("/start")
    await chief.expect(contains="Snap it")
    own = {"type": "chat", "chat_id": chief.chat_id}
    env = env_for(database_url, tmp_path)

    add = ("people", "add", "--telegram-id", str(CHIEF_ID), "--role", "chief", "--lane", "CW-001")
    code, _out, err = await run_cli(*add, env=env)
    assert code == 0, err
    # The shell queued the menu at the real time; the bot's clock catches up to send it.
    h.clock.set(datetime.now(UTC) + timedelta(seconds=1))
    h.ctx.sender.wake()
    await emulator.wait_until(lambda: emulator.commands_for(own, "en"), 10)
    assert names(emulator.commands_for(own, "en")) == [*EVERYONE, "tasks"]

    code, _out, err = await run_cli("people", "remove", "--telegram-id", str(CHIEF_ID), env=env)
    assert code == 0, err
    h.clock.set(datetime.now(UTC) + timedelta(seconds=1))
    h.ctx.sender.wake()
    await emulator.wait_until(
        lambda: not emulator.commands_for(own, "en") and not emulator.commands_for(own), 10
    )
