"""`python -m bot open311`: serve the Open311 GeoReport v2 API; `open311 keys`: its clients."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from bot.config import get_settings

DEFAULT_PORT = 8311


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    api = sub.add_parser(
        "open311",
        help="serve the Open311 GeoReport v2 API (at /open311/v2/); manage its API keys",
    )
    api.add_argument("--port", type=int, default=DEFAULT_PORT, help="default: %(default)s")
    api.add_argument("--host", default="127.0.0.1", help="default: %(default)s")
    api.set_defaults(func=_serve)
    api_sub = api.add_subparsers(dest="open311_command")
    keys = api_sub.add_parser("keys", help="API keys of the systems that use the API")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)

    add = keys_sub.add_parser("add", help="a new client; its key is printed this once")
    add.add_argument("--name", required=True, help="who the key is for, e.g. 12345-hotline")
    add.add_argument("--read-only", action="store_true", help="the key may not report")
    add.add_argument(
        "--exact-location",
        action="store_true",
        help="the key reads cases' points as stored (others: on the district's grid)",
    )
    add.set_defaults(func=_add)

    listing = keys_sub.add_parser("list", help="every client (never the keys)")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=_list)

    revoke = keys_sub.add_parser("revoke", help="stop a key from working")
    revoke.add_argument("key_id", help="the part of the key before the dot (see keys list)")
    revoke.set_defaults(func=_revoke)

    exact = keys_sub.add_parser(
        "exact-location",
        help="let a key read cases' points as stored, not on the district's grid",
    )
    exact.add_argument("key_id", help="the part of the key before the dot (see keys list)")
    exact.add_argument("--off", action="store_true", help="take the permission back")
    exact.set_defaults(func=_exact_location)


async def _serve(args: argparse.Namespace) -> int:
    from bot.cli.core import setup_logging
    from bot.domain.district import DistrictError, load_district
    from bot.open311.serve import running_api
    from storage.migrate import upgrade

    settings = get_settings()
    setup_logging(settings)
    try:
        load_district(settings.district_dir)
    except DistrictError as exc:
        for problem in exc.problems:
            print(f"{problem.file}: {problem.where}: {problem.message}", file=sys.stderr)
        print("The district is invalid; fix it (python -m bot district check).", file=sys.stderr)
        return 2
    await upgrade(settings.database_url)
    if settings.uses_emulator:
        print(
            "BOT_TOKEN is not set: new cases wait in the outbox for the bot "
            "(python -m bot run on the same DATABASE_URL) to send their cards",
            file=sys.stderr,
        )
    async with running_api(settings, host=args.host, port=args.port) as url:
        print(f"Open311 GeoReport v2 API: {url}/discovery.json (Ctrl+C stops it)", flush=True)
        await asyncio.Event().wait()
    return 0


async def _add(args: argparse.Namespace) -> int:
    from bot.clock import SystemClock
    from bot.open311.keys import add_client
    from storage.db import make_engine, make_sessionmaker

    settings = get_settings()
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            try:
                client, key = await add_client(
                    session,
                    args.name,
                    can_write=not args.read_only,
                    now=SystemClock().now(),
                    exact_location=args.exact_location,
                )
            except ValueError as exc:
                print(str(exc), file=sys.stderr)
                return 2
    finally:
        await engine.dispose()
    access = "read only" if args.read_only else "read and report"
    if args.exact_location:
        access += ", exact locations"
    print(f"client {client.name} ({access}), key id {client.key_id}")
    print(f"API key (shown only now; keep it secret): {key}")
    return 0


async def _list(args: argparse.Namespace) -> int:
    from bot.domain.localtime import district_timezone
    from bot.open311.keys import clients
    from storage.db import make_engine, make_sessionmaker

    settings = get_settings()
    tz = district_timezone(settings.district_dir)
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            rows = [
                {
                    "key_id": c.key_id,
                    "name": c.name,
                    "can_write": c.can_write,
                    "exact_location": c.exact_location,
                    "created_at": c.created_at.astimezone(tz).isoformat(),
                    "revoked_at": (
                        c.revoked_at.astimezone(tz).isoformat() if c.revoked_at else None
                    ),
                }
                for c in await clients(session)
            ]
    finally:
        await engine.dispose()
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    for row in rows:
        access = "read+write" if row["can_write"] else "read only"
        place = "exact" if row["exact_location"] else "grid"
        state = f"revoked {row['revoked_at']}" if row["revoked_at"] else "active"
        print(f"{row['key_id']}  {access:10}  {state:32}  {place:5}  {row['name']}")
    return 0


async def _revoke(args: argparse.Namespace) -> int:
    from bot.clock import SystemClock
    from bot.open311.keys import revoke
    from storage.db import make_engine, make_sessionmaker

    settings = get_settings()
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            client = await revoke(session, args.key_id.strip(), SystemClock().now())
    finally:
        await engine.dispose()
    if client is None:
        print(f"no key {args.key_id}", file=sys.stderr)
        return 1
    print(f"key {client.key_id} of {client.name} is revoked")
    return 0


async def _exact_location(args: argparse.Namespace) -> int:
    from bot.open311.keys import allow_exact_location
    from storage.db import make_engine, make_sessionmaker

    settings = get_settings()
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            client = await allow_exact_location(session, args.key_id.strip(), not args.off)
    finally:
        await engine.dispose()
    if client is None:
        print(f"no key {args.key_id}", file=sys.stderr)
        return 1
    reads = "on the district's grid" if args.off else "exactly"
    print(f"key {client.key_id} of {client.name} reads cases' points {reads}")
    return 0
