"""The command menu each person sees: what their roles let them do, nothing more.

Everyone sees the resident's commands (Telegram's default menu). A person with a role gets a
menu of their own chat (scope `chat`) that adds what the authorisation table lets that role do;
losing the last role removes it, and the default shows again. The menu is set through the
outbox, in the transaction that changed the roles, so it follows even a grant made from the
shell while the bot is down: `follow_role_changes` hooks `refresh_menu` into every grant and
removal of bot/domain/people.py, once per process where it is assembled (bot/app.py for the
bot, the sandbox and Open311; bot/cli/people.py for the shell).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.access import CHIEF, OFFICER, TABLE, Permission
from bot.domain.people import on_roles_changed
from bot.i18n import t
from storage.models import Person
from storage.outbox import enqueue

EVERYONE = ("report", "my", "case", "lang", "cancel", "help", "forget", "whoami")
# Each further command, and the roles that may use it (from bot/domain/access.py's table).
_BY_ROLE: tuple[tuple[str, frozenset[str]], ...] = (
    ("tasks", frozenset({CHIEF, OFFICER}) | set(TABLE[Permission.DIGEST])),
    ("stats", frozenset(TABLE[Permission.DIGEST])),
    ("digest", frozenset(TABLE[Permission.DIGEST])),
    ("export", frozenset(TABLE[Permission.EXPORT])),
    ("people", frozenset(TABLE[Permission.MANAGE_PEOPLE])),
)
ALL_COMMANDS = EVERYONE + tuple(c for c, _ in _BY_ROLE)
# Telegram's menu per language: zh is the default (no language_code), en for English apps.
MENU_LANGUAGES = (("zh", None), ("en", "en"))


def commands_for(roles: set[str]) -> tuple[str, ...]:
    return EVERYONE + tuple(c for c, allowed in _BY_ROLE if roles & allowed)


def menu(lang: str, commands: tuple[str, ...]) -> list[dict[str, str]]:
    return [{"command": c, "description": t(lang, f"command.{c}")} for c in commands]


def refresh_menu(session: AsyncSession, person: Person, now: datetime) -> None:
    """Queue the person's own menu (or its removal) after their roles changed."""
    commands = commands_for({r.role for r in person.roles})
    scope = {"type": "chat", "chat_id": person.telegram_id}
    for lang, code in MENU_LANGUAGES:
        params: dict[str, Any] = {"scope": scope}
        if code:
            params["language_code"] = code
        if commands == EVERYONE:
            enqueue(session, person.telegram_id, "deleteMyCommands", params, now=now)
        else:
            params["commands"] = menu(lang, commands)
            enqueue(session, person.telegram_id, "setMyCommands", params, now=now)


def follow_role_changes() -> None:
    """Keep each person's menu in step with their roles, whoever changes them in this process."""
    on_roles_changed(refresh_menu)
