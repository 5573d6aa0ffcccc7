"""`python -m bot people add|remove|list`: who acts for the district."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import SystemClock
from bot.config import Settings, get_settings
from bot.domain.access import ROLES
from bot.domain.district import District, load_district
from bot.domain.people import PeopleError, everyone_with_roles, grant, remove_roles
from bot.telegram.menus import follow_role_changes
from bot.telegram.notify import announce_handover
from bot.telegram.outgoing import Outbox
from storage.db import make_engine, make_sessionmaker
from storage.models import Case, Person
from storage.people import person_by_telegram_id

# A role changed from the shell reaches the person's menu too, queued with the change.
follow_role_changes()


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    people = sub.add_parser("people", help="lane chiefs, officers, supervisors, admins")
    people_sub = people.add_subparsers(dest="people_command", required=True)

    add = people_sub.add_parser("add", help="give a person a role")
    add.add_argument("--telegram-id", type=int, required=True)
    add.add_argument("--role", choices=ROLES, required=True)
    scope = add.add_mutually_exclusive_group()
    scope.add_argument("--lane")
    scope.add_argument("--street")
    scope.add_argument("--department")
    add.add_argument("--name")
    add.set_defaults(func=_add)

    remove = people_sub.add_parser("remove", help="take roles away")
    remove.add_argument("--telegram-id", type=int, required=True)
    remove.add_argument("--role", choices=ROLES, help="only this role (default: all)")
    remove.add_argument("--scope", help="only the role over this lane/street/department")
    remove.set_defaults(func=_remove)

    listing = people_sub.add_parser("list", help="everyone with a role")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=_list)


async def _add(args: argparse.Namespace) -> int:
    settings = get_settings()
    district = load_district(settings.district_dir)
    kind, scope = next(
        ((k, v) for k in ("lane", "street", "department") if (v := getattr(args, k))),
        (None, None),
    )
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            person, added = await grant(
                session,
                district,
                telegram_id=args.telegram_id,
                role=args.role,
                scope=scope,
                kind=kind,
                name=args.name,
                now=SystemClock().now(),
            )
    except PeopleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        await engine.dispose()
    where = f" of {scope}" if scope else ""
    print(f"{args.role}{where}: {person.telegram_id}" + ("" if added else " (already)"))
    return 0


@dataclass(frozen=True)
class ShellCards:
    """What the cards of cases handed on are made from, outside the bot."""

    district: District
    settings: Settings


async def _remove(args: argparse.Namespace) -> int:
    settings = get_settings()
    cards = ShellCards(load_district(settings.district_dir), settings)
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            now = SystemClock().now()
            removal = await remove_roles(
                session, telegram_id=args.telegram_id, role=args.role, scope=args.scope, now=now
            )
            person = await person_by_telegram_id(session, args.telegram_id)
            if removal.count and person is not None:
                # Queued in the outbox, like every message: the running bot sends them.
                out = Outbox(session, now)
                if not person.unreachable:
                    out.to(person).say("people.removed_you")
                await announce_handover(cards, out, removal, person)
            handed_on = [await _handed_on_line(session, case) for case in removal.handed_on]
    finally:
        await engine.dispose()
    print(f"removed {removal.count} role(s) from {args.telegram_id}")
    for line in handed_on:
        print(line)
    return 0 if removal.count else 1


async def _handed_on_line(session: AsyncSession, case: Case) -> str:
    chief = await session.get(Person, case.assignee_id) if case.assignee_id else None
    to = f"chief {chief.telegram_id}" if chief is not None else "the supervisors"
    return f"  {case.number} ({case.state}): handed on to {to}"


async def _list(args: argparse.Namespace) -> int:
    settings = get_settings()
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            people = await everyone_with_roles(session)
            rows: list[dict[str, Any]] = [
                {
                    "telegram_id": p.telegram_id,
                    "name": p.name,
                    "roles": [{"role": r.role, "scope": r.scope} for r in p.roles],
                }
                for p in people
            ]
    finally:
        await engine.dispose()
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        for row in rows:
            roles = ", ".join(
                r["role"] + (f":{r['scope']}" if r["scope"] else "") for r in row["roles"]
            )
            print(f"{row['telegram_id']:>14}  {row['name'] or '':20}  {roles}")
    return 0
